"""synthetic_control: simplex weights on the pre-period trajectory, placebo inference."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from impact_assets.measure.models import ModelError, get_model
from impact_assets.measure.models.synthetic_control import simplex_weights

NAME = "synthetic_control"


def _random_walk_panel(n_units=40, n_pre=20, n_post=10, shift=10.0, seed=0):
    """Controls on a shared random walk, one treated unit shifted after ``n_pre`` days."""
    rng = np.random.default_rng(seed)
    n_days = n_pre + n_post
    walk = np.cumsum(rng.normal(size=n_days))
    dates = pd.date_range("2024-01-01", periods=n_days)
    rows = []
    for u in range(n_units):
        y = 50 + walk + rng.normal(scale=0.5, size=n_days) + rng.normal(scale=2.0)
        if u == 0:
            y = y + np.where(np.arange(n_days) >= n_pre, shift, 0.0)
        rows.append(pd.DataFrame({"unit_id": f"U{u:02d}", "date": dates, "sales": y}))
    return pd.concat(rows, ignore_index=True), dates[n_pre]


def test_simplex_weights_are_on_the_simplex_and_recover_a_convex_combination():
    rng = np.random.default_rng(3)
    donors = rng.normal(size=(40, 8))
    truth = np.array([0.5, 0.3, 0.2, 0, 0, 0, 0, 0])
    weights = simplex_weights(donors, donors @ truth)
    assert weights.min() >= 0 and weights.sum() == pytest.approx(1.0)
    assert weights == pytest.approx(truth, abs=1e-4)


def test_single_treated_unit_known_shift(fit):
    data, start = _random_walk_panel()
    raw = {"treatment_time": start, "treated_unit": "U00", "outcome_column": "sales"}
    _, _, result = fit(NAME, data, raw)
    assert result.ci_lower <= 10.0 <= result.ci_upper
    est = result.impact_estimates
    assert set(est) >= {"att", "se", "ci_lower", "ci_upper", "cumulative_effect"}
    assert est["cumulative_effect"] == pytest.approx(est["att"] * 10)
    summary = result.model_summary
    assert (summary["n_pre_periods"], summary["n_post_periods"]) == (20, 10)
    assert summary["n_control_units"] == 39
    assert sum(summary["weights"].values()) == pytest.approx(1.0, abs=1e-3)
    # a clear effect ranks first among the placebos: the smallest attainable p-value
    assert result.p_value == pytest.approx(1 / 31)
    assert result.diagnostics["n_placebos"] == 30
    assert result.model_params["treatment_time"] == str(pd.Timestamp(start))


def test_default_treated_units_are_the_enriched_ones(fit, dgp):
    data, raw = dgp.synthetic_control_scenario(4)
    model, params, result = fit(NAME, data, raw)
    diag = result.diagnostics
    assert (diag["n_treated_units"], diag["n_donors"]) == (30, 70)
    assert diag["pre_period_rmse"] > 0 and diag["pre_period_rmse_relative"] < 0.1
    assert result.n_observations == 100
    truth = model.true_effect(data, params)
    assert truth == pytest.approx(2.0)
    assert result.ci_lower <= truth <= result.ci_upper
    assert 0 < result.p_value <= 1
    assert set(result.artifacts) == {"trajectory", "placebos"}


def test_untreated_configured_unit_warns_and_uses_enriched_units(fit, dgp):
    data, raw = dgp.synthetic_control_scenario(4)
    untreated = data.loc[~data["enriched"], "product_id"].iloc[0]
    _, _, result = fit(NAME, data, {**raw, "treated_unit": untreated})
    assert result.diagnostics["n_treated_units"] == 30
    assert "not treated" in result.diagnostics["warnings"][0]


def test_unknown_configured_unit_warns_and_uses_enriched_units(fit, dgp):
    data, raw = dgp.synthetic_control_scenario(4)
    _, _, result = fit(NAME, data, {**raw, "treated_unit": "BMJ3IYEKLP"})
    assert result.diagnostics["n_treated_units"] == 30
    assert "not found in column 'product_id'" in result.diagnostics["warnings"][0]


def test_configured_enriched_unit_keeps_other_treated_units_out_of_donors(fit, dgp):
    data, raw = dgp.synthetic_control_scenario(4)
    treated = data.loc[data["enriched"], "product_id"].iloc[0]
    _, _, result = fit(NAME, data, {**raw, "treated_unit": treated})
    assert result.diagnostics["n_treated_units"] == 1
    assert result.diagnostics["n_donors"] == 70
    assert treated not in result.model_summary["weights"]


def test_deterministic_and_seeded_placebos(fit, dgp):
    data, raw = dgp.synthetic_control_scenario(6)
    _, _, a = fit(NAME, data, raw)
    _, _, b = fit(NAME, data, raw)
    _, _, c = fit(NAME, data, {**raw, "random_state": 99})
    assert (a.effect_estimate, a.ci_lower, a.p_value) == (b.effect_estimate, b.ci_lower, b.p_value)
    assert a.effect_estimate == c.effect_estimate
    assert a.standard_error != c.standard_error


def test_coverage_on_simulated_panels(coverage, dgp):
    share, mean_z = coverage(NAME, dgp.synthetic_control_scenario, range(300, 330))
    assert share >= 0.8
    assert abs(mean_z) < 0.6


def test_too_few_donors_for_placebos_gives_no_interval(fit, dgp):
    data, raw = dgp.synthetic_control_scenario(1)
    ids = sorted(data["product_id"].unique())
    data = data.assign(enriched=~data["product_id"].isin(ids[:3]))
    _, _, result = fit(NAME, data, raw)
    assert result.ci_lower is None and result.p_value is None and result.standard_error is None
    assert result.diagnostics["ci_method"].startswith("none")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({}, "synthetic_control: parameter 'treatment_time' is required"),
        ({"treatment_time": "2024-13-45"}, "parameter 'treatment_time' must be a date"),
        ({"treatment_time": "2024-01-01", "n_placebos": 2}, "'n_placebos' must be an integer >= 5"),
        ({"treatment_time": "2024-01-01", "treated_unit": ""}, "parameter 'treated_unit' must be"),
        ({"treatment_time": "2024-01-01", "unit_column": 7}, "parameter 'unit_column'"),
    ],
)
def test_param_validation_messages(raw, message):
    with pytest.raises(ModelError, match=message):
        get_model(NAME).validate_params(raw)


def test_dates_accepted_as_objects():
    model = get_model(NAME)
    for value in ("2024-11-15", dt.date(2024, 11, 15), pd.Timestamp("2024-11-15")):
        assert model.validate_params({"treatment_time": value})["treatment_time"] == pd.Timestamp(
            "2024-11-15"
        )


def test_data_errors(dgp):
    model = get_model(NAME)
    data, raw = dgp.synthetic_control_scenario(2)
    params = model.validate_params(raw)
    with pytest.raises(ModelError, match="treated_unit' names unit"):
        model.fit(data.drop(columns=["enriched", "treatment"]), {**params, "treated_unit": ["no"]})
    with pytest.raises(ModelError, match="unbalanced"):
        model.fit(data.iloc[1:], params)
    bad = data.copy()
    bad.loc[7, "revenue"] = np.nan
    with pytest.raises(ModelError, match="column 'revenue' has 1 missing"):
        model.fit(bad, params)
    with pytest.raises(ModelError, match="parameter 'treated_unit' is required"):
        model.fit(data.drop(columns=["enriched", "treatment"]), params)
    with pytest.raises(ModelError, match="marks no unit as treated"):
        model.fit(data.assign(enriched=False, treatment=0), params)
    small = data[data["product_id"].isin(sorted(data["product_id"].unique())[:20])]
    with pytest.raises(ModelError, match="at least 30 units, got 20"):
        model.fit(small, params)
    with pytest.raises(ModelError, match="repeat a unit-date pair"):
        model.fit(pd.concat([data, data.head(1)]), params)


def test_non_binary_indicator_is_an_error(dgp):
    model = get_model(NAME)
    data, raw = dgp.synthetic_control_scenario(2)
    params = model.validate_params(raw)
    with pytest.raises(ModelError, match="treatment column 'enriched' must be boolean or 0/1"):
        model.fit(data.assign(enriched=data["enriched"].map({True: "yes", False: "no"})), params)
