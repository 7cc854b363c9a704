"""``synthetic_control``: simplex-weighted donors, in-space placebo inference.

Method (Abadie, Diamond & Hainmueller 2010, "ADH"; Abadie 2021)
----------------------------------------------------------------
1. Pivot the panel to a time x unit matrix of ``outcome_column`` (a balanced panel is
   required). The time column (``time_column``) holds dates, datetimes or integer periods
   (``_time``); ``treatment_time`` is given in the same type.
2. Treated units: the configured ``treated_unit`` (one id or a list); by default the units whose
   ``enriched`` (or ``treatment``) indicator is ever true. If the configured units are not among
   the indicator's treated units, or not in the data at all (upstream bug B4), the indicator's
   units are used and ``diagnostics['warnings']`` says so. Without an indicator column an
   unknown configured unit is an error. Donors are the units never marked as treated.
3. The target is the treated unit (the average trajectory of the treated units when there are
   several). Weights ``W >= 0``, ``sum(W) = 1``:

   * outcome-only (default, no ``predictors``): ``W`` minimizes the squared pre-period gap over
     **every pre-period time** (the special case of ADH where the predictors are all the
     pre-period outcomes);
   * with ``predictors`` (covariates, and lagged outcomes over chosen windows): ``W(V)``
     minimizes ``(X1 - X0 W)' V (X1 - X0 W)`` on predictors averaged over their windows and
     scaled by their standard deviation across units; the diagonal ``V`` (summing to one)
     minimizes the pre-period outcome MSPE of ``W(V)`` (nested optimization, ADH). The outer
     search is ``scipy.optimize.minimize`` with ``optim_method`` (default ``Nelder-Mead``) from
     ``optim_initial`` (``equal`` V, or ``ols``: V proportional to the squared coefficients of
     a regression of the units' mean pre-period outcome on the scaled predictors).

   Each inner problem is a non-negative least squares (``scipy.optimize.nnls``) on the system
   augmented with a heavily weighted sum-to-one row, then renormalized.
4. ATT = mean post-period gap (treated - synthetic) per treated unit and period.

Inference, one treated unit (ADH 2010; Firpo & Possebom 2018)
-------------------------------------------------------------
Every donor is a placebo exactly once: it is treated in turn, fitted (same specification) on
the other donors (the treated unit is never a donor), giving its pre- and post-period RMSPE.

* p-value: the rank of the treated unit's post/pre RMSPE ratio among all ``J + 1`` units,
  ``p = (1 + #{placebo ratio >= treated ratio}) / (J + 1)`` (so ``1/39`` when California ranks
  first among 39 states).
* CI (``ci_method: inversion``, default): the 95% confidence set of a constant effect ``c`` by
  inverting that test (Firpo & Possebom 2018): subtracting ``c`` from the treated unit's
  post-period outcomes leaves the placebos unchanged and turns its ratio into
  ``sqrt(s2 + (ATT - c)^2) / pre_RMSPE`` (``s2`` the variance of its post-period gaps around the
  ATT), so ``c`` is kept while its p-value exceeds 0.05: an interval ``ATT -/+ h`` in closed
  form. With fewer than 20 units no p-value can be <= 0.05, the set is the whole line, and the
  CI is ``None`` (said in ``ci_method``); an empty set (even ``c = ATT`` rejected) is also
  ``None``.
* ``standard_error``: the root mean square of the post-period ATTs of the placebos whose
  pre-period MSPE is at most ``placebo_fit_cutoff`` (default 5) times the treated unit's (ADH
  drop poorly fitting placebos when comparing gaps); ``None`` with fewer than 2 such placebos.
  ``ci_method: placebo_se`` reports ``ATT -/+ t(n_good) * SE`` as the CI instead.

Inference, several treated units
--------------------------------
``n_placebos`` (default 30) placebo groups of the size of the treated group are drawn from the
donors (deterministically from ``random_state``, default 0), each fitted on the remaining donors.
SE = root mean square of the placebo-group ATTs, CI = ``ATT -/+ t(n_placebos) * SE``; p-value =
rank of the post/pre RMSPE ratio among the groups. Single-unit placebos would not have the
variance of an average over the treated group, hence groups.

Parameters
----------
treatment_time : date or integer period, required. Post period = times ``>= treatment_time``.
treated_unit : str or list of str, optional.
outcome_column : str, default ``dependent_variable`` or ``revenue``.
unit_column : str, default ``unit_id``; ``product_id`` when ``unit_id`` is not a column.
time_column : str, default ``date``.
treatment_column : str, optional (the indicator column; default ``enriched`` or ``treatment``).
predictors : list, optional. Column names (mean over the pre-period) or mappings
    ``{column, start, end}`` (mean over ``start..end``, inclusive); missing values inside a
    window are skipped (a unit with none in a window is an error).
optim_method, optim_initial : the V search (only with ``predictors``; refused otherwise).
placebo_fit_cutoff : number > 0, default 5.
ci_method : ``inversion`` (default) or ``placebo_se`` (one treated unit).
n_placebos : int >= 5, random_state : int >= 0 (several treated units only; refused otherwise).

Sample size: the number of units in the panel (treated + donors). The model's own minimum:
2 donors, 3 pre-periods and 1 post-period.
``true_effect``: mean over treated units and post-period times of ``outcome - outcome_y0``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import nnls

from impact_assets.measure.models._data import require_columns, require_no_missing
from impact_assets.measure.models._params import (
    get_choice,
    get_int,
    get_positive_number,
    get_str,
    param_error,
)
from impact_assets.measure.models._time import TimeAxis, time_param, time_text
from impact_assets.measure.models.base import Model, ModelError, ModelFit, register_model

NAME = "synthetic_control"
INDICATOR_COLUMNS = ("enriched", "treatment")
MIN_PRE_PERIODS = 3
MIN_POOL = 2
ALPHA = 0.05
DEFAULT_N_PLACEBOS = 30
DEFAULT_PLACEBO_FIT_CUTOFF = 5.0
OPTIM_METHODS = ("nelder-mead", "powell", "cg", "bfgs", "l-bfgs-b", "tnc", "cobyla", "slsqp")
OPTIM_INITIAL = ("equal", "ols")
CI_METHODS = ("inversion", "placebo_se")
#: The V search's multi-start (deterministic): Dirichlet draws per predictor, their seed, and
#: how many of the best starts the local search refines.
RANDOM_STARTS_PER_PREDICTOR = 20
V_SEARCH_SEED = 0
N_LOCAL = 1


def simplex_weights(donors: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Least-squares weights on the probability simplex.

    Parameters
    ----------
    donors : (T, J) array of donor outcomes (or scaled predictors).
    target : (T,) array.

    Returns
    -------
    (J,) array, non-negative, summing to one.
    """
    scale = max(1.0, float(np.sqrt(np.mean(donors**2))))
    penalty = 1e3 * scale * np.sqrt(donors.shape[0])
    system = np.vstack([donors, np.full((1, donors.shape[1]), penalty)])
    rhs = np.append(target, penalty)
    weights, _ = nnls(system, rhs, maxiter=50 * donors.shape[1])
    total = weights.sum()
    if total <= 0:
        return np.full(donors.shape[1], 1.0 / donors.shape[1])
    return weights / total


