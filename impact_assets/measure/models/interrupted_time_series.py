"""``interrupted_time_series``: segmented regression with a constant and HAC standard errors.

Model (one row per date, usually the output of ``aggregate_by_date``)::

    y_t = a + b * t + c * D_t [+ d * (t - t0) * D_t] + e_t

with ``t`` the days since the first date, ``D_t = 1`` from ``intervention_date`` on, and
``t0`` the first post-period day. ``c`` is the **level shift at the intervention** (the
headline effect); ``d`` (only with ``slope_change: true``) the change in the daily slope.
Upstream fitted SARIMAX without a constant, so its "effect" was the post-period level (bug B1).

Inference: OLS with Newey-West (HAC) covariance, ``maxlags`` = ``hac_maxlags`` or, by default,
``floor(4 * (n / 100) ** (2 / 9))``; t reference distribution with the residual degrees of
freedom.

Parameters
----------
intervention_date : date, required
dependent_variable : str, default ``revenue``
slope_change : bool, default false
hac_maxlags : int >= 0, optional
order, seasonal_order : accepted for upstream compatibility (SARIMAX orders) and **ignored**;
    the segmented regression handles autocorrelation through the HAC covariance. Their shape
    is still checked (3 and 4 integers) so an upstream config error is not hidden.

Estimand
--------
A level-shift model summarizes the per-date effect path ``tau_t`` (zero before the
intervention) by its least-squares projection on the same design: ``true_effect`` regresses
``tau_t = y_t - y0_t`` (observed minus untreated potential outcome, summed per date) on
``[1, t, D_t(, (t - t0) D_t)]`` and returns the coefficient on ``D_t``. For a constant effect
this is exactly the post-period mean shift; for a ramping effect it is the weighted average the
regression actually targets (early post-period days weigh more).

At least 30 dates and at least 3 dates on each side of the intervention are required. The
dates must be unique (aggregate panels first).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from impact_assets.measure.models._data import (
    numeric_column,
    require_columns,
    require_min_units,
    require_no_missing,
)
from impact_assets.measure.models._params import (
    get_bool,
    get_int,
    get_str,
    get_timestamp,
    param_error,
)
from impact_assets.measure.models.base import Model, ModelError, ModelFit, register_model

NAME = "interrupted_time_series"
MIN_SIDE = 3


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


@register_model
class InterruptedTimeSeries(Model):
    """Segmented regression; see the module docstring."""

    name = NAME

    def validate_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        _check_order(params, "order", 3)
        _check_order(params, "seasonal_order", 4)
        raw_date = params.get("intervention_date")
        return {
            "intervention_date": get_timestamp(params, "intervention_date", NAME),
            "intervention_date_text": raw_date if isinstance(raw_date, str) else None,
            "dependent_variable": get_str(params, "dependent_variable", NAME, default="revenue"),
            "slope_change": get_bool(params, "slope_change", NAME, default=False),
            "hac_maxlags": get_int(params, "hac_maxlags", NAME, default=None, minimum=0),
        }

    @staticmethod
    def _series(
        data: pd.DataFrame, params: Mapping[str, Any], column: str
    ) -> tuple[pd.DataFrame, np.ndarray]:
        """Sorted frame and the design matrix ``[1, t, D(, (t - t0) D)]``."""
        require_columns(data, ["date", column], NAME)
        require_no_missing(data, ["date", column], NAME)
        frame = data.copy()
        try:
            frame["date"] = pd.to_datetime(frame["date"])
        except (TypeError, ValueError) as err:
            raise ModelError(f"{NAME}: column 'date' does not parse as dates: {err}") from err
        if frame["date"].duplicated().any():
            raise ModelError(
                f"{NAME}: column 'date' repeats dates; aggregate to one row per date first "
                "(TRANSFORM aggregate_by_date)"
            )
        frame = frame.sort_values("date", kind="stable").reset_index(drop=True)
        days = ((frame["date"] - frame["date"].iloc[0]) / pd.Timedelta(days=1)).to_numpy(float)
        post = (frame["date"] >= params["intervention_date"]).to_numpy()
        columns = [np.ones_like(days), days, post.astype(float)]
        if params["slope_change"]:
            t0 = days[post][0] if post.any() else 0.0
            columns.append((days - t0) * post)
        return frame, np.column_stack(columns)

    def fit(self, data: pd.DataFrame, params: Mapping[str, Any]) -> ModelFit:
        column = params["dependent_variable"]
        return self._fit(*self._series(data, params, column), params)

    def fit_and_true_effect(
        self, data: pd.DataFrame, params: Mapping[str, Any], *, simulated: bool
    ) -> tuple[ModelFit, float | None]:
        column = params["dependent_variable"]
        frame, design = self._series(data, params, column)
        fit = self._fit(frame, design, params)
        if not simulated or f"{column}_y0" not in data.columns:
            return fit, None
        return fit, self._true_effect(frame, design, column)

    def _fit(self, frame: pd.DataFrame, design: np.ndarray, params: Mapping[str, Any]) -> ModelFit:
        column = params["dependent_variable"]
        y = numeric_column(frame, column, NAME)
        n = len(frame)
        require_min_units(n, "dates", NAME)
        post = design[:, 2] == 1.0
        n_post, n_pre = int(post.sum()), int((~post).sum())
        if n_pre < MIN_SIDE or n_post < MIN_SIDE:
            raise ModelError(
                f"{NAME}: parameter 'intervention_date' leaves {n_pre} pre- and {n_post} "
                f"post-intervention dates; at least {MIN_SIDE} on each side are needed"
            )
        maxlags = params["hac_maxlags"]
        if maxlags is None:
            maxlags = default_maxlags(n)
        with np.errstate(invalid="ignore", divide="ignore"):  # a perfect fit has SE 0
            from statsmodels.regression.linear_model import OLS  # lazy: see models/__init__

            result = OLS(y, design).fit(
                cov_type="HAC", cov_kwds={"maxlags": maxlags, "use_correction": True}, use_t=True
            )
            effect = float(result.params[2])
            se = float(result.bse[2])
            lower, upper = (float(v) for v in result.conf_int(alpha=0.05)[2])
            p_raw = float(result.pvalues[2])
        pre_mean, post_mean = float(y[~post].mean()), float(y[post].mean())
        change = post_mean - pre_mean
        estimates = {
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
        }
        if params["slope_change"]:
            estimates["slope_change"] = float(result.params[3])
            estimates["slope_change_se"] = float(result.bse[3])
        estimates = {
            k: (v if not isinstance(v, float) or np.isfinite(v) else None)
            for k, v in estimates.items()
        }
        date_text = params.get("intervention_date_text") or str(params["intervention_date"].date())
        valid = np.isfinite(se) and se > 0
        return ModelFit(
            model_type=NAME,
            effect_estimate=effect,
            ci_lower=lower if valid else None,
            ci_upper=upper if valid else None,
            p_value=p_raw if valid else None,
            standard_error=se if valid else None,
            estimand="level shift at the intervention (per date, in the series' units)",
            n_observations=n,
            model_params={
                "intervention_date": date_text,
                "dependent_variable": column,
                "slope_change": params["slope_change"],
                "hac_maxlags": maxlags,
            },
            impact_estimates=estimates,
            model_summary={
                "n_observations": n,
                "pre_period_length": n_pre,
                "post_period_length": n_post,
                "aic": float(result.aic),
                "bic": float(result.bic),
                "r_squared": float(result.rsquared),
            },
            diagnostics={
                "n_observations": n,
                "n_pre_periods": n_pre,
                "n_post_periods": n_post,
                "r_squared": float(result.rsquared),
                "ci_method": f"t interval, Newey-West HAC covariance (maxlags={maxlags})",
            },
        )

    def true_effect(self, data: pd.DataFrame, params: Mapping[str, Any]) -> float | None:
        column = params["dependent_variable"]
        if f"{column}_y0" not in data.columns or column not in data.columns:
            return None
        return self._true_effect(*self._series(data, params, column), column)

    @staticmethod
    def _true_effect(frame: pd.DataFrame, design: np.ndarray, column: str) -> float:
        tau = (frame[column] - frame[f"{column}_y0"]).to_numpy(float)
        coefficients, *_ = np.linalg.lstsq(design, tau, rcond=None)
        return float(coefficients[2])
