"""``subclassification``: strata on the propensity score (or covariates), effect averaged.

Method
------
Units are products (rows aggregated per ``unit_column``, see ``_units``).

1. Common support and strata (``stratify_on``):
   * ``propensity`` (default): the score is the estimated logit propensity (logistic regression
     of the treatment on the covariates, categorical covariates as dummies). With ``trim: true``
     (default) the sample is first trimmed to common support (Dehejia & Wahba 1999; Imbens &
     Rubin 2015, ch. 14 and 17): for the ATT, controls whose score lies outside the range of
     the treated units' scores are dropped (no treated unit is dropped, so the estimand stays
     the ATT); for the ATE, units outside the overlap of the two score ranges are dropped (the
     estimand becomes the ATE on common support). Strata are then ``n_strata`` quantile bins of
     the **treated units' scores** for the ATT (so every stratum holds about the same number of
     treated units, as ``PROC PSMATCH``'s ``KEY=TREATED``), of all kept units' scores for the
     ATE. A stratum left without treated or without control units is merged into its
     neighbour (the next lower one; the lowest into the next higher) until every stratum holds
     both; ``n_strata_merged`` counts the merges. Imbens & Rubin's further rule of splitting a
     block while the score still differs between the groups inside it is not applied; the
     balance diagnostics below show whether the blocks are fine enough.
   * ``covariates``: upstream behaviour, each covariate cut into ``n_strata`` quantile bins and
     the bins crossed (up to ``n_strata ** k`` strata); no trimming or merging.
   Duplicate quantile edges collapse, so a constant score gives one stratum.
2. A stratum without treated or without control units (only possible with ``covariates``
   strata) is **dropped** (no common support); the count and ``share_dropped`` (the share of
   the estimand's units, treated for the ATT and all for the ATE, that were trimmed or fell in
   dropped strata; trimmed controls do not count for the ATT) are reported, and the estimand becomes the effect over the
   units kept (``true_effect`` uses the same units). If every stratum is dropped the fit fails
   (no overlap); upstream silently returned 0.
3. Per kept stratum ``s``: with ``regression_adjustment: true`` (default) the effect is the
   treatment coefficient of an OLS of the outcome on ``[1, treatment, covariates]`` within the
   stratum, with an HC2 robust variance; this removes the confounding left within a stratum.
   When a stratum is too small for that (fewer than 2 treated or 2 controls, or fewer than
   #parameters + 2 units) it falls back to the difference in means with variance
   ``s_t^2/n_t + s_c^2/n_c`` (an arm with one unit borrows the arm's pooled within-stratum
   variance). The method used per stratum is in ``stratum_details``.
4. Aggregate: ``tau = sum_s w_s tau_s``, ``w_s`` proportional to the treated count (ATT) or the
   stratum size (ATE); stratified standard error ``sqrt(sum_s w_s^2 var_s)``; normal 95% CI and
   two-sided p-value.
5. Balance: max |standardized mean difference| of the covariates before and after (the
   stratum weights of step 4, SD of the whole sample as denominator) in ``diagnostics``; above
   0.25 (Stuart 2010) the result carries a warning (``diagnostics["warnings"]``, also logged)
   and EVALUATE's evidence scorer lowers its confidence (``_balance``).

Parameters
----------
treatment_column, covariate_columns : required.   dependent_variable : default ``revenue``.
n_strata : int >= 1, default 5.   estimand : ``att`` (default) or ``ate``.
stratify_on : ``propensity`` (default) or ``covariates``.   trim : bool, default true.
regression_adjustment : bool, default true.   unit_column : default ``product_id``.
Defaults: :data:`impact_assets.measure.defaults.SUBCLASSIFICATION_DEFAULTS` (shared by the
config path, a direct call and the benchmarks).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from impact_assets.measure.defaults import SUBCLASSIFICATION_DEFAULTS
from impact_assets.measure.models._balance import (
    balance_table,
    balance_warning,
    pooled_sd,
    propensity_logit,
    worst_covariate,
)
from impact_assets.measure.models._data import normal_interval, normal_p_value
from impact_assets.measure.models._params import (
    get_bool,
    get_choice,
    get_int,
    get_str,
    get_str_list,
)
from impact_assets.measure.models._units import UnitCovariateModel, Units, UnitTable
from impact_assets.measure.models.base import ModelError, ModelFit, register_model

NAME = "subclassification"
log = logging.getLogger("impact_assets.measure.models")


def _quantile_bins(
    values: np.ndarray, n_bins: int, reference: np.ndarray | None = None
) -> np.ndarray:
    """Bin index 0..B-1 of each value for ``n_bins`` quantile bins of ``reference`` (default:
    of ``values``); duplicate edges merged."""
    base = values if reference is None else reference
    edges = np.unique(np.quantile(base, np.linspace(0, 1, n_bins + 1)[1:-1]))
    return np.searchsorted(edges, values, side="right")


def _merge_unsupported(strata: np.ndarray, treated: np.ndarray) -> tuple[np.ndarray, int]:
    """Merge ordered strata lacking treated or control units into a neighbour (the next lower
    one; the lowest into the next higher) until all hold both arms; relabel 0..S-1."""
    labels = list(np.unique(strata))
    members = {s: strata == s for s in labels}
    merged = 0
    while len(labels) > 1:
        bad = [
            i
            for i, s in enumerate(labels)
            if not treated[members[s]].any() or treated[members[s]].all()
        ]
        if not bad:
            break
        i = bad[0]
        j = i - 1 if i > 0 else i + 1
        keep, gone = labels[min(i, j)], labels[max(i, j)]
        members[keep] = members[keep] | members.pop(gone)
        labels.remove(gone)
        merged += 1
    out = np.full(strata.shape, -1)
    for new, s in enumerate(labels):
        out[members[s]] = new
    return out, merged


@dataclass
class _Strata:
    strata: np.ndarray  # stratum per unit, -1 for units trimmed from common support
    n_trimmed: int
    n_merged: int


def _strata(units: Units, params: Mapping[str, Any]) -> _Strata:
    n_strata = params["n_strata"]
    treated = units.treated
    if params["stratify_on"] != "propensity":
        bins = np.column_stack([_quantile_bins(col, n_strata) for col in units.X.T])
        _, labels = np.unique(bins, axis=0, return_inverse=True)
        return _Strata(labels.ravel(), 0, 0)
    score = propensity_logit(units.X, treated)
    keep = np.ones(score.shape, dtype=bool)
    if params["trim"]:
        lo_t, hi_t = score[treated].min(), score[treated].max()
        if params["estimand"] == "att":
            keep = treated | ((score >= lo_t) & (score <= hi_t))
        else:
            lo = max(lo_t, score[~treated].min())
            hi = min(hi_t, score[~treated].max())
            keep = (score >= lo) & (score <= hi)
    strata = np.full(score.shape, -1)
    if keep.any():
        reference = score[keep & treated] if params["estimand"] == "att" else score[keep]
        if reference.size == 0:
            reference = score[keep]
        strata[keep] = _quantile_bins(score[keep], n_strata, reference)
        strata[keep], n_merged = _merge_unsupported(strata[keep], treated[keep])
    else:
        n_merged = 0
    return _Strata(strata, int((~keep).sum()), n_merged)


def _within_regression(y: np.ndarray, w: np.ndarray, X: np.ndarray) -> tuple[float, float]:
    """Treatment coefficient and its HC2 variance from OLS of y on [1, w, X]."""
    design = np.column_stack([np.ones(len(y)), w.astype(float), X])
    pinv = np.linalg.pinv(design)
    coef = pinv @ y
    resid = y - design @ coef
    bread = pinv @ pinv.T  # (X'X)^+
    leverage = np.einsum("ij,jk,ik->i", design, bread, design)
    omega = resid**2 / np.clip(1.0 - leverage, 1e-8, None)
    row = pinv[1]
    return float(coef[1]), float(np.sum(row**2 * omega))


@dataclass
class _Prepared:
    table: UnitTable
    units: Units
    strata: np.ndarray
    labels: np.ndarray
    kept: np.ndarray
    n_trimmed: int
    n_merged: int


@register_model
class Subclassification(UnitCovariateModel):
    """Propensity-score subclassification; see the module docstring."""

    name = NAME

    def validate_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        d = SUBCLASSIFICATION_DEFAULTS
        return {
            "treatment_column": get_str(params, "treatment_column", NAME, required=True),
            "covariate_columns": get_str_list(params, "covariate_columns", NAME, required=True),
            "dependent_variable": get_str(params, "dependent_variable", NAME, default="revenue"),
            "n_strata": get_int(params, "n_strata", NAME, default=d["n_strata"]),
            "estimand": get_choice(
                params, "estimand", NAME, choices=("att", "ate"), default=d["estimand"]
            ),
            "stratify_on": get_choice(
                params,
                "stratify_on",
                NAME,
                choices=("propensity", "covariates"),
                default=d["stratify_on"],
            ),
            "trim": get_bool(params, "trim", NAME, default=d["trim"]),
            "regression_adjustment": get_bool(
                params, "regression_adjustment", NAME, default=d["regression_adjustment"]
            ),
            "unit_column": get_str(params, "unit_column", NAME, default="product_id"),
        }

    def _prepare(self, table: UnitTable, params: Mapping[str, Any]) -> _Prepared:
        """Units, strata and the kept strata: what the fit and the true effect share."""
        units = table.units()
        made = _strata(units, params)
        labels, kept = self._kept(units, made.strata)
        return _Prepared(table, units, made.strata, labels, kept, made.n_trimmed, made.n_merged)

    @staticmethod
    def _kept(units: Units, strata: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Stratum labels and a bool per label: does it hold both arms?"""
        labels = np.unique(strata[strata >= 0])
        n_t = np.array([units.treated[strata == s].sum() for s in labels])
        n_all = np.array([(strata == s).sum() for s in labels])
        return labels, (n_t > 0) & (n_t < n_all)

    def _fit(self, prepared: _Prepared, params: Mapping[str, Any]) -> ModelFit:
        units, strata = prepared.units, prepared.strata
        labels, kept = prepared.labels, prepared.kept
        if not kept.any():
            raise ModelError(
                f"{NAME}: all {labels.size} strata hold only treated or only control units "
                "(no overlap between treated and control covariates); no effect can be estimated"
            )
        y, w, X = units.y, units.treated, units.X
        in_kept = np.isin(strata, labels[kept])
        pooled_var = {}
        for arm in (True, False):
            resid = [
                y[(strata == s) & (w == arm)] - y[(strata == s) & (w == arm)].mean()
                for s in labels[kept]
                if ((strata == s) & (w == arm)).sum() > 1
            ]
            values = np.concatenate(resid) if resid else np.array([])
            pooled_var[arm] = float(values.var(ddof=1)) if values.size > 1 else 0.0
        rows = []
        for s, keep in zip(labels, kept, strict=True):
            member = strata == s
            yt, yc = y[member & w], y[member & ~w]
            n_t, n_c = yt.size, yc.size
            record = {
                "stratum": int(s),
                "n_treated": n_t,
                "n_control": n_c,
                "mean_treated": float(yt.mean()) if n_t else None,
                "mean_control": float(yc.mean()) if n_c else None,
                "effect": None,
                "variance": None,
                "method": "dropped (no common support)",
                "dropped": not keep,
            }
            if keep:
                n_params = X.shape[1] + 2
                if (
                    params["regression_adjustment"]
                    and n_t >= 2
                    and n_c >= 2
                    and n_t + n_c >= n_params + 2
                ):
                    effect, var = _within_regression(y[member], w[member], X[member])
                    method = "regression adjustment (HC2)"
                else:
                    vt = yt.var(ddof=1) if n_t > 1 else pooled_var[True]
                    vc = yc.var(ddof=1) if n_c > 1 else pooled_var[False]
                    effect, var = float(yt.mean() - yc.mean()), float(vt / n_t + vc / n_c)
                    method = "difference in means"
                record.update(effect=effect, variance=var, method=method)
            rows.append(record)
        details = pd.DataFrame(rows)
        used = details[~details["dropped"]]
        size = (
            used["n_treated"]
            if params["estimand"] == "att"
            else used["n_treated"] + used["n_control"]
        )
        weights = size.to_numpy(float) / size.sum()
        effect = float(weights @ used["effect"].to_numpy(float))
        se = float(np.sqrt(weights**2 @ used["variance"].to_numpy(float)))
        lower, upper = normal_interval(effect, se)
        p_value = normal_p_value(effect, se)
        details["weight"] = 0.0
        details.loc[~details["dropped"], "weight"] = weights

        reference = pooled_sd(X, w)
        before = balance_table(X, units.names, w, reference_sd=reference)
        unit_weights = np.zeros(len(y))
        for s in labels[kept]:
            member = strata == s
            n_t, n_c = (member & w).sum(), (member & ~w).sum()
            if params["estimand"] == "att":
                unit_weights[member & w] = 1.0
                unit_weights[member & ~w] = n_t / n_c
            else:
                unit_weights[member & w] = (n_t + n_c) / n_t
                unit_weights[member & ~w] = (n_t + n_c) / n_c
        after = balance_table(X, units.names, w, unit_weights, reference)
        n_dropped = int((~kept).sum())
        n_t_all, n_c_all = int(w.sum()), int((~w).sum())
        # the units of the estimand left out (treated for the ATT, all units for the ATE)
        target = w if params["estimand"] == "att" else np.ones_like(w)
        n_out = int((target & ~in_kept).sum())
        share_dropped = n_out / int(target.sum())
        if n_out == 0:
            estimand = params["estimand"]
        elif params["estimand"] == "att":
            estimand = (
                f"ATT on the {n_t_all - n_out} treated units in strata with controls "
                f"({n_out} of {n_t_all} dropped)"
            )
        else:
            estimand = (
                f"ATE on the {len(y) - n_out} units in common support ({n_out} of {len(y)} dropped)"
            )
        smd_after, worst = worst_covariate(after)
        warnings = []
        poor = balance_warning(NAME, smd_after, worst)
        if poor:
            warnings.append(poor)
        if n_out:
            warnings.append(
                f"{NAME}: {n_out} of {int(target.sum())} units of the {params['estimand'].upper()}"
                f" lie outside common support; the estimate is the {estimand}"
            )
            log.warning(warnings[-1])
        return ModelFit(
            model_type=NAME,
            effect_estimate=effect,
            ci_lower=lower,
            ci_upper=upper,
            p_value=p_value,
            standard_error=se if lower is not None else None,
            estimand=estimand,
            n_observations=len(y),
            model_params={
                "dependent_variable": params["dependent_variable"],
                "treatment_column": params["treatment_column"],
                "covariate_columns": list(params["covariate_columns"]),
                "n_strata": params["n_strata"],
                "stratify_on": params["stratify_on"],
                "trim": params["trim"],
                "regression_adjustment": params["regression_adjustment"],
            },
            impact_estimates={
                "treatment_effect": effect,
                "n_strata": int(kept.sum()),
                "n_strata_dropped": n_dropped,
                "standard_error": se,
                "ci_lower": lower,
                "ci_upper": upper,
                "p_value": p_value,
            },
            model_summary={
                "n_observations": len(y),
                "n_rows": units.n_rows,
                "n_treated": n_t_all,
                "n_control": n_c_all,
                "estimand": params["estimand"],
            },
            diagnostics={
                "n_observations": len(y),
                "n_treated": n_t_all,
                "n_control": n_c_all,
                "n_strata": int(kept.sum()),
                "n_strata_dropped": n_dropped,
                "n_strata_merged": prepared.n_merged,
                "n_trimmed": prepared.n_trimmed,
                "share_dropped": share_dropped,
                "max_abs_smd_before": float(np.max(np.abs(before["smd"]))),
                "max_abs_smd_after": smd_after,
                "balance_poor": poor is not None,
                "ci_method": (
                    "normal interval; stratified SE sqrt(sum w_s^2 var_s) with "
                    + (
                        "within-stratum regression adjustment (HC2)"
                        if params["regression_adjustment"]
                        else "difference in means per stratum"
                    )
                ),
                **({"warnings": warnings} if warnings else {}),
            },
            artifacts={
                "stratum_details": details,
                "balance_before": before,
                "balance_after": after,
            },
        )

    @staticmethod
    def _true_effect(
        prepared: _Prepared, effects: pd.DataFrame, params: Mapping[str, Any]
    ) -> float | None:
        units, strata = prepared.units, prepared.strata
        in_kept = np.isin(strata, prepared.labels[prepared.kept])
        realized = effects["realized"].to_numpy(float)
        potential = effects["potential"].to_numpy(float)
        if params["estimand"] == "att":
            values = realized[in_kept & units.treated]
        else:
            values = np.where(units.treated, realized, potential)[in_kept]
        if values.size == 0 or not np.all(np.isfinite(values)):
            return None
        return float(values.mean())
