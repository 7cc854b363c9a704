"""interrupted_time_series: segmented regression with a constant and HAC inference."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from impact_assets.measure.models import ModelError, get_model

NAME = "interrupted_time_series"


def _series(n=92, start=45, shift=20.0, slope_change=0.0, seed=0, noise=5.0, ramp=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    since = t - start
    post = since >= 0
    ramp_t = np.where(post, 1.0 if ramp <= 0 else np.minimum(1.0, since / ramp), 0.0)
    y0 = 100 + 0.5 * t + noise * rng.normal(size=n)
    effect = shift * ramp_t + slope_change * np.where(post, since, 0)
    dates = pd.date_range("2024-10-01", periods=n, freq="D")
    return pd.DataFrame({"date": dates, "revenue": y0 + effect, "revenue_y0": y0}), dates[start]


def test_level_shift_not_post_level(fit):
    data, start = _series()
    _, _, result = fit(NAME, data, {"intervention_date": str(start.date())})
    est = result.impact_estimates
    assert result.ci_lower <= 20.0 <= result.ci_upper
    assert abs(result.effect_estimate - 20.0) < 4 * result.standard_error
    # upstream bug B1 reported the post-period level (~150) as the effect
    assert abs(result.effect_estimate - est["post_intervention_mean"]) > 100
    assert est["absolute_change"] == pytest.approx(
        est["post_intervention_mean"] - est["pre_intervention_mean"]
    )
    assert 0.0 <= result.p_value < 0.05
    assert "HAC" in result.diagnostics["ci_method"]
    assert result.diagnostics["n_pre_periods"] == 45
    assert result.diagnostics["n_post_periods"] == 47


def test_period_counts_match_spec_example(fit):
    rng = np.random.default_rng(1)
    data = pd.DataFrame(
        {"date": pd.date_range("2024-01-01", periods=30), "revenue": rng.normal(100, 5, 30)}
    )
    _, _, result = fit(NAME, data, {"intervention_date": dt.date(2024, 1, 15)})
    summary = result.model_summary
    assert (summary["n_observations"], summary["pre_period_length"]) == (30, 14)
    assert summary["post_period_length"] == 16
    assert result.model_params["intervention_date"] == "2024-01-15"


def test_slope_change_recovered(fit):
    data, start = _series(shift=10.0, slope_change=1.5, seed=4)
    _, _, result = fit(NAME, data, {"intervention_date": start, "slope_change": True})
    est = result.impact_estimates
    assert abs(est["slope_change"] - 1.5) < 4 * est["slope_change_se"]
    assert abs(result.effect_estimate - 10.0) < 4 * result.standard_error


@pytest.mark.parametrize("slope_change", [False, True])
def test_true_effect_is_the_estimand_of_the_regression_under_a_ramp(fit, slope_change):
    # noise-free linear y0: the estimate must equal the documented estimand exactly
    data, start = _series(noise=0.0, ramp=7)
    model, params, result = fit(
        NAME, data, {"intervention_date": start, "slope_change": slope_change}
    )
    truth = model.true_effect(data, params)
    assert result.effect_estimate == pytest.approx(truth, abs=1e-8)
    post_mean = (data["revenue"] - data["revenue_y0"])[data["date"] >= start].mean()
    if not slope_change:
        # a ramp makes the level-shift estimand differ from the plain post-period mean effect
        assert truth != pytest.approx(post_mean, rel=1e-3)


def test_true_effect_equals_constant_shift(fit):
    data, start = _series(shift=20.0, seed=9)
    model, params, _ = fit(NAME, data, {"intervention_date": start})
    assert model.true_effect(data, params) == pytest.approx(20.0)
    assert model.true_effect(data.drop(columns=["revenue_y0"]), params) is None


def test_coverage_on_simulated_series(coverage, dgp):
    share, mean_z = coverage(NAME, dgp.its_scenario, range(200, 240))
    assert share >= 0.8
    assert abs(mean_z) < 0.6


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({}, "interrupted_time_series: parameter 'intervention_date' is required"),
        ({"intervention_date": "not a date"}, "parameter 'intervention_date' must be a date"),
        ({"intervention_date": "2024-01-15", "order": [1, 0]}, "parameter 'order' must be a list"),
        (
            {"intervention_date": "2024-01-15", "seasonal_order": [0, 0, 0]},
            "parameter 'seasonal_order' must be a list of 4",
        ),
        (
            {"intervention_date": "2024-01-15", "hac_maxlags": -1},
            "parameter 'hac_maxlags' must be an integer >= 0, got -1",
        ),
        ({"intervention_date": "2024-01-15", "dependent_variable": 5}, "'dependent_variable'"),
    ],
)
def test_param_validation_messages(raw, message):
    with pytest.raises(ModelError, match=message):
        get_model(NAME).validate_params(raw)


def test_upstream_orders_are_accepted_and_ignored(fit):
    data, start = _series(seed=2)
    base = {"intervention_date": str(start.date())}
    _, _, a = fit(NAME, data, base)
    _, _, b = fit(NAME, data, {**base, "order": [2, 1, 0], "seasonal_order": [0, 0, 0, 7]})
    assert a.effect_estimate == b.effect_estimate


def test_data_errors():
    model = get_model(NAME)
    data, start = _series()
    params = model.validate_params({"intervention_date": start})
    with pytest.raises(ModelError, match="column 'sales' not found"):
        model.fit(data, {**params, "dependent_variable": "sales"})
    bad = data.copy()
    bad.loc[10, "revenue"] = np.nan
    with pytest.raises(ModelError, match="column 'revenue' has 1 missing"):
        model.fit(bad, params)
    with pytest.raises(ModelError, match="repeats dates"):
        model.fit(pd.concat([data, data]), params)
    with pytest.raises(ModelError, match="at least 30 dates, got 20"):
        model.fit(data.iloc[30:50], params)
    late = model.validate_params({"intervention_date": "2025-06-01"})
    with pytest.raises(ModelError, match="leaves 92 pre- and 0 post"):
        model.fit(data, late)
    with pytest.raises(ModelError, match="data are empty"):
        model.fit(data.iloc[:0], params)
