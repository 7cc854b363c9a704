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
    with pytest.raises(ModelError, match="column 'date' repeats values \\(184 rows for 92"):
        model.fit(pd.concat([data, data]), params)
    # a short series: the model's own minimum is 3 periods per side (the 30 of the contract
    # is MEASURE's min_sample_size, tested in tests/measure_engine)
    short = model.fit(data.iloc[40:50], params)
    assert short.model_summary["n_observations"] == 10
    with pytest.raises(ModelError, match="leaves 3 pre- and 2 post-intervention periods"):
        model.check_minimum(data.iloc[42:47], params)
    late = model.validate_params({"intervention_date": "2025-06-01"})
    with pytest.raises(ModelError, match="leaves 92 pre- and 0 post"):
        model.fit(data, late)
    with pytest.raises(ModelError, match="data are empty"):
        model.fit(data.iloc[:0], params)


# --------------------------------------------------------------------------- shapes and time


def _panel(n_units=4, n=40, start=20, shift=30.0, seed=3):
    """A product panel: one row per product and date; unit 'p1' gets the shift."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2024-01-01", periods=n, freq="D")
    frames = []
    for u in range(n_units):
        y0 = 50 + 10 * u + 0.2 * np.arange(n) + rng.normal(0, 1, n)
        y = y0 + (shift if u == 1 else 0.0) * (np.arange(n) >= start)
        frames.append(
            pd.DataFrame({"product_id": f"p{u}", "date": dates, "revenue": y, "revenue_y0": y0})
        )
    return pd.concat(frames, ignore_index=True), dates[start]


def test_one_series_needs_no_product_id_and_sample_size_counts_periods(fit):
    data, start = _series(n=40, start=20)
    model, params, result = fit(NAME, data, {"intervention_date": start})
    assert "product_id" not in data.columns
    assert model.sample_size(data, params) == 40
    model.check_minimum(data, params)  # 20 and 20 periods: fine
    assert result.diagnostics["series"] == "one series"


def test_panel_is_refused_without_unit_or_aggregate():
    data, start = _panel()
    model = get_model(NAME)
    params = model.validate_params({"intervention_date": start})
    with pytest.raises(ModelError) as err:
        model.fit(data, params)
    assert str(err.value) == (
        "interrupted_time_series: column 'date' repeats values (160 rows for 40 periods): the "
        "data are a panel; select one series with parameter 'unit' (and 'unit_column'), or "
        "aggregate per period with parameter 'aggregate: sum' (or 'mean'), or TRANSFORM "
        "aggregate_by_date"
    )


def test_unit_filter_selects_one_series(fit):
    data, start = _panel()
    model, params, result = fit(NAME, data, {"intervention_date": start, "unit": "p1"})
    assert abs(result.effect_estimate - 30.0) < 4 * result.standard_error
    assert model.sample_size(data, params) == 40
    assert model.true_effect(data, params) == pytest.approx(30.0)
    _, _, other = fit(NAME, data, {"intervention_date": start, "unit": "p2"})
    assert abs(other.effect_estimate) < 4 * other.standard_error
    assert "unit 'p1' of column 'product_id'" in result.diagnostics["series"]


def test_unit_filter_matching_nothing_names_the_column_and_the_units():
    data, start = _panel()
    model = get_model(NAME)
    params = model.validate_params({"intervention_date": start, "unit": "p9"})
    with pytest.raises(ModelError) as err:
        model.fit(data, params)
    assert str(err.value) == (
        "interrupted_time_series: parameter 'unit' = 'p9' matches no row of column "
        "'product_id' (4 units: 'p0', 'p1', 'p2', 'p3')"
    )


@pytest.mark.parametrize(("how", "expected"), [("sum", 30.0), ("mean", 7.5)])
def test_explicit_aggregation(fit, how, expected):
    data, start = _panel()
    model, params, result = fit(NAME, data, {"intervention_date": start, "aggregate": how})
    assert model.true_effect(data, params) == pytest.approx(expected)
    assert abs(result.effect_estimate - expected) < 4 * result.standard_error
    # aggregation does not depend on row order
    shuffled = data.sample(frac=1.0, random_state=1).reset_index(drop=True)
    again = model.fit(shuffled, params)
    assert again.effect_estimate == pytest.approx(result.effect_estimate, rel=1e-12)


def test_unit_and_aggregate_exclude_each_other():
    with pytest.raises(ModelError, match="'unit' and 'aggregate' exclude each other"):
        get_model(NAME).validate_params(
            {"intervention_date": "2024-01-15", "unit": "p1", "aggregate": "sum"}
        )


def _yearly(n=31, first=1970, start=1989, shift=-15.0, slope=1.0, seed=5):
    rng = np.random.default_rng(seed)
    years = np.arange(first, first + n)
    y = 100 + slope * (years - first) + shift * (years >= start) + rng.normal(0, 1, n)
    return pd.DataFrame({"year": years, "sales": y})


@pytest.mark.parametrize("kind", ["int", "float", "text"])
def test_integer_year_column_is_a_period_not_nanoseconds(fit, kind):
    data = _yearly()
    if kind == "float":
        data["year"] = data["year"].astype(float)
    elif kind == "text":
        data["year"] = data["year"].astype(str)
    raw = {"intervention_date": 1989, "time_column": "year", "dependent_variable": "sales"}
    _, _, result = fit(NAME, data, raw)
    assert result.diagnostics["n_pre_periods"] == 19 and result.diagnostics["n_post_periods"] == 12
    assert result.model_params["period"] == "period"
    assert result.model_params["intervention_date"] == "1989"
    assert abs(result.effect_estimate + 15.0) < 4 * result.standard_error
    # the trend is per year (one unit of the column), not per day or per nanosecond
    assert result.impact_estimates["pre_trend"] == pytest.approx(1.0, abs=0.15)


@pytest.mark.parametrize(
    ("freq", "period", "slope"),
    [("D", "day", 0.5), ("W-MON", "week", 0.5), ("MS", "month", 0.5), ("YS", "year", 0.5)],
)
def test_trend_is_per_period_of_the_data(fit, freq, period, slope):
    n = 40
    dates = pd.date_range("2000-01-01", periods=n, freq=freq)
    rng = np.random.default_rng(0)
    y = 10 + slope * np.arange(n) + 5.0 * (np.arange(n) >= 20) + rng.normal(0, 0.1, n)
    _, _, result = fit(
        NAME, pd.DataFrame({"date": dates, "revenue": y}), {"intervention_date": dates[20]}
    )
    assert result.model_params["period"] == period
    assert result.impact_estimates["pre_trend"] == pytest.approx(slope, abs=0.02)
    assert f"per {period}" in result.estimand


def test_wrong_time_type_gives_one_clear_message():
    data = _yearly()
    model = get_model(NAME)
    params = model.validate_params(
        {"intervention_date": "1989-01-01", "time_column": "year", "dependent_variable": "sales"}
    )
    with pytest.raises(ModelError) as err:
        model.fit(data, params)
    assert str(err.value) == (
        "interrupted_time_series: parameter 'intervention_date' is a date (1989-01-01) but "
        "column 'year' holds integer periods; give an integer period, e.g. intervention_date: 1985"
    )
    dated, start = _series()
    params = model.validate_params({"intervention_date": 2024})
    with pytest.raises(ModelError) as err:
        model.fit(dated, params)
    assert str(err.value) == (
        "interrupted_time_series: parameter 'intervention_date' is an integer (2024) but column "
        "'date' holds dates; give a date, e.g. intervention_date: '2024-11-16'"
    )
    words = dated.assign(date="soon")
    with pytest.raises(ModelError) as err:
        model.fit(words, model.validate_params({"intervention_date": start}))
    assert str(err.value) == (
        "interrupted_time_series: column 'date' does not parse as dates (e.g. 'soon'); the time "
        "column must hold dates (e.g. 2024-01-15), datetimes (e.g. 2024-01-15 08:00) or "
        "integer periods (e.g. 1989, or a month index 1..N); name it with parameter "
        "'time_column'"
    )


def test_slope_change_has_its_own_interval(fit):
    data, start = _series(shift=10.0, slope_change=1.5, seed=4)
    _, _, result = fit(NAME, data, {"intervention_date": start, "slope_change": True})
    est = result.impact_estimates
    assert est["slope_change_ci_lower"] < est["slope_change"] < est["slope_change_ci_upper"]
    assert est["slope_change_ci_lower"] <= 1.5 <= est["slope_change_ci_upper"]
    assert 0.0 <= est["slope_change_p_value"] < 0.05


def test_diagnostics_report_autocorrelation_and_pre_period_fit(fit):
    rng = np.random.default_rng(7)
    n = 120
    e = np.zeros(n)
    for i in range(1, n):  # AR(1) errors with rho 0.8
        e[i] = 0.8 * e[i - 1] + rng.normal()
    dates = pd.date_range("2024-01-01", periods=n)
    data = pd.DataFrame({"date": dates, "revenue": 100 + 0.1 * np.arange(n) + 5 * e})
    _, _, result = fit(NAME, data, {"intervention_date": dates[60]})
    d = result.diagnostics
    assert d["durbin_watson"] < 1.0 and d["ljung_box_p_value"] < 0.05
    assert any("autocorrelated" in w for w in d["warnings"])
    assert 0.0 <= d["pre_period_trend_r_squared"] <= 1.0 and d["pre_period_rmse"] > 0
    white, start = _series(seed=11)
    _, _, clean = fit(NAME, white, {"intervention_date": start})
    assert clean.diagnostics["durbin_watson"] > 1.5
