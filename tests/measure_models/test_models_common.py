"""Invariants shared by the six models: registry, envelope, contract, determinism."""

from __future__ import annotations

import json

import pytest

from impact_assets.contracts import MeasureResult
from impact_assets.measure.models import DIAGNOSTIC_KEYS, MODEL_REGISTRY, ModelError, get_model

#: The upstream merged MEASUREMENT.PARAMS defaults (measure-spec §2.2): every model's keys.
UPSTREAM_DEFAULTS = {
    "dependent_variable": "revenue",
    "intervention_date": None,
    "order": [1, 0, 0],
    "seasonal_order": [0, 0, 0, 0],
    "n_strata": 5,
    "estimand": "att",
    "treatment_column": None,
    "covariate_columns": None,
    "caliper": 0.2,
    "replace": False,
    "ratio": 1,
    "shuffle": True,
    "random_state": None,
    "n_jobs": 1,
    "formula": None,
    "treatment_time": None,
    "treated_unit": None,
    "unit_column": "unit_id",
    "outcome_column": None,
    "time_column": "date",
    # upstream's optim_method/optim_initial defaults are not merged here: synthetic_control
    # refuses them without `predictors` (they would be ignored), see its tests
    "metric_before_column": "quality_before",
    "metric_after_column": "quality_after",
    "baseline_column": "baseline_sales",
    "RESPONSE": {"FUNCTION": "linear", "PARAMS": {"coefficient": 0.5}},
}
#: Upstream per-model keys (measure-spec §3.2) that readers of our envelope rely on.
UPSTREAM_KEYS = {
    "experiment": (
        {"formula"},
        {"params", "bse", "tvalues", "pvalues", "conf_int"},
        {"rsquared", "rsquared_adj", "fvalue", "f_pvalue", "nobs", "df_resid"},
    ),
    "interrupted_time_series": (
        {"intervention_date", "dependent_variable"},
        {
            "intervention_effect",
            "pre_intervention_mean",
            "post_intervention_mean",
            "absolute_change",
            "percent_change",
        },
        {"n_observations", "pre_period_length", "post_period_length", "aic", "bic"},
    ),
    "synthetic_control": (
        {"treatment_time", "treated_unit"},
        {"att", "se", "ci_lower", "ci_upper", "cumulative_effect"},
        {"n_pre_periods", "n_post_periods", "n_control_units", "mspe", "mae", "weights"},
    ),
    "nearest_neighbour_matching": (
        {"dependent_variable"},
        {"att", "atc", "ate", "att_se", "atc_se"},
        {
            "n_observations",
            "n_treated",
            "n_control",
            "n_matched_att",
            "n_matched_atc",
            "caliper",
            "replace",
            "ratio",
        },
    ),
    "subclassification": (
        {"dependent_variable"},
        {"treatment_effect", "n_strata", "n_strata_dropped"},
        {"n_observations", "n_treated", "n_control", "estimand"},
    ),
    "metrics_approximation": ({"response_function", "response_params"}, {"impact"}, {"n_products"}),
}


def test_all_six_models_are_registered():
    assert set(MODEL_REGISTRY) == set(UPSTREAM_KEYS)
    with pytest.raises(ModelError, match="Unknown model 'did'"):
        get_model("did")


@pytest.fixture(scope="module")
def fits(dgp):
    """One fit per model on its scenario, params merged over the upstream defaults."""
    out = {}
    for name, scenario in dgp.SCENARIOS.items():
        data, raw = scenario(12)
        model = get_model(name)
        params = model.validate_params({**UPSTREAM_DEFAULTS, **raw})
        out[name] = (model, params, data, model.fit(data, params))
    return out


@pytest.mark.parametrize("name", sorted(UPSTREAM_KEYS))
def test_envelope_keys_and_json_safety(fits, name):
    _, _, _, result = fits[name]
    params_keys, estimate_keys, summary_keys = UPSTREAM_KEYS[name]
    assert result.model_type == name
    assert params_keys <= set(result.model_params)
    assert estimate_keys <= set(result.impact_estimates)
    assert summary_keys <= set(result.model_summary)
    payload = {
        "model_params": result.model_params,
        "impact_estimates": result.impact_estimates,
        "model_summary": result.model_summary,
        "diagnostics": result.diagnostics,
    }
    json.dumps(payload, allow_nan=False)  # no NaN may reach the JSON envelope (B11)
    assert {"n_observations", "ci_method"} <= set(result.diagnostics)
    extra = {
        "warnings",
        "n_filtered",
        "n_unmatched_control",
        # cross-sectional models: arm sizes, balance flag, support and estimand details
        "n_treated",
        "n_control",
        "balance_poor",
        "share_unmatched_treated",
        "estimand_reported",
        "n_strata_merged",
        "n_trimmed",
    }
    assert set(result.diagnostics) - extra <= set(DIAGNOSTIC_KEYS)