@dataclass(frozen=True)
class _Predictor:
    column: str
    start: Any  # a validated time parameter or None (pre-period start)
    end: Any

    def label(self) -> str:
        if self.start is None and self.end is None:
            return self.column
        lo = "start" if self.start is None else time_text(self.start)
        hi = "end" if self.end is None else time_text(self.end)
        return f"{self.column} [{lo}..{hi}]" if lo != hi else f"{self.column} [{lo}]"


@dataclass
class _Panel:
    """The pivoted panel and the treated/donor split."""

    values: np.ndarray  # time x unit outcome
    times: np.ndarray  # sorted unique times
    axis: TimeAxis
    treated: list[str]
    donors: list[str]
    post: np.ndarray  # bool per time
    unit_column: str
    units: list[str]  # the matrix columns, in order
    predictors: np.ndarray | None = None  # predictor x unit (unscaled), or None
    predictor_labels: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class _Fit:
    """One synthetic-control fit (treated unit or placebo)."""

    weights: np.ndarray
    synthetic: np.ndarray
    gap: np.ndarray
    att: float
    pre_mspe: float
    post_mspe: float
    v: np.ndarray | None = None

    @property
    def ratio(self) -> float:
        if self.pre_mspe <= 0:
            return math.inf if self.post_mspe > 0 else 0.0
        return math.sqrt(self.post_mspe / self.pre_mspe)


