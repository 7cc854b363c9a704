"""experiment: OLS with a named treatment term."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from impact_assets.measure.models import ModelError, get_model

NAME = "experiment"


def test_recovers_known_effect_and_reports_upstream_keys(fit, ols_data):
    data = ols_data()
    _, _, result = fit(NAME, data, {"formula": "y ~ treatment + x1"})
    assert result.ci_lower <= 2.0 <= result.ci_upper
    assert abs(result.effect_estimate - 2.0) < 4 * result.standard_error
    est = result.impact_estimates
    assert set(est) == {"params", "bse", "tvalues", "pvalues", "conf_int"}
    assert set(est["params"]) == {"Intercept", "treatment", "x1"}
    assert all(lo < hi for lo, hi in est["conf_int"].values())
    assert result.effect_estimate == est["params"]["treatment"]
    summary = result.model_summary
    assert isinstance(summary["nobs"], int) and summary["nobs"] == 100
    assert 0.0 <= summary["rsquared"] <= 1.0
    assert 0.0 < result.p_value < 0.05
    assert result.diagnostics["r_squared"] == summary["rsquared"]
    assert result.diagnostics["ci_method"]


def test_treatment_term_found_by_name_not_position(fit, dgp):
    data, _ = dgp.experiment_scenario(3)
    _, _, result = fit(NAME, data, {"formula": "revenue ~ price + enriched"})
    assert result.model_summary["treatment_term"] == "enriched[T.True]"
    assert result.effect_estimate == result.impact_estimates["params"]["enriched[T.True]"]


def test_configured_treatment_column_wins(fit, ols_data):
    _, _, result = fit(
        NAME, ols_data(), {"formula": "y ~ x1 + treatment", "treatment_column": "x1"}
    )
    assert result.model_summary["treatment_term"] == "x1"
    assert abs(result.effect_estimate - 1.5) < 4 * result.standard_error


def test_ambiguous_formula_asks_for_treatment_column(ols_data):
    model = get_model(NAME)
    data = ols_data().rename(columns={"treatment": "promo"})
    params = model.validate_params({"formula": "y ~ promo + x1"})
    with pytest.raises(ModelError, match="set parameter 'treatment_column'"):
        model.fit(data, params)


def test_panel_defaults_to_cluster_robust_by_product(fit, dgp):
    data, raw = dgp.experiment_scenario(5)
    _, _, clustered = fit(NAME, data, raw)
    _, _, plain = fit(NAME, data, {**raw, "cov_type": "nonrobust"})
    assert clustered.model_summary["cov_type"] == "cluster"
    assert plain.model_summary["cov_type"] == "nonrobust"
    assert clustered.effect_estimate == pytest.approx(plain.effect_estimate)
    # product-day rows of a product are correlated: clustering widens the interval
    assert clustered.standard_error > plain.standard_error


def test_cov_type_hc3_passes_and_other_models_keys_are_ignored(fit, ols_data):
    raw = {
        "formula": "y ~ treatment + x1",
        "cov_type": "HC3",
        "treatment_time": "2024-01-01",  # leaked upstream (B12); ignored here
        "n_strata": 5,
        "caliper": 0.2,
    }
    _, params, result = fit(NAME, ols_data(), raw)
    assert result.model_summary["cov_type"] == "HC3"
    assert "treatment_time" not in params


def test_true_effect_is_mean_realized_effect_on_treated_rows(dgp):
    data, raw = dgp.experiment_scenario(2)
    model = get_model(NAME)
    params = model.validate_params(raw)
    rows = data[data["enriched"]]
    expected = (rows["revenue"] - rows["revenue_y0"]).mean()
    assert model.true_effect(data, params) == pytest.approx(expected)
    assert model.true_effect(data.drop(columns=["revenue_y0"]), params) is None


def test_coverage_on_simulated_panels(coverage, dgp):
    share, mean_z = coverage(NAME, dgp.experiment_scenario, range(100, 130))
    assert share >= 0.8
    assert abs(mean_z) < 0.6


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({}, "experiment: parameter 'formula' is required"),
        ({"formula": 3}, "experiment: parameter 'formula' must be a non-empty string, got 3"),
        ({"formula": "y + x"}, "experiment: parameter 'formula' must look like"),
        ({"formula": "y ~ x", "cov_type": "robust"}, "experiment: parameter 'cov_type' must be"),
        ({"formula": "y ~ x", "use_t": "yes"}, "experiment: parameter 'use_t' must be true"),
    ],
)
def test_param_validation_messages(raw, message):
    with pytest.raises(ModelError, match=message):
        get_model(NAME).validate_params(raw)


def test_data_errors(ols_data):
    model = get_model(NAME)
    params = model.validate_params({"formula": "y ~ treatment + x1"})
    data = ols_data()
    bad = data.copy()
    bad.loc[3, "y"] = np.nan
    with pytest.raises(ModelError, match="experiment: column 'y' has 1 missing value"):
        model.fit(bad, params)
    bad = data.copy()
    bad.loc[5, "x1"] = np.nan
    with pytest.raises(ModelError, match="column 'x1' has 1 missing"):
        model.fit(bad, params)
    one_treated = pd.concat([data[data["treatment"] == 1].head(1), data[data["treatment"] == 0]])
    with pytest.raises(ModelError) as info:
        model.fit(one_treated, params)
    assert str(info.value) == (
        "experiment: treatment column 'treatment' marks 1 treated and "
        f"{len(one_treated) - 1} control rows; the model needs at least 2 of each"
    )
    assert model.sample_size(data, params) == len(data)
    with pytest.raises(ModelError, match="'treatment' is constant"):
        model.fit(data.assign(treatment=1), params)
    with pytest.raises(ModelError, match="column 'treatment' not found"):
        model.fit(data.drop(columns=["treatment"]), params)
    missing_covariate = model.validate_params({"formula": "y ~ treatment + x9"})
    with pytest.raises(ModelError, match="could not be fitted"):
        model.fit(data, missing_covariate)


def test_explicit_cluster_defaults_to_the_product_column(fit, dgp):
    data, raw = dgp.experiment_scenario(5)
    _, _, auto = fit(NAME, data, raw)
    _, _, explicit = fit(NAME, data, {**raw, "cov_type": "cluster", "unit_column": "unit_id"})
    assert explicit.standard_error == pytest.approx(auto.standard_error)
    model = get_model(NAME)
    params = model.validate_params({**raw, "cov_type": "cluster"})
    with pytest.raises(ModelError, match="needs 'groups'"):
        model.fit(data.drop(columns=["product_id"]), params)


def test_formula_functions_resolve_against_numpy_only(fit, ols_data):
    data = ols_data().assign(x2=lambda f: np.exp(f["x1"]))
    _, _, result = fit(NAME, data, {"formula": "y ~ treatment + np.log(x2)"})
    assert result.impact_estimates["params"]["np.log(x2)"] == pytest.approx(1.5, abs=0.5)
    model = get_model(NAME)
    params = model.validate_params({"formula": "y ~ treatment + formula"})
    with pytest.raises(ModelError, match="could not be fitted"):
        model.fit(data, params)  # 'formula' is no column: not looked up in our own code


@pytest.mark.parametrize(
    "formula",
    ["revenue ~ enriched + price", "revenue ~ price + category + enriched", "revenue ~ treatment"],
)
def test_simple_design_matches_patsy(dgp, formula):
    import patsy

    from impact_assets.measure.models.experiment import simple_design

    data, _ = dgp.experiment_scenario(1)
    y, X, names = simple_design(formula, data)
    y_p, X_p = patsy.dmatrices(formula, data)
    assert names == list(X_p.design_info.column_names)
    np.testing.assert_array_equal(X, np.asarray(X_p))
    np.testing.assert_array_equal(y, np.asarray(y_p).ravel())


def test_simple_design_leaves_other_formulas_to_patsy(dgp):
    from impact_assets.measure.models.experiment import simple_design

    data, _ = dgp.experiment_scenario(1)
    for formula in ("revenue ~ enriched * price", "revenue ~ C(category)", "revenue ~ x1 - 1"):
        assert simple_design(formula, data) is None
