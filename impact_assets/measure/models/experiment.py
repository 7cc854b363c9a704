"""``experiment``: OLS on an R-style formula (statsmodels), effect = the treatment coefficient.

Parameters (``MEASUREMENT.PARAMS``)
-----------------------------------
formula : str, required
    R-style formula such as ``"revenue ~ enriched + price"``.
treatment_column : str, optional
    The variable whose coefficient is the effect. When absent, the first of ``treatment``,
    ``enriched``, ``treated``, ``treat`` that appears on the right-hand side is used, or the only
    right-hand-side variable; otherwise the fit fails asking for ``treatment_column``. The term is
    found **by name** (``enriched`` or ``enriched[T.True]``), never by position.
cov_type : str, optional
    statsmodels covariance: ``nonrobust``, ``HC0``..``HC3``, ``cluster`` or ``HAC``. Default
    (absent or ``auto``): ``cluster`` by unit when the data hold several rows per unit
    (``unit_column`` if present in the data, else ``product_id``), otherwise ``HC2``.
    Product-day rows of one product are not independent, so clustering is the honest default;
    with one row per unit HC2 is the standard randomized-experiment variance: for
    ``y ~ treatment`` it equals Neyman's ``s_t^2/n_t + s_c^2/n_c`` (Imbens & Rubin 2015, ch. 6;
    Lin 2013 with covariates), which does not assume equal variances in the two arms.
cov_kwds : dict, optional
    Passed to statsmodels; for ``cluster`` ``groups`` may name a column.
use_t : bool, optional
    t or normal reference distribution. Default t for ``auto``, ``nonrobust`` and ``cluster``
    (with ``cluster``, t with #clusters - 1 degrees of freedom; with ``auto`` on one row per
    unit, HC2 with residual degrees of freedom), normal for explicit HC and HAC.

Sample size and minimum
-----------------------
``sample_size``: the independent observations, i.e. the clusters when the covariance is
clustered (``auto`` on repeated units, or ``cluster``), else the rows. ``check_minimum``: a 0/1
treatment needs at least 2 treated and 2 control observations (clusters when clustered: units
with and without a treated row); the contract's ``sample_size >= 30`` is MEASURE's check.

Only these keys reach statsmodels (upstream forwarded every unknown key, bug B12).

Estimand
--------
The treatment coefficient estimates the average effect on the treated rows: ``true_effect`` is
the mean over rows with treatment = 1 of ``outcome - outcome_y0`` (the realized effect). Under
random assignment this equals the average effect over all rows in expectation.

Missing values in any column named in the formula are an error (no silent row dropping).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import patsy

from impact_assets.measure.models._data import (
    binary_treatment,
    require_both_groups,
    require_columns,
    require_no_missing,
)
from impact_assets.measure.models._params import get_bool, get_choice, get_str, param_error
from impact_assets.measure.models._units import require_arm_minimum
from impact_assets.measure.models.base import Model, ModelError, ModelFit, register_model

NAME = "experiment"
#: Right-hand-side names taken as the treatment when ``treatment_column`` is not set.
TREATMENT_NAMES = ("treatment", "enriched", "treated", "treat")
COV_TYPES = ("auto", "nonrobust", "hc0", "hc1", "hc2", "hc3", "cluster", "hac")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")


def _sides(formula: str) -> tuple[str, str]:
    left, _, right = formula.partition("~")
    return left.strip(), right.strip()


def _identifiers(text: str) -> list[str]:
    return list(dict.fromkeys(_IDENTIFIER.findall(text)))


_BARE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def simple_design(
    formula: str, data: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray, list[str]] | None:
    """Design matrices of a main-effects formula, without patsy; ``None`` if not that simple.

    Handles ``y ~ a + b + ...`` where every name is a column: numeric columns enter as they
    are, boolean ones as ``a[T.True]``, text and categorical ones as treatment-coded dummies
    ``a[T.level]`` (first level dropped). Names and coding follow patsy, which is used for
    every other formula; patsy costs more than the regression itself on long panels.
    """
    left, right = _sides(formula)
    terms = [t.strip() for t in right.split("+")]
    names_ok = all(_BARE.fullmatch(t) and t in data.columns for t in [left, *terms])
    if not names_ok or len(set(terms)) != len(terms):
        return None
    if not pd.api.types.is_numeric_dtype(data[left]) or pd.api.types.is_bool_dtype(data[left]):
        return None
    categorical_parts, numeric_parts = [], []
    for term in terms:
        series = data[term]
        if pd.api.types.is_bool_dtype(series):
            categorical_parts.append((f"{term}[T.True]", series.to_numpy(dtype=float)))
        elif pd.api.types.is_numeric_dtype(series):
            numeric_parts.append((term, series.to_numpy(dtype=float)))
        else:
            if isinstance(series.dtype, pd.CategoricalDtype):
                levels = list(series.cat.categories)
            else:
                levels = sorted(series.unique())
            codes = pd.Categorical(series, categories=levels).codes
            for k, level in enumerate(levels[1:], start=1):
                categorical_parts.append((f"{term}[T.{level}]", (codes == k).astype(float)))
    parts = [("Intercept", np.ones(len(data))), *categorical_parts, *numeric_parts]
    names = [name for name, _ in parts]
    return data[left].to_numpy(dtype=float), np.column_stack([v for _, v in parts]), names


def _finite(value: Any) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


@register_model
class Experiment(Model):
    """OLS regression with a named treatment term; see the module docstring."""

    name = NAME

    def validate_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        formula = get_str(params, "formula", NAME, required=True)
        left, right = _sides(formula)
        if "~" not in formula or not left or not right:
            raise param_error(NAME, "formula", "must look like 'outcome ~ treatment + x1'", formula)
        cov_type = get_choice(params, "cov_type", NAME, choices=COV_TYPES, default="auto")
        cov_kwds = params.get("cov_kwds")
        if cov_kwds is not None and not isinstance(cov_kwds, Mapping):
            raise param_error(NAME, "cov_kwds", "must be a mapping", cov_kwds)
        return {
            "formula": formula,
            "treatment_column": get_str(params, "treatment_column", NAME),
            "cov_type": cov_type,
            "cov_kwds": dict(cov_kwds) if cov_kwds else {},
            "use_t": get_bool(
                params, "use_t", NAME, default=cov_type in ("auto", "nonrobust", "cluster")
            ),
            "unit_column": get_str(params, "unit_column", NAME, default="product_id"),
        }

    # -- helpers ---------------------------------------------------------------------------
    @staticmethod
    def _treatment_variable(params: Mapping[str, Any]) -> str:
        if params["treatment_column"]:
            return params["treatment_column"]
        names = _identifiers(_sides(params["formula"])[1])
        for candidate in TREATMENT_NAMES:
            if candidate in names:
                return candidate
        if len(names) == 1:
            return names[0]
        raise ModelError(
            f"{NAME}: cannot tell which term of formula {params['formula']!r} is the treatment; "
            "set parameter 'treatment_column'"
        )

    @staticmethod
    def _unit_codes(
        data: pd.DataFrame, params: Mapping[str, Any]
    ) -> tuple[str | None, np.ndarray | None]:
        """The first of ``unit_column``/``product_id`` whose values repeat, with its
        ``pd.factorize`` codes (repeats: fewer distinct values, missing ones counted once,
        than rows, which is what ``duplicated().any()`` tells)."""
        for column in (params["unit_column"], "product_id"):
            if column in data.columns:
                codes, uniques = pd.factorize(data[column])
                if len(uniques) + int((codes < 0).any()) < len(data):
                    return column, codes
        return None, None

    def _covariance(
        self, data: pd.DataFrame, params: Mapping[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        cov_type = params["cov_type"]
        kwds = dict(params["cov_kwds"])
        unit, unit_codes = None, None
        if cov_type == "auto":
            unit, unit_codes = self._unit_codes(data, params)
            if unit is None:
                return "HC2", {}
            cov_type, kwds = "cluster", {"groups": unit}
        statsmodels_name = {"nonrobust": "nonrobust", "cluster": "cluster", "hac": "HAC"}.get(
            cov_type, cov_type.upper()
        )
        if statsmodels_name == "cluster":
            groups = kwds.get("groups")
            if groups is None:
                present = [c for c in (params["unit_column"], "product_id") if c in data.columns]
                if not present:
                    raise ModelError(
                        f"{NAME}: parameter 'cov_kwds' needs 'groups' (a column name) for "
                        "cov_type cluster"
                    )
                groups = present[0]
            if isinstance(groups, str):
                require_columns(data, [groups], NAME)
                require_no_missing(data, [groups], NAME)
                if groups == unit and unit_codes is not None:
                    kwds["groups"] = unit_codes  # pd.factorize(data[groups])[0], done above
                else:
                    kwds["groups"] = pd.factorize(data[groups])[0]
        if statsmodels_name == "HAC" and "maxlags" not in kwds:
            raise ModelError(f"{NAME}: parameter 'cov_kwds' needs 'maxlags' for cov_type HAC")
        return statsmodels_name, kwds

    def _clusters(self, data: pd.DataFrame, params: Mapping[str, Any]) -> np.ndarray | None:
        """Cluster codes when the covariance is clustered, else ``None`` (rows independent)."""
        if params["cov_type"] == "auto":
            return self._unit_codes(data, params)[1]
        if params["cov_type"] != "cluster":
            return None
        groups = params["cov_kwds"].get("groups")
        if groups is None:
            groups = next(
                (c for c in (params["unit_column"], "product_id") if c in data.columns), None
            )
        if isinstance(groups, str) and groups in data.columns:
            return pd.factorize(data[groups])[0]
        return None

    def sample_size(self, data: pd.DataFrame, params: Mapping[str, Any]) -> int:
        """Clusters when the covariance is clustered, else rows (see the module docstring)."""
        clusters = self._clusters(data, params)
        return len(data) if clusters is None else int(np.unique(clusters).size)

    def check_minimum(self, data: pd.DataFrame, params: Mapping[str, Any]) -> None:
        """At least 2 treated and 2 control observations (clusters when clustered) for a 0/1
        treatment; raises :class:`ModelError` naming the treatment column and the counts."""
        treatment = self._treatment_variable(params)
        require_columns(data, [treatment], NAME)
        require_no_missing(data, [treatment], NAME)
        series = data[treatment]
        if not (pd.api.types.is_bool_dtype(series) or series.isin((0, 1)).all()):
            return
        treated = binary_treatment(data, treatment, NAME)
        clusters = self._clusters(data, params)
        if clusters is None:
            require_arm_minimum(treated, treatment, NAME, "rows")
            return
        require_both_groups(treated, treatment, NAME)
        ever = np.bincount(clusters[clusters >= 0], weights=treated[clusters >= 0]) > 0
        all_treated = np.bincount(clusters[clusters >= 0], weights=~treated[clusters >= 0]) == 0
        n_t, n_c = int(ever.sum()), int((~all_treated).sum())
        if n_t < 2 or n_c < 2:
            raise ModelError(
                f"{NAME}: treatment column {treatment!r} marks {n_t} clusters with treated rows "
                f"and {n_c} with control rows; the model needs at least 2 of each"
            )

    # -- Model API -------------------------------------------------------------------------
    def fit(self, data: pd.DataFrame, params: Mapping[str, Any]) -> ModelFit:
        formula = params["formula"]
        treatment = self._treatment_variable(params)
        require_columns(data, [treatment], NAME)
        used = [c for c in _identifiers(formula) if c in data.columns]
        require_no_missing(data, used, NAME)
        self.check_minimum(data, params)
        cov_type, cov_kwds = self._covariance(data, params)
        try:
            # our own design for main-effects formulas, else patsy on the referenced columns;
            # then OLS on plain arrays (the statsmodels formula layer is slow on panels)
            design = simple_design(formula, data)
            if design is None:
                # names not in the data resolve against numpy only (``np.log(price)``)
                env = patsy.EvalEnvironment([{"np": np}])
                y, X = patsy.dmatrices(formula, data[used], NA_action="raise", eval_env=env)
                design = np.asarray(y).ravel(), np.asarray(X), list(X.design_info.column_names)
            y, X, names = design
            from statsmodels.regression.linear_model import OLS  # lazy: see models/__init__

            result = OLS(y, X).fit(
                cov_type=cov_type, cov_kwds=cov_kwds or None, use_t=params["use_t"]
            )
        except Exception as err:
            raise ModelError(f"{NAME}: formula {formula!r} could not be fitted: {err}") from err
        index = {name: i for i, name in enumerate(names)}
        term = self._term(names, treatment)
        k = index[term]
        ci = np.asarray(result.conf_int(alpha=0.05))
        conf_int = {n: [_finite(ci[i, 0]), _finite(ci[i, 1])] for n, i in index.items()}
        effect = float(result.params[k])
        if not np.isfinite(effect):
            raise ModelError(f"{NAME}: the coefficient of {term!r} is not identified")
        lower, upper = conf_int[term]
        p_value = _finite(result.pvalues[k])
        se = _finite(result.bse[k])
        summary = {
            "rsquared": float(result.rsquared),
            "rsquared_adj": float(result.rsquared_adj),
            "fvalue": _finite(np.squeeze(result.fvalue)),
            "f_pvalue": _finite(np.squeeze(result.f_pvalue)),
            "nobs": int(result.nobs),
            "df_resid": float(result.df_resid),
            "cov_type": cov_type,
            "treatment_term": term,
        }
        ci_method = f"{'t' if params['use_t'] else 'normal'} interval, {cov_type} covariance"
        return ModelFit(
            model_type=NAME,
            effect_estimate=effect,
            ci_lower=lower if se is not None else None,
            ci_upper=upper if se is not None else None,
            p_value=p_value,
            standard_error=se,
            estimand="coefficient on the treatment (average effect on treated rows)",
            n_observations=int(result.nobs),
            model_params={"formula": formula, "treatment_column": treatment},
            impact_estimates={
                "params": dict(zip(names, map(_finite, result.params), strict=True)),
                "bse": dict(zip(names, map(_finite, result.bse), strict=True)),
                "tvalues": dict(zip(names, map(_finite, result.tvalues), strict=True)),
                "pvalues": dict(zip(names, map(_finite, result.pvalues), strict=True)),
                "conf_int": conf_int,
            },
            model_summary=summary,
            diagnostics={
                "n_observations": int(result.nobs),
                "r_squared": float(result.rsquared),
                "ci_method": ci_method,
            },
        )

    @staticmethod
    def _term(names: list[str], treatment: str) -> str:
        if treatment in names:
            return treatment
        matches = [n for n in names if n.startswith(f"{treatment}[") and ":" not in n]
        if len(matches) == 1:
            return matches[0]
        raise ModelError(
            f"{NAME}: treatment variable {treatment!r} not found as a single term in the fitted "
            f"parameters {names}; set parameter 'treatment_column'"
        )

    def true_effect(self, data: pd.DataFrame, params: Mapping[str, Any]) -> float | None:
        outcome = _sides(params["formula"])[0]
        try:
            treatment = self._treatment_variable(params)
        except ModelError:
            return None
        needed = [outcome, f"{outcome}_y0", treatment]
        if any(c not in data.columns for c in needed):
            return None
        try:
            treated = binary_treatment(data, treatment, NAME)
        except ModelError:
            return None
        if not treated.any():
            return None
        return float((data[outcome] - data[f"{outcome}_y0"])[treated].mean())