def _as_list(value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return [str(value)]


def _predictors(params: Mapping[str, Any]) -> list[_Predictor] | None:
    raw = params.get("predictors")
    if raw is None:
        return None
    if isinstance(raw, str):
        raw = [raw]
    requirement = (
        "must be a list of column names or of mappings {column, start, end} (times in the type "
        "of the time column)"
    )
    if not isinstance(raw, list | tuple) or not raw:
        raise param_error(NAME, "predictors", requirement, raw)
    out = []
    for item in raw:
        if isinstance(item, str) and item.strip():
            out.append(_Predictor(item.strip(), None, None))
            continue
        if not isinstance(item, Mapping) or set(item) - {"column", "start", "end"}:
            raise param_error(NAME, "predictors", requirement, item)
        column = item.get("column")
        if not isinstance(column, str) or not column.strip():
            raise param_error(NAME, "predictors", requirement, item)
        start = None if item.get("start") is None else time_param(item, "start", NAME)
        end = None if item.get("end") is None else time_param(item, "end", NAME)
        out.append(_Predictor(column.strip(), start, end))
    labels = [p.label() for p in out]
    if len(set(labels)) != len(labels):
        raise param_error(NAME, "predictors", "must not repeat a predictor", raw)
    return out


@register_model
class SyntheticControl(Model):
    """Synthetic control with placebo inference; see the module docstring."""

    name = NAME
    sample_size_unit = "units in the panel"
    accepted_params = frozenset(
        {
            "treatment_time",
            "treated_unit",
            "outcome_column",
            "dependent_variable",
            "unit_column",
            "time_column",
            "treatment_column",
            "predictors",
            "optim_method",
            "optim_initial",
            "placebo_fit_cutoff",
            "ci_method",
            "n_placebos",
            "random_state",
        }
    )

    def validate_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        treated = params.get("treated_unit")
        if treated is not None:
            ok = isinstance(treated, str | int) and not isinstance(treated, bool)
            if isinstance(treated, list | tuple):
                ok = bool(treated) and all(
                    isinstance(v, str | int) and not isinstance(v, bool) for v in treated
                )
            if not ok or (isinstance(treated, str) and not treated.strip()):
                raise param_error(
                    NAME, "treated_unit", "must be a unit id or a list of ids", treated
                )
        outcome = get_str(params, "outcome_column", NAME) or get_str(
            params, "dependent_variable", NAME, default="revenue"
        )
        predictors = _predictors(params)
        optim_method = params.get("optim_method")
        optim_initial = params.get("optim_initial")
        if predictors is None:
            for key in ("optim_method", "optim_initial"):
                if params.get(key) is not None:
                    raise ModelError(
                        f"{NAME}: parameter {key!r} ({params[key]!r}) applies only to the V "
                        "search with 'predictors'; the outcome-only fit has no V (remove it, "
                        "or give 'predictors')"
                    )
        else:
            optim_method = get_choice(
                params, "optim_method", NAME, choices=OPTIM_METHODS, default="nelder-mead"
            )
            optim_initial = get_choice(
                params, "optim_initial", NAME, choices=OPTIM_INITIAL, default="equal"
            )
        return {
            "treatment_time": time_param(params, "treatment_time", NAME),
            "treated_unit": _as_list(treated),
            "outcome_column": outcome,
            "unit_column": get_str(params, "unit_column", NAME, default="unit_id"),
            "time_column": get_str(params, "time_column", NAME, default="date"),
            "treatment_column": get_str(params, "treatment_column", NAME),
            "predictors": predictors,
            "optim_method": optim_method,
            "optim_initial": optim_initial,
            "placebo_fit_cutoff": get_positive_number(
                params, "placebo_fit_cutoff", NAME, default=DEFAULT_PLACEBO_FIT_CUTOFF
            ),
            "ci_method": get_choice(
                params, "ci_method", NAME, choices=CI_METHODS, default=CI_METHODS[0]
            ),
            "n_placebos": get_int(params, "n_placebos", NAME, default=None, minimum=5),
            "random_state": get_int(params, "random_state", NAME, default=None, minimum=0),
        }

    # -- data preparation ----------------------------------------------------------------
    @staticmethod
    def _unit_column(data: pd.DataFrame, params: Mapping[str, Any]) -> str:
        unit = params["unit_column"]
        if unit == "unit_id" and unit not in data.columns and "product_id" in data.columns:
            unit = "product_id"
        return unit

    def _panel(self, data: pd.DataFrame, params: Mapping[str, Any]) -> _Panel:
        unit = self._unit_column(data, params)
        time, outcome = params["time_column"], params["outcome_column"]
        require_columns(data, [unit, outcome], NAME)
        axis = TimeAxis.parse(data, time, NAME)
        require_no_missing(data, [unit, outcome], NAME)
        codes, labels = pd.factorize(data[unit].astype(str), sort=True)
        labels = np.asarray(labels).astype(str)
        t_codes, t_labels = pd.factorize(axis.values, sort=True)
        t_labels = np.asarray(t_labels)
        y = pd.to_numeric(data[outcome], errors="coerce").to_numpy(float)
        if np.isnan(y).any():
            raise ModelError(f"{NAME}: column {outcome!r} must be numeric")
        cell = t_codes * labels.size + codes
        counts = np.bincount(cell, minlength=t_labels.size * labels.size)
        if (counts > 1).any():
            raise ModelError(
                f"{NAME}: columns {unit!r} and {time!r} repeat a unit-time pair; "
                "the panel needs one row per unit and time"
            )
        n_missing = int((counts == 0).sum())
        if n_missing:
            raise ModelError(
                f"{NAME}: the panel is unbalanced ({n_missing} unit-time cells of column "
                f"{outcome!r} are missing); every unit needs every time"
            )
        values = np.empty(t_labels.size * labels.size)
        values[cell] = y
        values = values.reshape(t_labels.size, labels.size)
        units = labels.tolist()
        treated, flagged, warnings = self._treated_units(data, params, unit, units, codes)
        excluded = set(treated) | set(flagged)
        donors = [u for u in units if u not in excluded]
        start = axis.point(params["treatment_time"], "treatment_time", NAME)
        post = t_labels >= start
        panel = _Panel(values, t_labels, axis, treated, donors, post, unit, units)
        panel.warnings.extend(warnings)
        if params.get("predictors"):
            panel.predictors, panel.predictor_labels = self._predictor_matrix(
                data, params, axis, codes, len(units), t_labels[~post]
            )
        return panel

    @staticmethod
    def _predictor_matrix(
        data: pd.DataFrame,
        params: Mapping[str, Any],
        axis: TimeAxis,
        codes: np.ndarray,
        n_units: int,
        pre_times: np.ndarray,
    ) -> tuple[np.ndarray, list[str]]:
        """Predictor x unit matrix: each predictor's mean over its window, per unit."""
        rows, labels = [], []
        for predictor in params["predictors"]:
            require_columns(data, [predictor.column], NAME)
            series = pd.to_numeric(data[predictor.column], errors="coerce")
            if series.isna().all():
                raise ModelError(
                    f"{NAME}: predictor column {predictor.column!r} must be numeric and hold values"
                )
            lo = (
                pre_times[0]
                if predictor.start is None
                else axis.point(predictor.start, "predictors", NAME)
            )
            hi = (
                pre_times[-1]
                if predictor.end is None
                else axis.point(predictor.end, "predictors", NAME)
            )
            if hi > pre_times[-1]:
                raise ModelError(
                    f"{NAME}: parameter 'predictors': the window of {predictor.label()} ends "
                    f"after the pre-period (last pre-period time {axis.label(pre_times[-1])})"
                )
            in_window = (axis.values >= lo) & (axis.values <= hi)
            values = series.to_numpy(float)
            usable = in_window & ~np.isnan(values)
            sums = np.bincount(codes[usable], weights=values[usable], minlength=n_units)
            counts = np.bincount(codes[usable], minlength=n_units)
            if (counts == 0).any():
                labels_missing = int((counts == 0).sum())
                raise ModelError(
                    f"{NAME}: parameter 'predictors': column {predictor.column!r} has no value "
                    f"in the window of {predictor.label()} for {labels_missing} unit(s)"
                )
            rows.append(sums / counts)
            labels.append(predictor.label())
        return np.vstack(rows), labels

    @staticmethod
    def _treated_units(
        data: pd.DataFrame,
        params: Mapping[str, Any],
        unit: str,
        units: list[str],
        row_codes: np.ndarray,
    ) -> tuple[list[str], list[str], list[str]]:
        """Treated units, every unit the indicator marks as treated, and warnings."""
        indicator = params.get("treatment_column")
        if indicator is None:
            indicator = next((c for c in INDICATOR_COLUMNS if c in data.columns), None)
        flagged: list[str] | None = None
        if indicator is not None:
            require_columns(data, [indicator], NAME)
            require_no_missing(data, [indicator], NAME)
            series = data[indicator]
            if not (pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series)):
                raise ModelError(
                    f"{NAME}: treatment column {indicator!r} must be boolean or 0/1, "
                    f"got dtype {series.dtype}"
                )
            mask = series.to_numpy(dtype=float) != 0
            flagged = [units[c] for c in np.unique(row_codes[mask])]
        configured = params["treated_unit"]
        warnings: list[str] = []
        if configured is not None:
            known = set(units)
            unknown = [u for u in configured if u not in known]
            if unknown and flagged is None:
                shown = ", ".join(repr(u) for u in units[:5]) + (", ..." if len(units) > 5 else "")
                raise ModelError(
                    f"{NAME}: parameter 'treated_unit' names unit(s) {unknown} not found in "
                    f"column {unit!r} ({len(units)} units: {shown})"
                )
            if not unknown and (flagged is None or set(configured) <= set(flagged)):
                return sorted(configured), flagged or [], warnings
            problem = f"not found in column {unit!r}" if unknown else "not treated"
            warnings.append(
                f"configured treated_unit {configured} is {problem} according to the data "
                f"(column {indicator!r}); using the {len(flagged or [])} treated unit(s) "
                "from that column"
            )
        if not flagged:
            if indicator is None:
                raise ModelError(
                    f"{NAME}: parameter 'treated_unit' is required when the data have no "
                    f"{' or '.join(repr(c) for c in INDICATOR_COLUMNS)} column"
                )
            raise ModelError(
                f"{NAME}: treatment column {indicator!r} marks no unit as treated "
                "(constant treatment)"
            )
        if len(flagged) == len(units):
            raise ModelError(
                f"{NAME}: treatment column {indicator!r} marks every unit as treated "
                "(no donor units)"
            )
        return flagged, flagged, warnings

    @staticmethod
    def _check_panel(panel: _Panel, params: Mapping[str, Any]) -> None:
        if len(panel.donors) < MIN_POOL:
            raise ModelError(
                f"{NAME}: column {panel.unit_column!r}: {len(panel.donors)} donor unit(s) found "
                f"besides the {len(panel.treated)} treated; at least {MIN_POOL} are needed"
            )
        n_pre, n_post = int((~panel.post).sum()), int(panel.post.sum())
        if n_pre < MIN_PRE_PERIODS or n_post < 1:
            first, last = panel.axis.label(panel.times[0]), panel.axis.label(panel.times[-1])
            raise ModelError(
                f"{NAME}: parameter 'treatment_time' ({time_text(params['treatment_time'])}) "
                f"leaves {n_pre} pre- and {n_post} post-period times in column "
                f"{params['time_column']!r} ({first} to {last}); at least {MIN_PRE_PERIODS} "
                "pre and 1 post are needed"
            )

    def sample_size(self, data: pd.DataFrame, params: Mapping[str, Any]) -> int:
        """The number of units in the panel (treated and donors)."""
        unit = self._unit_column(data, params)
        require_columns(data, [unit], NAME)
        return int(data[unit].astype(str).nunique())

    def check_minimum(self, data: pd.DataFrame, params: Mapping[str, Any]) -> None:
        """At least 2 donors, 3 pre-period times and 1 post-period time."""
        self._check_panel(self._panel(data, params), params)

    # -- estimation ------------------------------------------------------------------------
    @staticmethod
    def _weights_for_v(x0: np.ndarray, x1: np.ndarray, v: np.ndarray) -> np.ndarray:
        root = np.sqrt(v)[:, None]
        return simplex_weights(root * x0, root[:, 0] * x1)

    def _solve(
        self,
        values: np.ndarray,
        post: np.ndarray,
        target: np.ndarray,
        pool: np.ndarray,
        predictors: np.ndarray | None,
        target_predictors: np.ndarray | None,
        params: Mapping[str, Any],
    ) -> _Fit:
        """Fit ``target`` (a trajectory) on the donor columns ``pool``."""
        donors = values[:, pool]
        v = None
        if predictors is None:
            weights = simplex_weights(donors[~post], target[~post])
        else:
            x0 = predictors[:, pool]
            scale = np.column_stack([x0, target_predictors]).std(axis=1)
            scale[scale <= 0] = 1.0
            x0, x1 = x0 / scale[:, None], target_predictors / scale
            weights, v = self._nested(x0, x1, donors[~post], target[~post], params)
        synthetic = donors @ weights
        gap = target - synthetic
        return _Fit(
            weights=weights,
            synthetic=synthetic,
            gap=gap,
            att=float(gap[post].mean()),
            pre_mspe=float(np.mean(gap[~post] ** 2)),
            post_mspe=float(np.mean(gap[post] ** 2)),
            v=v,
        )

    def _nested(
        self,
        x0: np.ndarray,
        x1: np.ndarray,
        y0_pre: np.ndarray,
        y1_pre: np.ndarray,
        params: Mapping[str, Any],
    ) -> tuple[np.ndarray, np.ndarray]:
        """ADH's nested optimization: V (softmax of z) minimizing the pre-period MSPE."""
        from scipy.optimize import minimize  # lazy: see models/__init__

        k = x0.shape[0]

        def v_of(z: np.ndarray) -> np.ndarray:
            e = np.exp(z - z.max())
            return e / e.sum()

        def loss(z: np.ndarray) -> float:
            w = self._weights_for_v(x0, x1, v_of(z))
            return float(np.mean((y1_pre - y0_pre @ w) ** 2))

        # the loss is piecewise smooth with many local minima: a deterministic multi-start
        # (equal V, each predictor alone, RANDOM_STARTS_PER_PREDICTOR x k Dirichlet draws from a
        # fixed seed, and optim_initial), then the local search from the best N_LOCAL of them
        candidates = [np.full(k, 1.0 / k), *np.eye(k)]
        if params["optim_initial"] == "ols":
            design = np.column_stack([np.ones(x0.shape[1] + 1), np.column_stack([x0, x1]).T])
            outcome = np.append(y0_pre.mean(axis=0), y1_pre.mean())
            coef, *_ = np.linalg.lstsq(design, outcome, rcond=None)
            squared = np.maximum(coef[1:] ** 2, 1e-12)
            candidates.insert(0, squared / squared.sum())
        rng = np.random.default_rng(V_SEARCH_SEED)
        candidates.extend(rng.dirichlet(np.full(k, 0.3), size=RANDOM_STARTS_PER_PREDICTOR * k))
        starts = [np.log(np.maximum(np.asarray(c, dtype=float), 1e-8)) for c in candidates]
        scored = sorted(((loss(z), i) for i, z in enumerate(starts)), key=lambda item: item)
        best, best_z = scored[0][0], starts[scored[0][1]]
        if k > 1:
            method = {"nelder-mead": "Nelder-Mead", "l-bfgs-b": "L-BFGS-B"}.get(
                params["optim_method"], params["optim_method"].upper()
            )
            for _, i in scored[:N_LOCAL]:
                result = minimize(loss, starts[i], method=method, options={"maxiter": 100 * k})
                if np.isfinite(result.fun) and result.fun < best:
                    best_z, best = np.asarray(result.x, dtype=float), float(result.fun)
        v = v_of(best_z)
        return self._weights_for_v(x0, x1, v), v

    def _placebos_single(
        self, panel: _Panel, donor_idx: np.ndarray, params: Mapping[str, Any]
    ) -> list[tuple[str, _Fit]]:
        """Every donor once, fitted on the other donors (the treated unit is never a donor)."""
        out = []
        for position, j in enumerate(donor_idx):
            pool = np.delete(donor_idx, position)
            x = panel.predictors
            out.append(
                (
                    panel.units[j],
                    self._solve(
                        panel.values,
                        panel.post,
                        panel.values[:, j],
                        pool,
                        x,
                        None if x is None else x[:, j],
                        params,
                    ),
                )
            )
        return out

    def _placebos_groups(
        self, panel: _Panel, donor_idx: np.ndarray, n_treated: int, params: Mapping[str, Any]
    ) -> list[tuple[str, _Fit]]:
        """Placebo groups of ``n_treated`` donors, each fitted on the remaining donors."""
        if donor_idx.size - n_treated < MIN_POOL:
            return []
        rng = np.random.default_rng(params.get("random_state") or 0)
        n_placebos = params.get("n_placebos") or DEFAULT_N_PLACEBOS
        out = []
        available = np.zeros(panel.values.shape[1], dtype=bool)
        x = panel.predictors
        for _ in range(n_placebos):
            group = np.sort(rng.choice(donor_idx, size=n_treated, replace=False))
            available[:] = False
            available[donor_idx] = True
            available[group] = False
            pool = np.flatnonzero(available)
            target = panel.values[:, group].mean(axis=1)
            fit = self._solve(
                panel.values,
                panel.post,
                target,
                pool,
                x,
                None if x is None else x[:, group].mean(axis=1),
                params,
            )
            out.append(("+".join(panel.units[g] for g in group), fit))
        return out

    def fit(self, data: pd.DataFrame, params: Mapping[str, Any]) -> ModelFit:
        return self._fit(self._panel(data, params), params)

    def fit_and_true_effect(
        self, data: pd.DataFrame, params: Mapping[str, Any], *, simulated: bool
    ) -> tuple[ModelFit, float | None]:
        panel = self._panel(data, params)
        fit = self._fit(panel, params)
        if not simulated or f"{params['outcome_column']}_y0" not in data.columns:
            return fit, None
        return fit, self._true_effect(data, params, panel)

    def _fit(self, panel: _Panel, params: Mapping[str, Any]) -> ModelFit:
        self._check_panel(panel, params)
        single = len(panel.treated) == 1
        for key in ("n_placebos", "random_state"):
            if single and params.get(key) is not None:
                raise ModelError(
                    f"{NAME}: parameter {key!r} applies to a treated group of several units; "
                    "with one treated unit every donor is a placebo exactly once (remove it)"
                )
        if not single and params["ci_method"] != "inversion":
            raise ModelError(
                f"{NAME}: parameter 'ci_method' ({params['ci_method']!r}) applies to one "
                f"treated unit; {len(panel.treated)} are treated (remove it)"
            )
        values, post = panel.values, panel.post
        position = {u: i for i, u in enumerate(panel.units)}
        treated_idx = np.array([position[u] for u in panel.treated])
        donor_idx = np.array([position[u] for u in panel.donors])
        target = values[:, treated_idx].mean(axis=1)
        x = panel.predictors
        main = self._solve(
            values,
            post,
            target,
            donor_idx,
            x,
            None if x is None else x[:, treated_idx].mean(axis=1),
            params,
        )
        att = main.att
        if single:
            placebos = self._placebos_single(panel, donor_idx, params)
            inference = self._inference_single(main, placebos, params)
        else:
            placebos = self._placebos_groups(panel, donor_idx, treated_idx.size, params)
            inference = self._inference_groups(main, placebos, treated_idx.size)
        se, lower, upper, p_value, ci_method, extra = inference
        n_post, n_pre = int(post.sum()), int((~post).sum())
        scale = float(np.mean(np.abs(target[~post])))
        rmse = math.sqrt(main.pre_mspe)
        diagnostics: dict[str, Any] = {
            "n_observations": len(panel.units),
            "n_pre_periods": n_pre,
            "n_post_periods": n_post,
            "pre_period_rmse": rmse,
            "pre_period_rmse_relative": rmse / scale if scale > 0 else None,
            "n_donors": len(panel.donors),
            "n_treated_units": len(panel.treated),
            "n_placebos": len(placebos),
            "ci_method": ci_method,
            "rmspe_ratio": main.ratio if math.isfinite(main.ratio) else None,
            **extra,
        }
        if panel.warnings:
            diagnostics["warnings"] = list(panel.warnings)
        time_values = panel.times if panel.axis.kind == "period" else pd.DatetimeIndex(panel.times)
        artifacts: dict[str, pd.DataFrame] = {
            "trajectory": pd.DataFrame(
                {
                    panel.axis.column: time_values,
                    "treated": target,
                    "synthetic": main.synthetic,
                    "gap": main.gap,
                    "post": post,
                }
            )
        }
        if placebos:
            artifacts["placebos"] = self._placebo_table(main, panel, placebos, params)
        summary = {
            "n_pre_periods": n_pre,
            "n_post_periods": n_post,
            "n_control_units": len(panel.donors),
            "n_treated_units": len(panel.treated),
            "mspe": main.pre_mspe,
            "mae": float(np.mean(np.abs(main.gap[~post]))),
            "post_mspe": main.post_mspe,
            "weights": {
                u: round(float(w), 4) for u, w in zip(panel.donors, main.weights, strict=True)
            },
        }
        if main.v is not None:
            summary["v_weights"] = {
                label: round(float(v), 4)
                for label, v in zip(panel.predictor_labels, main.v, strict=True)
            }
        return ModelFit(
            model_type=NAME,
            effect_estimate=att,
            ci_lower=lower,
            ci_upper=upper,
            p_value=p_value,
            standard_error=se,
            estimand=(
                f"att (mean post-period gap per treated unit and {self._period(panel)}, in "
                f"units of {params['outcome_column']!r})"
            ),
            n_observations=len(panel.units),
            model_params={
                "treatment_time": time_text(params["treatment_time"]),
                "treated_unit": panel.treated[0] if single else panel.treated,
                "outcome_column": params["outcome_column"],
                "unit_column": panel.unit_column,
                "time_column": params["time_column"],
                "predictors": panel.predictor_labels or None,
                "optim_method": params["optim_method"],
                "optim_initial": params["optim_initial"],
                "placebo_fit_cutoff": params["placebo_fit_cutoff"],
                "ci_method": params["ci_method"] if single else "placebo_groups",
                "n_placebos": len(placebos),
                "random_state": None if single else (params.get("random_state") or 0),
            },
            impact_estimates={
                "att": att,
                "se": se,
                "ci_lower": lower,
                "ci_upper": upper,
                "cumulative_effect": att * n_post,
                "p_value": p_value,
            },
            model_summary=summary,
            diagnostics=diagnostics,
            artifacts=artifacts,
        )

    @staticmethod
    def _period(panel: _Panel) -> str:
        return panel.axis.periods(panel.times)[1]

    @staticmethod
    def _inference_single(
        main: _Fit, placebos: list[tuple[str, _Fit]], params: Mapping[str, Any]
    ) -> tuple[Any, ...]:
        n = len(placebos)
        ratios = np.array([fit.ratio for _, fit in placebos])
        p_value = float((1 + np.sum(ratios >= main.ratio)) / (n + 1))
        cutoff = params["placebo_fit_cutoff"]
        good = [fit for _, fit in placebos if fit.pre_mspe <= cutoff * main.pre_mspe]
        se = None
        if len(good) >= 2:
            se = float(np.sqrt(np.mean([fit.att**2 for fit in good])))
            if se <= 0:
                se = None
        extra: dict[str, Any] = {
            "p_value_method": (
                f"rank of the post/pre RMSPE ratio among all {n + 1} units (ADH 2010): "
                "(1 + #{placebo ratio >= treated ratio}) / (J + 1)"
            ),
            "n_placebos_good_fit": len(good),
            "placebo_fit_cutoff": cutoff,
        }
        lower = upper = None
        if params["ci_method"] == "placebo_se":
            if se is not None:
                from scipy import stats  # lazy: see models/__init__

                half = float(stats.t.ppf(1 - ALPHA / 2, df=len(good))) * se
                lower, upper = main.att - half, main.att + half
                ci = (
                    f"ATT -/+ t(df={len(good)}) x SE, SE = root mean square of the post-period "
                    f"ATTs of the {len(good)} placebos with pre-period MSPE <= {cutoff:g} x the "
                    "treated unit's"
                )
            else:
                ci = (
                    f"none: fewer than 2 placebos with pre-period MSPE <= {cutoff:g} x the "
                    "treated unit's"
                )
            return se, lower, upper, p_value, ci, extra
        m = math.floor(ALPHA * (n + 1) + 1e-9)
        method = (
            f"test inversion (Firpo & Possebom 2018) of the RMSPE-ratio placebo test over "
            f"{n} in-space placebos, constant effect, 95%"
        )
        if m < 1:
            ci = (
                f"none: {method}; with {n + 1} units no p-value can be <= {ALPHA} (needs at "
                f"least {math.ceil(1 / ALPHA)} units), so the 95% set is unbounded"
            )
            return se, None, None, p_value, ci, extra
        threshold = float(np.sort(ratios)[::-1][m - 1])  # the m-th largest placebo ratio
        s2 = main.post_mspe - main.att**2  # variance of the post gaps around the ATT
        room = threshold**2 * main.pre_mspe - s2
        if not math.isfinite(room) or room < 0:
            ci = f"none: {method}; every constant effect is rejected (empty set)"
            return se, None, None, p_value, ci, extra
        half = math.sqrt(room)
        if half <= 0:
            ci = f"none: {method}; the set is a single point"
            return se, None, None, p_value, ci, extra
        return se, main.att - half, main.att + half, p_value, method, extra

    @staticmethod
    def _inference_groups(
        main: _Fit, placebos: list[tuple[str, _Fit]], n_treated: int
    ) -> tuple[Any, ...]:
        n = len(placebos)
        if n < 2:
            ci = "none: too few donors to form placebo groups the size of the treated group"
            return None, None, None, None, ci, {}
        atts = np.array([fit.att for _, fit in placebos])
        se = float(np.sqrt(np.mean(atts**2)))
        from scipy import stats  # lazy: see models/__init__

        half = float(stats.t.ppf(1 - ALPHA / 2, df=n)) * se
        ratios = np.array([fit.ratio for _, fit in placebos])
        p_value = float((1 + np.sum(ratios >= main.ratio)) / (1 + n))
        ci = (
            f"in-space placebo groups ({n} groups of {n_treated} donor units): SE = RMS of "
            "placebo ATTs, CI = ATT -/+ t(df=n_placebos) * SE; p-value = rank of the post/pre "
            "RMSPE ratio among the groups"
        )
        if se <= 0:
            return None, None, None, p_value, ci, {}
        return se, main.att - half, main.att + half, p_value, ci, {}

    @staticmethod
    def _placebo_table(
        main: _Fit, panel: _Panel, placebos: list[tuple[str, _Fit]], params: Mapping[str, Any]
    ) -> pd.DataFrame:
        treated_name = "+".join(panel.treated)
        rows = [("treated", treated_name, main)] + [("placebo", n, f) for n, f in placebos]
        cutoff = params["placebo_fit_cutoff"]
        table = pd.DataFrame(
            {
                "role": [r[0] for r in rows],
                "unit": [r[1] for r in rows],
                "att": [r[2].att for r in rows],
                "pre_rmspe": [math.sqrt(r[2].pre_mspe) for r in rows],
                "post_rmspe": [math.sqrt(r[2].post_mspe) for r in rows],
                "ratio": [r[2].ratio for r in rows],
                "good_pre_fit": [r[2].pre_mspe <= cutoff * main.pre_mspe for r in rows],
            }
        )
        table["rank"] = table["ratio"].rank(ascending=False, method="max").astype(int)
        return table

    def true_effect(self, data: pd.DataFrame, params: Mapping[str, Any]) -> float | None:
        if f"{params['outcome_column']}_y0" not in data.columns:
            return None
        return self._true_effect(data, params, self._panel(data, params))

    @staticmethod
    def _true_effect(data: pd.DataFrame, params: Mapping[str, Any], panel: _Panel) -> float:
        """Mean of ``outcome - outcome_y0`` over the treated units' post-period rows."""
        outcome = params["outcome_column"]
        units = data[panel.unit_column].astype(str)
        start = panel.axis.point(params["treatment_time"], "treatment_time", NAME)
        rows = units.isin(panel.treated).to_numpy() & (panel.axis.values >= start)
        return float((data[outcome] - data[f"{outcome}_y0"])[rows].mean())