@pytest.mark.parametrize("name", sorted(UPSTREAM_KEYS))
def test_fit_satisfies_the_measure_result_contract(fits, name):
    model, params, data, result = fits[name]
    measure = MeasureResult(
        initiative_id="test",
        effect_estimate=result.effect_estimate,
        ci_lower=result.ci_lower,
        ci_upper=result.ci_upper,
        p_value=result.p_value,
        sample_size=result.n_observations,
        model_type=result.model_type,
        diagnostics=result.diagnostics,
        standard_error=result.standard_error,
        estimand=result.estimand,
        true_effect=model.true_effect(data, params),
    )
    if name == "metrics_approximation":
        assert not measure.has_interval and measure.p_value is None
    else:
        assert measure.has_interval
        assert 0.0 <= measure.p_value <= 1.0
        assert measure.ci_lower < measure.ci_upper  # never a zero-width interval
        assert measure.true_effect is not None


@pytest.mark.parametrize("name", sorted(UPSTREAM_KEYS))
def test_fits_are_deterministic(fits, name):
    model, params, data, result = fits[name]
    again = model.fit(data.copy(), params)
    assert again.effect_estimate == result.effect_estimate
    assert (again.ci_lower, again.ci_upper, again.p_value) == (
        result.ci_lower,
        result.ci_upper,
        result.p_value,
    )


@pytest.mark.parametrize("name", sorted(UPSTREAM_KEYS))
def test_fit_does_not_modify_its_input(dgp, name):
    data, raw = dgp.SCENARIOS[name](13)
    before = data.copy()
    model = get_model(name)
    model.fit(data, model.validate_params(raw))
    assert data.equals(before)


@pytest.mark.parametrize("name", sorted(UPSTREAM_KEYS))
def test_artifacts_write_to_parquet(fits, name, tmp_path):
    import pandas as pd

    _, _, _, result = fits[name]
    for artifact, frame in result.artifacts.items():
        path = tmp_path / f"{name}__{artifact}.parquet"
        frame.to_parquet(path)
        assert len(pd.read_parquet(path)) == len(frame)


def _same_fit(a, b) -> None:
    import pandas as pd

    for field in a.__dataclass_fields__:
        x, y = getattr(a, field), getattr(b, field)
        if field == "artifacts":
            assert x.keys() == y.keys()
            for key in x:
                pd.testing.assert_frame_equal(x[key], y[key], check_exact=True)
        else:
            assert json.dumps(x, sort_keys=True, default=str) == json.dumps(
                y, sort_keys=True, default=str
            ), field


@pytest.mark.parametrize("name", sorted(UPSTREAM_KEYS))
def test_fit_and_true_effect_is_fit_then_true_effect(fits, name):
    """MEASURE's one call gives exactly the two separate calls (models share their prepared
    units/panels between the two steps)."""
    model, params, data, result = fits[name]
    before = data.copy()
    fit, truth = model.fit_and_true_effect(data, params, simulated=True)
    _same_fit(fit, result)
    assert truth == model.true_effect(data, params)
    fit, truth = model.fit_and_true_effect(data, params, simulated=False)
    _same_fit(fit, result)
    assert truth is None
    assert data.equals(before)


def test_vectorized_linear_response_equals_the_row_by_row_call(fits):
    """The built-in linear response runs on whole columns; a registered copy of it (not the
    same function object) runs row by row: both give the same impacts, to the bit."""
    from impact_assets.measure.models import metrics_approximation as approx

    model, params, data, _ = fits["metrics_approximation"]
    approx.register_response_function(
        "linear_copy", lambda *a, **k: approx.linear_response(*a, **k)
    )
    try:
        for coefficient in (0.5, 1, "0.25", 3e-7):
            base = {**params, "response_params": {"coefficient": coefficient}}
            fast = model.fit(data, {**base, "response_function": "linear"})
            slow = model.fit(data, {**base, "response_function": "linear_copy"})
            assert fast.impact_estimates == slow.impact_estimates
            assert fast.effect_estimate == slow.effect_estimate
            for key, frame in fast.artifacts.items():
                assert frame.equals(slow.artifacts[key])
        for bad in (None, [1]):
            base = {**params, "response_params": {"coefficient": bad}}
            with pytest.raises(ModelError) as fast_error:
                model.fit(data, {**base, "response_function": "linear"})
            with pytest.raises(ModelError) as slow_error:
                model.fit(data, {**base, "response_function": "linear_copy"})
            assert str(fast_error.value) == str(slow_error.value).replace("linear_copy", "linear")
    finally:
        approx.RESPONSE_FUNCTIONS.pop("linear_copy", None)
