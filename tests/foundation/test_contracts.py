"""Every contract invariant, the tolerant consumer rules and JSON round trips."""

import json
import math

import pytest

from impact_assets.contracts import (
    AllocateResult,
    ContractError,
    EvaluateResult,
    MeasureResult,
    ModelType,
    OutcomeReport,
)


def measure(**over):
    base = dict(
        initiative_id="init-1",
        effect_estimate=2.0,
        ci_lower=1.0,
        ci_upper=3.0,
        p_value=0.01,
        sample_size=100,
        model_type="experiment",
    )
    base.update(over)
    return MeasureResult(**base)


def evaluation(**over):
    base = dict(
        initiative_id="init-1",
        confidence=0.9,
        cost=10.0,
        return_best=3.0,
        return_median=2.0,
        return_worst=1.0,
        model_type="experiment",
        sample_size=100,
    )
    base.update(over)
    return EvaluateResult(**base)


def report(**over):
    base = dict(
        initiative_id="init-1",
        predicted_return=2.0,
        actual_return=2.5,
        prediction_error=0.5,
        sample_size_pilot=100,
        sample_size_scale=1000,
        budget_allocated=10.0,
        confidence_score=0.9,
        model_type="experiment",
    )
    base.update(over)
    return OutcomeReport(**base)


def test_model_type_has_all_nine_values():
    assert [m.value for m in ModelType] == [
        "experiment",
        "quasi-experiment",
        "time-series",
        "observational",
        "interrupted_time_series",
        "synthetic_control",
        "nearest_neighbour_matching",
        "subclassification",
        "metrics_approximation",
    ]
    assert ModelType("synthetic_control") == "synthetic_control"


# --------------------------------------------------------------------------- MeasureResult


def test_measure_ci_must_contain_estimate():
    with pytest.raises(ContractError) as err:
        measure(effect_estimate=5.0)
    msg = str(err.value)
    assert "MeasureResult" in msg and "'init-1'" in msg and "effect_estimate" in msg
    assert "ci_lower=1.0" in msg and "effect_estimate=5.0" in msg and "ci_upper=3.0" in msg


def test_measure_without_interval_is_allowed_and_honest():
    result = measure(ci_lower=None, ci_upper=None, p_value=None, model_type="metrics_approximation")
    assert result.ci_lower is None and result.p_value is None and not result.has_interval


def test_measure_bounds_come_in_pairs():
    with pytest.raises(ContractError, match="ci_upper.*pairs"):
        measure(ci_upper=None)


def test_measure_sample_size_at_least_30():
    with pytest.raises(ContractError, match=r"'init-1'.*'sample_size': must be >= 30, got 29"):
        measure(sample_size=29)


@pytest.mark.parametrize("p", [-0.1, 1.5])
def test_measure_p_value_within_unit_interval(p):
    with pytest.raises(
        ContractError, match=rf"'p_value': must be None or within \[0, 1\], got {p}"
    ):
        measure(p_value=p)


@pytest.mark.parametrize("field", ["effect_estimate", "ci_lower", "ci_upper", "p_value"])
@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_measure_rejects_non_finite(field, bad):
    with pytest.raises(ContractError, match=rf"'{field}': must be a finite number"):
        measure(**{field: bad})


def test_measure_unknown_model_type_names_valid_ones():
    with pytest.raises(ContractError, match="unknown model type 'did'.*experiment"):
        measure(model_type="did")


# --------------------------------------------------------------------------- EvaluateResult


def test_evaluate_returns_ordered():
    with pytest.raises(ContractError) as err:
        evaluation(return_worst=2.5)
    assert "return_worst=2.5" in str(err.value) and "'init-1'" in str(err.value)


@pytest.mark.parametrize("c", [-0.01, 1.01])
def test_evaluate_confidence_in_unit_interval(c):
    with pytest.raises(ContractError, match=rf"'confidence': must be within \[0, 1\], got {c}"):
        evaluation(confidence=c)


@pytest.mark.parametrize("cost", [0, -5.0])
def test_evaluate_cost_positive(cost):
    with pytest.raises(ContractError, match=r"'cost': must be > 0"):
        evaluation(cost=cost)


