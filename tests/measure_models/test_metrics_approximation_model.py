"""metrics_approximation: deterministic response function, no CI or p-value."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from impact_assets.measure.models import ModelError, get_model
from impact_assets.measure.models.metrics_approximation import (
    RESPONSE_FUNCTIONS,
    register_response_function,
)

NAME = "metrics_approximation"


def _frame(before, after, baseline, **extra):
    n = len(before)
    return pd.DataFrame(
        {
            "product_id": [f"P{i}" for i in range(n)],
            "quality_before": before,
            "quality_after": after,
            "baseline_sales": baseline,
            **extra,
        }
    )


def _linear(coefficient=None):
    params = {} if coefficient is None else {"coefficient": coefficient}
    return {"RESPONSE": {"FUNCTION": "linear", "PARAMS": params}}


def test_linear_response_and_no_inference(fit):
    _, _, result = fit(NAME, _frame([0.2], [0.6], [100.0]), _linear(0.5))
    assert result.effect_estimate == pytest.approx(20.0)
    assert (result.ci_lower, result.ci_upper, result.p_value, result.standard_error) == (
        None,
        None,
        None,
        None,
    )
    assert result.model_summary == {"n_products": 1}
    assert result.model_params == {
        "response_function": "linear",
        "response_params": {"coefficient": 0.5},
    }
    _, _, two = fit(NAME, _frame([0.1, 0.2], [0.5, 0.5], [100.0, 200.0]), _linear(1))
    assert two.effect_estimate == pytest.approx(100.0)
    _, _, default = fit(NAME, _frame([0.1, 0.5], [0.5, 0.2], [100.0, 100.0]), _linear())
    assert default.effect_estimate == pytest.approx(40.0 - 30.0)  # coefficient 1, negative delta


def test_true_effect_is_none(dgp):
    data, raw = dgp.approximation_scenario(1)
    model = get_model(NAME)
    assert model.true_effect(data, model.validate_params(raw)) is None


def test_nan_rows_are_dropped_and_reported(fit):
    data = _frame([0.2, np.nan, 0.1], [0.6, 0.5, 0.2], [100.0, 100.0, np.nan])
    _, _, result = fit(NAME, data, _linear(0.5))
    assert result.effect_estimate == pytest.approx(20.0)
    assert result.n_observations == 1
    assert result.diagnostics["n_filtered"] == 2
    assert list(result.artifacts["filtered_products"]["product_id"]) == ["P1", "P2"]
    assert len(result.artifacts["product_level_impacts"]) == 1


def test_all_rows_missing_is_an_error():
    model = get_model(NAME)
    with pytest.raises(ModelError, match="every row has a missing value"):
        model.fit(_frame([np.nan], [0.5], [1.0]), model.validate_params(_linear()))


def test_custom_dict_response_and_row_attributes(fit):
    def by_category(delta, baseline, row_attributes=None, **params):
        coefficient = 0.8 if row_attributes["category"] == "A" else 0.5
        impact = coefficient * delta * baseline
        return {"impact": impact, "lower": 0.8 * impact, "upper": 1.2 * impact}

    register_response_function("by_category_test", by_category)
    try:
        data = _frame([0.1, 0.1], [0.5, 0.5], [100.0, 100.0], category=["A", "B"])
        _, _, result = fit(NAME, data, {"RESPONSE": {"FUNCTION": "by_category_test"}})
    finally:
        RESPONSE_FUNCTIONS.pop("by_category_test")
    assert result.impact_estimates == {"impact": 52.0, "lower": 41.6, "upper": 62.4}
    # scenario bounds are not a confidence interval
    assert result.ci_lower is None and result.p_value is None
    assert list(result.artifacts["product_level_impacts"]["impact"]) == [32.0, 20.0]


def test_non_callable_is_refused():
    with pytest.raises(ModelError, match="must be callable"):
        register_response_function("bad", 3)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"RESPONSE": "linear"}, "metrics_approximation: parameter 'RESPONSE' must be a mapping"),
        ({"RESPONSE": {"PARAMS": {}}}, "parameter 'RESPONSE.FUNCTION' is required"),
        ({"RESPONSE": {"FUNCTION": "cubic"}}, "unknown response function 'cubic'. Available"),
        (
            {"RESPONSE": {"FUNCTION": "linear", "PARAMS": [1]}},
            "'RESPONSE.PARAMS' must be a mapping",
        ),
        ({"baseline_column": ""}, "parameter 'baseline_column' must be a non-empty string"),
    ],
)
def test_param_validation_messages(raw, message):
    with pytest.raises(ModelError, match=message):
        get_model(NAME).validate_params(raw)


def test_data_errors():
    model = get_model(NAME)
    params = model.validate_params(_linear())
    with pytest.raises(ModelError, match="column 'baseline_sales' not found"):
        model.fit(_frame([0.1], [0.2], [1.0]).drop(columns=["baseline_sales"]), params)
    with pytest.raises(ModelError, match="column 'quality_before' must be numeric"):
        model.fit(_frame(["a"], [0.2], [1.0]), params)


def test_aggregate_mean_gives_impact_per_product(fit):
    frame = _frame([0.1, 0.2, 0.4], [0.5, 0.5, 0.4], [100.0, 200.0, 50.0])
    _, _, total = fit(NAME, frame, _linear(1))
    _, _, mean = fit(NAME, frame, {**_linear(1), "aggregate": "mean"})
    assert total.effect_estimate == pytest.approx(40.0 + 60.0 + 0.0)
    assert mean.effect_estimate == pytest.approx(100.0 / 3)
    assert "per product" in mean.estimand and mean.impact_estimates == total.impact_estimates
    with pytest.raises(ModelError, match="'aggregate'"):
        get_model(NAME).validate_params({**_linear(1), "aggregate": "median"})


def test_true_effect_from_potential_outcomes_in_the_estimate_units():
    # two enriched products and one not; after period twice as long as the baseline period
    data = _frame(
        [0.2, 0.2, 0.5],
        [0.5, 0.5, 0.5],
        [100.0, 200.0, 50.0],
        enriched=[True, True, False],
        n_days_before=[14, 14, 14],
        n_days_after=[28, 28, 28],
        revenue_y0=[300.0, 500.0, 80.0],
        revenue_y1=[340.0, 580.0, 95.0],  # the unenriched product's y1 is never realised
    )
    model = get_model(NAME)
    total = model.validate_params(_linear(0.5))
    mean = model.validate_params({**_linear(0.5), "aggregate": "mean"})
    # realised effects (40, 80, 0) rescaled to the 14-day baseline: (20, 40, 0)
    assert model.true_effect(data, total) == pytest.approx(60.0)
    assert model.true_effect(data, mean) == pytest.approx(20.0)
    # the estimate in the same units: 0.5 * 0.3 * 100 + 0.5 * 0.3 * 200 = 45; error = 45 - 60
    assert model.fit(data, total).effect_estimate == pytest.approx(45.0)
    # another outcome metric without potential outcomes: no truth
    assert model.true_effect(data, {**total, "outcome_metric": "ordered_units"}) is None


def test_simulated_pilot_reports_the_truth(tmp_path):
    from impact_assets.measure.component import Measure

    config = {
        "DATA": {
            "SOURCE": {
                "type": "simulator",
                "CONFIG": {
                    "seed": 5,
                    "n_products": 60,
                    "start_date": "2024-10-01",
                    "end_date": "2024-11-30",
                },
            },
            "ENRICHMENT": {
                "FUNCTION": "product_detail_boost",
                "PARAMS": {
                    "enrichment_fraction": 0.5,
                    "enrichment_start": "2024-11-01",
                    "effect_size": -0.2,
                    "quality_boost": 0.3,
                    "seed": 5,
                },
            },
            "TRANSFORM": {
                "FUNCTION": "prepare_simulator_for_approximation",
                "PARAMS": {"baseline_metric": "revenue"},
            },
        },
        "MEASUREMENT": {"MODEL": NAME, "PARAMS": {"aggregate": "mean"}},
    }
    import yaml

    path = tmp_path / "approx.yaml"
    path.write_text(yaml.safe_dump(config))
    out = Measure(storage_url=str(tmp_path / "store")).execute(
        {"initiative_id": "a", "measure_config": str(path), "phase": "pilot"}
    )
    # the assumed coefficient says +, the simulated effect is harmful: the truth shows it
    assert out["effect_estimate"] > 0
    assert out["true_effect"] is not None and out["true_effect"] < 0
