"""``interrupted_time_series``: segmented regression with HAC standard errors.

Model (Bernal, Cummins & Gasparrini 2017), one value per period::

    y_t = b0 + b1 * t + b2 * D_t [+ b3 * (t - T0) * D_t] + e_t

with ``t`` the period index (0, 1, 2, ... in the period of the data: day, week, month, quarter,
year, or one unit of an integer period column), ``D_t = 1`` from ``intervention_date`` on and
``T0`` the first post-period period. ``b2`` is the **level change at the intervention** (the
headline effect, in units of the dependent variable); ``b1`` the pre-period trend and ``b3``
(only with ``slope_change: true``) the change in trend, both per period of the data. Upstream
fitted SARIMAX without a constant, so its "effect" was the post-period level (bug B1).

Inference: OLS with Newey-West (HAC) covariance, as Bernal et al. do; ``maxlags`` =
``hac_maxlags`` or, by default, ``floor(4 * (n / 100) ** (2 / 9))``; t reference distribution
with the residual degrees of freedom. The slope change has its own SE, CI and p-value.
Diagnostics: Durbin-Watson and Ljung-Box statistics of the residuals (autocorrelation left in
them means the HAC correction is doing real work, or that seasonality is missing), and the fit of
the pre-period trend alone (R², RMSE).

Input shapes
------------
* One series: one row per period (``time_column`` unique); no unit column needed.
* A panel (several rows per period): choose one series with ``unit`` (a value of
  ``unit_column``), or aggregate per period with ``aggregate: sum`` or ``aggregate: mean``.
  Without either a panel is refused (nothing is summed silently).

Parameters
----------
intervention_date : date or integer period, required (same type as the time column)
dependent_variable : str, default ``revenue``
time_column : str, default ``date`` (dates, datetimes or integer periods; see ``_time``)
unit : str or int, optional. Select this unit of a panel.
unit_column : str, optional. Default ``product_id``, else ``unit_id``.
aggregate : ``sum`` or ``mean``, optional. Aggregate a panel per period.
slope_change : bool, default false
hac_maxlags : int >= 0, optional
order, seasonal_order : accepted for upstream compatibility (SARIMAX orders) and **ignored**;
    the segmented regression handles autocorrelation through the HAC covariance. Their shape
    is still checked (3 and 4 integers) so an upstream config error is not hidden.

Estimand
--------
A level-shift model summarizes the per-period effect path ``tau_t`` (zero before the
intervention) by its least-squares projection on the same design: ``true_effect`` regresses
``tau_t = y_t - y0_t`` (observed minus untreated potential outcome, aggregated like the series)
on ``[1, t, D_t(, (t - T0) D_t)]`` and returns the coefficient on ``D_t``. For a constant effect
this is exactly the post-period mean shift; for a ramping effect it is the weighted average the
regression actually targets.

Sample size and minimum
-----------------------
``sample_size`` = the number of periods in the series. The model's own minimum is
:data:`MIN_SIDE` periods on each side of the intervention; MEASURE also applies the run's
``min_sample_size`` (30 by default) to the number of periods.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from impact_assets.measure.models._data import (
    numeric_column,
    require_columns,
    require_no_missing,
)
from impact_assets.measure.models._params import (
    get_bool,
    get_choice,
    get_int,
    get_str,
    param_error,
)
from impact_assets.measure.models._time import TimeAxis, time_param, time_text
from impact_assets.measure.models.base import Model, ModelError, ModelFit, register_model

NAME = "interrupted_time_series"
MIN_SIDE = 3
AGGREGATIONS = ("sum", "mean")
#: Ljung-Box p-value below which the residuals are reported as autocorrelated.
AUTOCORRELATION_ALPHA = 0.05


def default_maxlags(n: int) -> int:
    """Newey-West rule of thumb ``floor(4 (n/100)^(2/9))``."""
    return math.floor(4.0 * (n / 100.0) ** (2.0 / 9.0))


def _check_order(params: Mapping[str, Any], key: str, length: int) -> None:
    value = params.get(key)
    if value is None:
        return
    ok = isinstance(value, list | tuple) and len(value) == length
    if ok:
        ok = all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)
    if not ok:
        raise param_error(
            NAME, key, f"must be a list of {length} non-negative integers (it is ignored)", value
        )


@dataclass
class _Series:
    """One series, sorted by time, with its design matrix."""

    times: np.ndarray  # unique, sorted (datetime64 or int64)
    axis: TimeAxis
    y: np.ndarray
    y0: np.ndarray | None
    t: np.ndarray  # period index
    period: str
    post: np.ndarray
    design: np.ndarray
    selection: str  # how the series was obtained


@register_model
class InterruptedTimeSeries(Model):
    """Segmented regression; see the module docstring."""

    name = NAME
    sample_size_unit = "periods of the series"
    accepted_params = frozenset(
        {
            "intervention_date",
            "dependent_variable",
            "time_column",
            "unit",
            "unit_column",
            "aggregate",
            "slope_change",
            "hac_maxlags",
            "order",
            "seasonal_order",
        }
    )

    def validate_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        _check_order(params, "order", 3)
        _check_order(params, "seasonal_order", 4)
        unit = params.get("unit")
        if unit is not None and (
            isinstance(unit, bool)
            or not isinstance(unit, str | int)
            or (isinstance(unit, str) and not unit.strip())
        ):
            raise param_error(NAME, "unit", "must be one unit id (text or integer)", unit)
        aggregate = params.get("aggregate")
        if aggregate is not None:
            aggregate = get_choice(
                params, "aggregate", NAME, choices=AGGREGATIONS, default=AGGREGATIONS[0]
            )
        if unit is not None and aggregate is not None:
            raise ModelError(
                f"{NAME}: parameters 'unit' and 'aggregate' exclude each other: select one "
                "unit or aggregate all of them"
            )
        return {
            "intervention_date": time_param(params, "intervention_date", NAME),
            "dependent_variable": get_str(params, "dependent_variable", NAME, default="revenue"),
            "time_column": get_str(params, "time_column", NAME, default="date"),
            "unit": None if unit is None else str(unit).strip(),
            "unit_column": get_str(params, "unit_column", NAME),
            "aggregate": aggregate,
            "slope_change": get_bool(params, "slope_change", NAME, default=False),
            "hac_maxlags": get_int(params, "hac_maxlags", NAME, default=None, minimum=0),
        }

    # ------------------------------------------------------------------ the series

    @staticmethod
    def _unit_column(data: pd.DataFrame, params: Mapping[str, Any]) -> str | None:
        """``unit_column``; the shared default ``unit_id`` (the merged config defaults) falls back
        to ``product_id`` when the data have no ``unit_id`` column, as in synthetic_control."""
        configured = params.get("unit_column")
        if configured and (configured != "unit_id" or configured in data.columns):
            return configured
        return next((c for c in ("product_id", "unit_id") if c in data.columns), configured)

    def _series(self, data: pd.DataFrame, params: Mapping[str, Any]) -> _Series:
        column, time_column = params["dependent_variable"], params["time_column"]
        require_columns(data, [], NAME)
        axis = TimeAxis.parse(data, time_column, NAME)
        require_columns(data, [column], NAME)
        require_no_missing(data, [column], NAME)
        y_all = numeric_column(data, column, NAME)
        truth_column = f"{column}_y0"
        y0_all = data[truth_column].to_numpy(float) if truth_column in data.columns else None
        times = axis.values
        selection = "one series"
        if params.get("unit") is not None:
            unit_column = self._unit_column(data, params)
            if unit_column is None or unit_column not in data.columns:
                raise ModelError(
                    f"{NAME}: parameter 'unit' needs a unit column; column "
                    f"{unit_column or 'product_id'!r} not found (set parameter 'unit_column')"
                )
            ids = data[unit_column].astype(str).to_numpy()
            keep = ids == params["unit"]
            if not keep.any():
                distinct = sorted(set(ids.tolist()))
                shown = ", ".join(repr(u) for u in distinct[:5])
                more = ", ..." if len(distinct) > 5 else ""
                raise ModelError(
                    f"{NAME}: parameter 'unit' = {params['unit']!r} matches no row of column "
                    f"{unit_column!r} ({len(distinct)} units: {shown}{more})"
                )
            times, y_all = times[keep], y_all[keep]
            y0_all = None if y0_all is None else y0_all[keep]
            selection = f"unit {params['unit']!r} of column {unit_column!r}"
        unique, inverse, counts = np.unique(times, return_inverse=True, return_counts=True)
        if (counts > 1).any():
            how = params.get("aggregate")
            if how is None:
                where = "" if params.get("unit") is None else f" for {selection}"
                raise ModelError(
                    f"{NAME}: column {time_column!r} repeats values{where} ({times.size} rows "
                    f"for {unique.size} periods): the data are a panel; select one series with "
                    "parameter 'unit' (and 'unit_column'), or aggregate per period with "
                    "parameter 'aggregate: sum' (or 'mean'), or TRANSFORM aggregate_by_date"
                )
            y = np.bincount(inverse, weights=y_all, minlength=unique.size)
            y0 = None if y0_all is None else np.bincount(inverse, y0_all, minlength=unique.size)
            if how == "mean":
                y = y / counts
                y0 = None if y0 is None else y0 / counts
            selection = f"{how} over {int(counts.max())} rows per period"
        else:
            order = np.argsort(times, kind="stable")
            y = y_all[order]
            y0 = None if y0_all is None else y0_all[order]
        t, period = axis.periods(unique)
        start = axis.point(params["intervention_date"], "intervention_date", NAME)
        post = unique >= start
        columns = [np.ones_like(t), t, post.astype(float)]
        if params["slope_change"]:
            t0 = t[post][0] if post.any() else 0.0
            columns.append((t - t0) * post)
        return _Series(unique, axis, y, y0, t, period, post, np.column_stack(columns), selection)

    @staticmethod
    def _check_sides(series: _Series, params: Mapping[str, Any]) -> None:
        n_post = int(series.post.sum())
        n_pre = int(series.post.size - n_post)
        if n_pre < MIN_SIDE or n_post < MIN_SIDE:
            first, last = series.axis.label(series.times[0]), series.axis.label(series.times[-1])
            raise ModelError(
                f"{NAME}: parameter 'intervention_date' "
                f"({time_text(params['intervention_date'])}) leaves {n_pre} pre- and {n_post} "
                f"post-intervention periods in column {params['time_column']!r} ({first} to "
                f"{last}); at least {MIN_SIDE} on each side are needed"
            )

    def sample_size(self, data: pd.DataFrame, params: Mapping[str, Any]) -> int:
        """The number of periods of the series (after ``unit`` selection or aggregation)."""
        return int(self._series(data, params).times.size)

    def check_minimum(self, data: pd.DataFrame, params: Mapping[str, Any]) -> None:
        """At least :data:`MIN_SIDE` periods before and after the intervention."""
        self._check_sides(self._series(data, params), params)

    # ------------------------------------------------------------------ fitting

    def fit(self, data: pd.DataFrame, params: Mapping[str, Any]) -> ModelFit:
        return self._fit(self._series(data, params), params)

    def fit_and_true_effect(
        self, data: pd.DataFrame, params: Mapping[str, Any], *, simulated: bool
    ) -> tuple[ModelFit, float | None]:
        series = self._series(data, params)
        fit = self._fit(series, params)
        if not simulated or series.y0 is None:
            return fit, None
        return fit, self._true_effect(series)

    def _fit(self, series: _Series, params: Mapping[str, Any]) -> ModelFit:
        from statsmodels.regression.linear_model import OLS  # lazy: see models/__init__
        from statsmodels.stats.diagnostic import acorr_ljungbox
        from statsmodels.stats.stattools import durbin_watson

        self._check_sides(series, params)
        column = params["dependent_variable"]
        y, design, post, period = series.y, series.design, series.post, series.period
        n = y.size
        n_post, n_pre = int(post.sum()), int((~post).sum())
        maxlags = params["hac_maxlags"]
        if maxlags is None:
            maxlags = default_maxlags(n)
        with np.errstate(invalid="ignore", divide="ignore"):  # a perfect fit has SE 0
            result = OLS(y, design).fit(
                cov_type="HAC", cov_kwds={"maxlags": maxlags, "use_correction": True}, use_t=True
            )
            intervals = result.conf_int(alpha=0.05)
            effect, se = float(result.params[2]), float(result.bse[2])
            lower, upper = (float(v) for v in intervals[2])
            p_raw = float(result.pvalues[2])
            residuals = np.asarray(result.resid, dtype=float)
            dw = float(durbin_watson(residuals))
            lb_lags = max(1, min(10, n // 5))
            lb = acorr_ljungbox(residuals, lags=[lb_lags])
            lb_stat, lb_p = float(lb["lb_stat"].iloc[0]), float(lb["lb_pvalue"].iloc[0])
            pre_fit = OLS(y[~post], design[~post][:, :2]).fit()
            pre_r2 = float(pre_fit.rsquared)
            pre_rmse = float(np.sqrt(np.mean(np.asarray(pre_fit.resid) ** 2)))
        valid = np.isfinite(se) and se > 0

        def clean(value: float) -> float | None:
            return value if np.isfinite(value) else None

        pre_mean, post_mean = float(y[~post].mean()), float(y[post].mean())
        change = post_mean - pre_mean
        estimates: dict[str, Any] = {
            "intervention_effect": effect,
            "pre_intervention_mean": pre_mean,
            "post_intervention_mean": post_mean,
            "absolute_change": change,
            "percent_change": 100.0 * change / pre_mean if pre_mean != 0 else 0.0,
            "standard_error": se,
            "ci_lower": lower,
            "ci_upper": upper,
            "p_value": p_raw,
            "pre_trend": float(result.params[1]),
            "pre_trend_se": float(result.bse[1]),
            "period": period,
        }
        if params["slope_change"]:
            slope_se = float(result.bse[3])
            slope_ok = np.isfinite(slope_se) and slope_se > 0
            estimates.update(
                slope_change=float(result.params[3]),
                slope_change_se=slope_se if slope_ok else None,
                slope_change_ci_lower=float(intervals[3][0]) if slope_ok else None,
                slope_change_ci_upper=float(intervals[3][1]) if slope_ok else None,
                slope_change_p_value=float(result.pvalues[3]) if slope_ok else None,
            )
        estimates = {k: (clean(v) if isinstance(v, float) else v) for k, v in estimates.items()}
        warnings = []
        if np.isfinite(lb_p) and lb_p < AUTOCORRELATION_ALPHA:
            warnings.append(
                f"residuals are autocorrelated (Ljung-Box p = {lb_p:.3g} at {lb_lags} lags, "
                f"Durbin-Watson {dw:.2f}); the HAC covariance (maxlags={maxlags}) accounts for "
                "it, but seasonality or a longer lag may be missing"
            )
        diagnostics: dict[str, Any] = {
            "n_observations": n,
            "n_pre_periods": n_pre,
            "n_post_periods": n_post,
            "r_squared": clean(float(result.rsquared)),
            "ci_method": f"t interval, Newey-West HAC covariance (maxlags={maxlags})",
            "period": period,
            "series": series.selection,
            "durbin_watson": clean(dw),
            "ljung_box_lags": lb_lags,
            "ljung_box_stat": clean(lb_stat),
            "ljung_box_p_value": clean(lb_p),
            "pre_period_trend_r_squared": clean(pre_r2),
            "pre_period_rmse": clean(pre_rmse),
        }
        if warnings:
            diagnostics["warnings"] = warnings
        time_column = params["time_column"]
        fitted = np.asarray(result.fittedvalues, dtype=float)
        series_frame = pd.DataFrame(
            {
                "time": [series.axis.label(v) for v in series.times],
                "t": series.t,
                "y": y,
                "fitted": fitted,
                "residual": y - fitted,
                "post": post,
            }
        )
        return ModelFit(
            model_type=NAME,
            effect_estimate=effect,
            ci_lower=lower if valid else None,
            ci_upper=upper if valid else None,
            p_value=p_raw if valid else None,
            standard_error=se if valid else None,
            estimand=(
                f"level change at the intervention (in units of {column!r} per {period}; "
                f"trend and slope change per {period})"
            ),
            n_observations=n,
            model_params={
                "intervention_date": time_text(params["intervention_date"]),
                "dependent_variable": column,
                "time_column": time_column,
                "unit": params.get("unit"),
                "aggregate": params.get("aggregate"),
                "slope_change": params["slope_change"],
                "hac_maxlags": maxlags,
                "period": period,
            },
            impact_estimates=estimates,
            model_summary={
                "n_observations": n,
                "pre_period_length": n_pre,
                "post_period_length": n_post,
                "aic": clean(float(result.aic)),
                "bic": clean(float(result.bic)),
                "r_squared": clean(float(result.rsquared)),
            },
            diagnostics=diagnostics,
            artifacts={"series": series_frame},
        )

    def true_effect(self, data: pd.DataFrame, params: Mapping[str, Any]) -> float | None:
        column = params["dependent_variable"]
        if f"{column}_y0" not in data.columns or column not in data.columns:
            return None
        return self._true_effect(self._series(data, params))

    @staticmethod
    def _true_effect(series: _Series) -> float:
        if series.y0 is None:  # pragma: no cover (callers check)
            raise ModelError(f"{NAME}: no untreated potential outcomes")
        tau = series.y - series.y0
        coefficients, *_ = np.linalg.lstsq(series.design, tau, rcond=None)
        return float(coefficients[2])
