"""``synthetic_control``: simplex-weighted donors fitted on the pre-period trajectory.

Method
------
1. Pivot the panel to a date x unit matrix of ``outcome_column`` (a balanced panel is required).
2. Treated units: the configured ``treated_unit`` (one id or a list); by default the units whose
   ``enriched`` (or ``treatment``) indicator is ever true. If the configured units are not among
   the indicator's treated units, or not in the data at all (upstream bug B4: the demo named an
   untreated product; with a regenerated catalog the id may not exist), the indicator's units
   are used and ``diagnostics['warnings']`` says so. Without an indicator column an unknown
   configured unit is an error. Donors are the units
   never marked as treated (other treated units are not donors).
3. The target is the average trajectory of the treated units. Weights ``w >= 0``, ``sum(w) = 1``
   minimize the pre-period squared gap between the target and ``donors @ w`` over **every
   pre-period date** (upstream matched only the pre-period mean, bug B14). The simplex
   constraint is imposed by non-negative least squares (``scipy.optimize.nnls``) on the system
   augmented with a heavily weighted sum-to-one row, then renormalized.
4. ATT = mean post-period gap (target - synthetic), per unit and date.

Inference (in-space placebos)
-----------------------------
``n_placebos`` placebo groups of the same size as the treated group are drawn from the donors
(deterministically from ``random_state``, default 0; with one treated unit, each donor in turn
when there are no more donors than placebos). Each placebo group is fitted against the remaining
donors exactly like the real one, giving placebo ATTs whose expected value is zero.

* p-value: permutation rank of ``|ATT| / pre-period RMSE`` among the placebos,
  ``(1 + #{placebo >= observed}) / (1 + n_placebos)``; its smallest possible value is
  ``1 / (1 + n_placebos)``.
* standard error: root mean square of the placebo ATTs; 95% CI: ``ATT -/+ t(n_placebos) * se``
  (a placebo-calibrated normal-theory interval; it assumes units are exchangeable). With few
  donors the placebo distribution is coarse and the CI is correspondingly uncertain. When the
  donors cannot form a placebo group plus a pool of two donors, CI, SE and p-value are ``None``.

Parameters
----------
treatment_time : date, required. Post period = dates ``>= treatment_time``.
treated_unit : str or list of str, optional.
outcome_column : str, default ``dependent_variable`` or ``revenue``.
unit_column : str, default ``unit_id``; ``product_id`` when ``unit_id`` is not a column.
time_column : str, default ``date``.
n_placebos : int >= 5, default 30.   random_state : int, default 0.
optim_method, optim_initial : upstream (pysyncon) options, accepted and ignored.

Sample size: ``n_observations`` is the number of units (treated + donors).
``true_effect``: mean over treated units and post-period dates of ``outcome - outcome_y0``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import nnls

from impact_assets.measure.models._data import (
    require_columns,
    require_min_units,
    require_no_missing,
)
from impact_assets.measure.models._params import (
    get_int,
    get_str,
    get_timestamp,
    param_error,
)
from impact_assets.measure.models.base import Model, ModelError, ModelFit, register_model

NAME = "synthetic_control"
INDICATOR_COLUMNS = ("enriched", "treatment")
MIN_PRE_PERIODS = 3
MIN_POOL = 2


def simplex_weights(donors: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Least-squares weights on the probability simplex.

    Parameters
    ----------
    donors : (T, J) array of donor outcomes.
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


@dataclass
class _Panel:
    """The pivoted panel and the treated/donor split."""

    matrix: pd.DataFrame  # date x unit
    treated: list[str]
    donors: list[str]
    post: np.ndarray  # bool per date
    unit_column: str
    warnings: list[str] = field(default_factory=list)
    units: list[str] = field(default_factory=list)  # the matrix columns, in order


def _as_list(value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return [str(value)]


@register_model
class SyntheticControl(Model):
    """Synthetic control with placebo inference; see the module docstring."""

    name = NAME

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
        random_state = get_int(params, "random_state", NAME, default=0, minimum=0)
        return {
            "treatment_time": get_timestamp(params, "treatment_time", NAME),
            "treated_unit": _as_list(treated),
            "outcome_column": outcome,
            "unit_column": get_str(params, "unit_column", NAME, default="unit_id"),
            "time_column": get_str(params, "time_column", NAME, default="date"),
            "n_placebos": get_int(params, "n_placebos", NAME, default=30, minimum=5),
            "random_state": random_state,
            "treatment_column": get_str(params, "treatment_column", NAME),
        }

    # -- data preparation ----------------------------------------------------------------
    def _panel(self, data: pd.DataFrame, params: Mapping[str, Any]) -> _Panel:
        unit = params["unit_column"]
        if unit == "unit_id" and unit not in data.columns and "product_id" in data.columns:
            unit = "product_id"
        time, outcome = params["time_column"], params["outcome_column"]
        require_columns(data, [unit, time, outcome], NAME)
        require_no_missing(data, [unit, time, outcome], NAME)
        codes, labels = pd.factorize(data[unit], sort=True)
        labels = np.asarray(labels).astype(str)
        times = pd.to_datetime(data[time])
        t_codes, t_labels = pd.factorize(times, sort=True)
        y = pd.to_numeric(data[outcome], errors="coerce").to_numpy(float)
        if np.isnan(y).any():
            raise ModelError(f"{NAME}: column {outcome!r} must be numeric")
        cell = t_codes * labels.size + codes
        counts = np.bincount(cell, minlength=t_labels.size * labels.size)
        if (counts > 1).any():
            raise ModelError(
                f"{NAME}: columns {unit!r} and {time!r} repeat a unit-date pair; "
                "the panel needs one row per unit and date"
            )
        n_missing = int((counts == 0).sum())
        if n_missing:
            raise ModelError(
                f"{NAME}: the panel is unbalanced ({n_missing} unit-date cells of column "
                f"{outcome!r} are missing); every unit needs every date"
            )
        values = np.empty(t_labels.size * labels.size)
        values[cell] = y
        matrix = pd.DataFrame(
            values.reshape(t_labels.size, labels.size),
            index=pd.DatetimeIndex(t_labels),
            columns=labels,
        )
        units = labels.tolist()  # == list(matrix.columns), without iterating a str Index
        require_min_units(len(units), "units", NAME)
        treated, flagged, warnings = self._treated_units(data, params, unit, units, codes)
        excluded = set(treated) | set(flagged)
        donors = [u for u in units if u not in excluded]
        if len(donors) < MIN_POOL:
            raise ModelError(
                f"{NAME}: only {len(donors)} donor unit(s) besides the treated ones; "
                f"at least {MIN_POOL} are needed"
            )
        post = np.asarray(matrix.index >= params["treatment_time"])
        n_pre, n_post = int((~post).sum()), int(post.sum())
        if n_pre < MIN_PRE_PERIODS or n_post < 1:
            raise ModelError(
                f"{NAME}: parameter 'treatment_time' leaves {n_pre} pre- and {n_post} "
                f"post-period dates; at least {MIN_PRE_PERIODS} pre and 1 post are needed"
            )
        return _Panel(matrix, treated, donors, post, unit, warnings, units)

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
                raise ModelError(
                    f"{NAME}: parameter 'treated_unit' names unit(s) {unknown} not found in "
                    f"column {unit!r}"
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

    # -- estimation ------------------------------------------------------------------------
    @staticmethod
    def _gap(
        values: np.ndarray, post: np.ndarray, group: np.ndarray, pool: np.ndarray
    ) -> tuple[float, float, np.ndarray, np.ndarray]:
        """ATT, pre-period RMSE, weights and the synthetic trajectory for one group."""
        target = values[:, group].mean(axis=1)
        donors = values[:, pool]
        weights = simplex_weights(donors[~post], target[~post])
        synthetic = donors @ weights
        gap = target - synthetic
        return float(gap[post].mean()), float(np.sqrt(np.mean(gap[~post] ** 2))), weights, synthetic

    def _placebos(
        self, values: np.ndarray, post: np.ndarray, donor_idx: np.ndarray, n_treated: int, params
    ) -> np.ndarray:
        """Placebo (ATT, pre-RMSE) pairs, shape (P, 2); empty when donors are too few."""
        n_donors = donor_idx.size
        if n_donors - n_treated < MIN_POOL:
            return np.empty((0, 2))
        rng = np.random.default_rng(params["random_state"])
        n_placebos = params["n_placebos"]
        if n_treated == 1 and n_donors <= n_placebos:
            groups = [np.array([d]) for d in donor_idx]
        else:
            groups = [
                rng.choice(donor_idx, size=n_treated, replace=False) for _ in range(n_placebos)
            ]
        out = np.empty((len(groups), 2))
        available = np.zeros(values.shape[1], dtype=bool)
        for k, group in enumerate(groups):
            available[donor_idx] = True
            available[group] = False
            pool = np.flatnonzero(available)
            att, rmse, _, _ = self._gap(values, post, group, pool)
            out[k] = att, rmse
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
        matrix, post = panel.matrix, panel.post
        values = matrix.to_numpy(float)
        position = {u: i for i, u in enumerate(panel.units)}
        treated_idx = np.array([position[u] for u in panel.treated])
        donor_idx = np.array([position[u] for u in panel.donors])
        att, rmse, weights, synthetic = self._gap(values, post, treated_idx, donor_idx)
        placebos = self._placebos(values, post, donor_idx, treated_idx.size, params)
        n_pl = len(placebos)
        se = lower = upper = p_value = None
        if n_pl >= 2:
            se = float(np.sqrt(np.mean(placebos[:, 0] ** 2)))
            from scipy import stats  # lazy: see models/__init__

            half = float(stats.t.ppf(0.975, df=n_pl)) * se
            lower, upper = att - half, att + half
            ratio = abs(att) / rmse if rmse > 0 else np.inf
            with np.errstate(divide="ignore"):
                placebo_ratio = np.abs(placebos[:, 0]) / placebos[:, 1]
            p_value = float((1 + np.sum(placebo_ratio >= ratio)) / (1 + n_pl))
            ci_method = (
                f"in-space placebos ({n_pl} groups of {treated_idx.size} donor unit(s)): "
                "SE = RMS of placebo ATTs, CI = ATT -/+ t(df=n_placebos) * SE; "
                "p-value = permutation rank of |ATT| / pre-period RMSE"
            )
        else:
            ci_method = "none: too few donors to form placebo groups the size of the treated group"
        target = values[:, treated_idx].mean(axis=1)
        gap = target - synthetic
        n_post, n_pre = int(post.sum()), int((~post).sum())
        scale = float(np.mean(np.abs(target[~post])))
        n_units = values.shape[1]
        treatment_text = str(params["treatment_time"])
        diagnostics = {
            "n_observations": n_units,
            "n_pre_periods": n_pre,
            "n_post_periods": n_post,
            "pre_period_rmse": rmse,
            "pre_period_rmse_relative": rmse / scale if scale > 0 else None,
            "n_donors": len(panel.donors),
            "n_treated_units": len(panel.treated),
            "n_placebos": n_pl,
            "ci_method": ci_method,
        }
        if panel.warnings:
            diagnostics["warnings"] = list(panel.warnings)
        trajectory = pd.DataFrame(
            {
                "date": matrix.index,
                "treated": target,
                "synthetic": synthetic,
                "gap": gap,
                "post": post,
            }
        )
        artifacts = {"trajectory": trajectory}
        if n_pl:
            artifacts["placebos"] = pd.DataFrame(
                {"placebo": np.arange(n_pl), "att": placebos[:, 0], "pre_rmse": placebos[:, 1]}
            )
        return ModelFit(
            model_type=NAME,
            effect_estimate=att,
            ci_lower=lower,
            ci_upper=upper,
            p_value=p_value,
            standard_error=se,
            estimand="att (mean post-period effect per treated unit and date)",
            n_observations=n_units,
            model_params={
                "treatment_time": treatment_text,
                "treated_unit": panel.treated[0] if len(panel.treated) == 1 else panel.treated,
                "outcome_column": params["outcome_column"],
                "unit_column": panel.unit_column,
                "n_placebos": params["n_placebos"],
                "random_state": params["random_state"],
            },
            impact_estimates={
                "att": att,
                "se": se,
                "ci_lower": lower,
                "ci_upper": upper,
                "cumulative_effect": att * n_post,
                "p_value": p_value,
            },
            model_summary={
                "n_pre_periods": n_pre,
                "n_post_periods": n_post,
                "n_control_units": len(panel.donors),
                "n_treated_units": len(panel.treated),
                "mspe": float(np.mean(gap[~post] ** 2)),
                "mae": float(np.mean(np.abs(gap[~post]))),
                "weights": {
                    u: round(float(w), 4) for u, w in zip(panel.donors, weights, strict=True)
                },
            },
            diagnostics=diagnostics,
            artifacts=artifacts,
        )

    def true_effect(self, data: pd.DataFrame, params: Mapping[str, Any]) -> float | None:
        if f"{params['outcome_column']}_y0" not in data.columns:
            return None
        return self._true_effect(data, params, self._panel(data, params))

    @staticmethod
    def _true_effect(data: pd.DataFrame, params: Mapping[str, Any], panel: _Panel) -> float:
        """Mean of ``outcome - outcome_y0`` over the treated units' post-period rows."""
        outcome = params["outcome_column"]
        units = data[panel.unit_column].astype(str)
        times = pd.to_datetime(data[params["time_column"]])
        rows = units.isin(panel.treated).to_numpy() & (times >= params["treatment_time"]).to_numpy()
        return float((data[outcome] - data[f"{outcome}_y0"])[rows].mean())
