"""EVALUATE input validation, collapsed returns and ``value_per_unit`` (shared by all scorers)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from impact_assets.evaluate import (
    Evaluate,
    EvaluateConfigError,
    EvaluateInputError,
    EvidenceEvaluate,
    parse_event,
    resolve_ranges,
)
from impact_assets.registry import ComponentError, build_component


def event(**over):
    base = {
        "initiative_id": "alpha",
        "model_type": "synthetic_control",
        "effect_estimate": 2.0,
        "ci_lower": 0.5,
        "ci_upper": 3.0,
        "p_value": None,
        "sample_size": 60,
        "diagnostics": {"pre_period_rmse_relative": 0.05},
        "cost_to_scale": 12.0,
    }
    base.update(over)
    return base


COMPONENTS = [Evaluate, EvidenceEvaluate]


def message(ev) -> str:
    with pytest.raises(EvaluateInputError) as info:
        parse_event(ev)
    return str(info.value)


@pytest.mark.parametrize("component", COMPONENTS)
def test_both_components_validate_the_same_way(component):
    with pytest.raises(EvaluateInputError, match="field 'cost_to_scale': must be > 0, got 0"):
        component().execute(event(cost_to_scale=0))


def test_non_positive_cost_names_the_initiative_and_field():
    assert message(event(cost_to_scale=0)) == (
        "EVALUATE input: initiative 'alpha': field 'cost_to_scale': must be > 0, got 0"
    )
    assert message(event(cost_to_scale=-3.5)) == (
        "EVALUATE input: initiative 'alpha': field 'cost_to_scale': must be > 0, got -3.5"
    )


def test_missing_fields_are_listed():
    ev = event()
    del ev["cost_to_scale"]
    del ev["ci_upper"]
    assert message(ev) == (
        "EVALUATE input: initiative 'alpha': missing required field(s) ['ci_upper', 'cost_to_scale']"
    )


def test_missing_or_empty_initiative_id():
    ev = event()
    del ev["initiative_id"]
    assert message(ev) == (
        "EVALUATE input: field 'initiative_id': must be a non-empty string, got None"
    )
    assert message(event(initiative_id="")) == (
        "EVALUATE input: field 'initiative_id': must be a non-empty string, got ''"
    )


def test_unknown_model_type_lists_the_valid_ones():
    text = message(event(model_type="regression_discontinuity"))
    assert text.startswith(
        "EVALUATE input: initiative 'alpha': field 'model_type': "
        "unknown model type 'regression_discontinuity'; valid: experiment, quasi-experiment,"
    )
    assert text.endswith("subclassification, metrics_approximation")


def test_non_mapping_event():
    with pytest.raises(EvaluateInputError, match="EVALUATE input must be a mapping, got 3"):
        parse_event(3)


@pytest.mark.parametrize(
    ("over", "expected"),
    [
        (
            {"effect_estimate": "2"},
            "field 'effect_estimate': must be a number, got '2'",
        ),
        (
            {"effect_estimate": math.nan},
            "field 'effect_estimate': must be a finite number, got nan",
        ),
        (
            {"cost_to_scale": math.inf},
            "field 'cost_to_scale': must be a finite number, got inf",
        ),
        (
            {"cost_to_scale": True},
            "field 'cost_to_scale': must be a number, got True",
        ),
        (
            {"ci_upper": None},
            "field 'ci_upper': confidence bounds come in pairs, got ci_lower=0.5, ci_upper=None",
        ),
        (
            {"ci_lower": 2.5},
            "field 'effect_estimate': must satisfy ci_lower <= effect_estimate <= ci_upper, "
            "got ci_lower=2.5, effect_estimate=2.0, ci_upper=3.0",
        ),
        ({"p_value": 1.5}, "field 'p_value': must be None or within [0, 1], got 1.5"),
        ({"standard_error": -1.0}, "field 'standard_error': must be >= 0, got -1.0"),
        ({"sample_size": 0}, "field 'sample_size': must be a positive integer, got 0"),
        ({"sample_size": 12.5}, "field 'sample_size': must be a positive integer, got 12.5"),
        ({"value_per_unit": 0}, "field 'value_per_unit': must be > 0, got 0"),
        ({"value_per_unit": -2.0}, "field 'value_per_unit': must be > 0, got -2.0"),
        ({"diagnostics": [1, 2]}, "field 'diagnostics': must be a mapping, got [1, 2]"),
    ],
)
def test_invalid_values_name_initiative_and_field(over, expected):
    assert message(event(**over)) == f"EVALUATE input: initiative 'alpha': {expected}"


def test_numpy_scalars_and_integral_floats_are_accepted():
    m = parse_event(
        event(effect_estimate=np.float64(2.0), sample_size=np.int64(60), cost_to_scale=12)
    )
    assert (m.effect_estimate, m.sample_size, m.cost_to_scale) == (2.0, 60, 12.0)
    assert type(m.sample_size) is int
    assert parse_event(event(sample_size=60.0)).sample_size == 60


def test_optional_fields_default_and_unknown_keys_are_ignored():
    ev = event(extra_key="ignored", phase="pilot", true_effect=1.9)
    for key in ("p_value", "diagnostics"):
        del ev[key]
    m = parse_event(ev)
    assert m.p_value is None
    assert m.standard_error is None
    assert m.value_per_unit == 1.0
    assert dict(m.diagnostics) == {}


@pytest.mark.parametrize("component", COMPONENTS)
def test_no_interval_collapses_returns_to_the_estimate(component):
    out = component().execute(
        event(model_type="metrics_approximation", ci_lower=None, ci_upper=None, diagnostics={})
    )
    assert out["return_best"] == out["return_median"] == out["return_worst"] == 2.0
    assert out["returns_collapsed"] is True
    assert out["details"]["returns_source"] == "point_estimate"
    assert out["details"]["unscaled_returns"] == {"best": None, "median": 2.0, "worst": None}


@pytest.mark.parametrize("component", COMPONENTS)
def test_the_standard_error_is_passed_through_unscaled(component):
    # ALLOCATE's empirical-Bayes shrinkage reads it; None is never replaced by a number
    assert component().execute(event(standard_error=0.4, value_per_unit=2.5))["details"][
        "standard_error"
    ] == pytest.approx(0.4)
    assert component().execute(event())["details"]["standard_error"] is None


@pytest.mark.parametrize("component", COMPONENTS)
def test_an_interval_is_not_collapsed(component):
    out = component().execute(event())
    assert out["returns_collapsed"] is False
    assert out["details"]["returns_source"] == "confidence_interval"


@pytest.mark.parametrize("component", COMPONENTS)
def test_value_per_unit_multiplies_the_three_returns_only(component):
    base = component().execute(event())
    out = component().execute(event(value_per_unit=2.5))
    assert out["value_per_unit"] == 2.5
    assert (out["return_best"], out["return_median"], out["return_worst"]) == (7.5, 5.0, 1.25)
    assert out["cost"] == base["cost"] == 12.0
    assert out["confidence"] == base["confidence"]
    assert out["details"]["unscaled_returns"] == {"best": 3.0, "median": 2.0, "worst": 0.5}


def test_value_per_unit_with_collapsed_returns():
    out = Evaluate().execute(event(ci_lower=None, ci_upper=None, value_per_unit=4.0))
    assert out["return_best"] == out["return_median"] == out["return_worst"] == 8.0
    assert out["returns_collapsed"] is True


def test_value_per_unit_none_means_one():
    assert Evaluate().execute(event(value_per_unit=None))["value_per_unit"] == 1.0


def test_negative_effects_keep_the_order():
    out = Evaluate().execute(event(effect_estimate=-2.0, ci_lower=-5.0, ci_upper=-0.5))
    assert (out["return_worst"], out["return_median"], out["return_best"]) == (-5.0, -2.0, -0.5)


@pytest.mark.parametrize(
    ("ranges", "expected"),
    [
        ({"psychic": [0.1, 0.2]}, "EVALUATE config: ranges['psychic']: unknown model type"),
        ({"experiment": [0.9, 0.8]}, "must satisfy 0 <= lo <= hi <= 1, got [0.9, 0.8]"),
        ({"experiment": [0.5, 1.2]}, "must satisfy 0 <= lo <= hi <= 1"),
        ({"experiment": [0.5]}, "must be a pair [lo, hi], got [0.5]"),
        ({"experiment": "0.5"}, "must be a pair [lo, hi]"),
        ({"experiment": [0.5, "x"]}, "bounds must be finite numbers"),
        ([0.1, 0.2], "ranges: must be a mapping"),
    ],
)
def test_range_overrides_are_validated(ranges, expected):
    with pytest.raises(EvaluateConfigError) as info:
        resolve_ranges(ranges)
    assert expected in str(info.value)


def test_registry_rejects_unknown_kwargs_and_wraps_bad_ranges():
    with pytest.raises(ComponentError, match="has no parameter 'rangez'"):
        build_component("Evaluate", {"rangez": {}})
    with pytest.raises(ComponentError, match="unknown model type"):
        build_component("EvidenceEvaluate", {"ranges": {"psychic": [0.1, 0.2]}})