# --------------------------------------------------------------------------- AllocateResult


def test_allocate_keys_must_equal_selection():
    with pytest.raises(ContractError, match=r"'predicted_returns'.*not selected: \['b'\]"):
        AllocateResult(["a"], {"a": 1.0, "b": 2.0}, {"a": 1.0})
    with pytest.raises(ContractError, match=r"'budget_allocated'.*selected but absent: \['a'\]"):
        AllocateResult(["a"], {"a": 1.0}, {})


def test_allocate_no_duplicates():
    with pytest.raises(ContractError, match=r"duplicate ids \['a'\]"):
        AllocateResult(["a", "a"], {"a": 1.0}, {"a": 1.0})


def test_allocate_budget_respected_with_relative_tolerance():
    ok = AllocateResult(["a", "b"], {"a": 1, "b": 1}, {"a": 0.1, "b": 0.2}, budget=0.3)
    assert ok.budget_used == pytest.approx(0.3)
    with pytest.raises(ContractError, match=r"sum\(budget_allocated\)=11.0 exceeds budget=10.0"):
        AllocateResult(["a", "b"], {"a": 1, "b": 1}, {"a": 5.0, "b": 6.0}, budget=10.0)


# --------------------------------------------------------------------------- OutcomeReport


def test_report_error_is_actual_minus_predicted():
    with pytest.raises(ContractError, match=r"'prediction_error': must equal .* = 0.5, got 0.4"):
        report(prediction_error=0.4)
    assert report(prediction_error=0.5 + 1e-12).prediction_error == pytest.approx(0.5)


def test_report_sample_sizes_ordered():
    with pytest.raises(ContractError, match=r"'sample_size_scale': must be >= sample_size_pilot"):
        report(sample_size_scale=50)
    with pytest.raises(ContractError, match=r"'sample_size_pilot': must be >= 30"):
        report(sample_size_pilot=10, sample_size_scale=10)


def test_report_inside_ci_flag():
    assert report(pilot_ci_lower=1.0, pilot_ci_upper=3.0).actual_in_pilot_ci is True
    assert report(pilot_ci_lower=1.0, pilot_ci_upper=2.0).actual_in_pilot_ci is False
    assert report().actual_in_pilot_ci is None


# --------------------------------------------------------------------------- tolerant consumers


@pytest.mark.parametrize(
    "obj",
    [
        measure(diagnostics={"r_squared": 0.5}, true_effect=2.1),
        evaluation(confidence_range=(0.85, 1.0), details={"x": [1, 2]}),
        AllocateResult(["a"], {"a": 1.5}, {"a": 3.0}, budget=5.0, detail={"v": {"best": 1.0}}),
        report(pilot_ci_lower=1.0, pilot_ci_upper=3.0),
    ],
    ids=["measure", "evaluate", "allocate", "report"],
)
def test_round_trip_through_json(obj):
    data = json.loads(json.dumps(obj.to_dict(), allow_nan=False))
    assert type(obj).from_dict(data) == obj


def test_to_dict_gives_enum_values():
    assert measure().to_dict()["model_type"] == "experiment"
    assert type(measure().to_dict()["model_type"]) is str


def test_from_dict_ignores_unknown_and_fills_optional():
    data = measure().to_dict()
    del data["diagnostics"], data["phase"]
    data["brand_new_field"] = 42
    result = MeasureResult.from_dict(data)
    assert result.diagnostics == {} and result.phase == "pilot"


def test_from_dict_missing_required_names_initiative():
    data = evaluation().to_dict()
    del data["cost"]
    with pytest.raises(ContractError, match=r"'init-1'.*missing required field\(s\) \['cost'\]"):
        EvaluateResult.from_dict(data)


def test_validation_survives_python_O():
    """Contracts raise exceptions, not asserts: the check must run under -O too."""
    import subprocess
    import sys

    code = (
        "from impact_assets.contracts import MeasureResult, ContractError\n"
        "try:\n"
        "    MeasureResult('x', 5.0, 1.0, 3.0, None, 100, 'experiment')\n"
        "except ContractError:\n"
        "    print('raised')\n"
    )
    out = subprocess.run([sys.executable, "-O", "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "raised", out.stderr
