"""``Evaluate`` (the upstream v1 "score" strategy): golden vectors of spec §A2, bit for bit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from impact_assets.contracts import EvaluateResult, ModelType
from impact_assets.evaluate import V1_RANGES, Evaluate, id_seed, score_confidence
from impact_assets.registry import build_component
from impact_assets.steps import validate_evaluation

# Spec §A2: (initiative_id, md5 seed mod 2**32, range, confidence).
GOLDEN = [
    ("init-001", 451010035, (0.85, 1.0), 0.9378724109217887),
    ("init-001", 451010035, (0.20, 0.39), 0.3113050538342657),
    ("init-001", 451010035, (0.60, 0.85), 0.7464540182029812),
    ("init-999", 2222461882, (0.85, 1.0), 0.8535605352806475),
    ("literacy-rct-2024", 249905624, (0.85, 1.0), 0.8664640916513208),
    ("product-desc-enhancement", 1031838688, (0.85, 1.0), 0.8845783348706097),
    ("checkout-flow-optimization", 3806551178, (0.60, 0.84), 0.8298185788905657),
    ("search-relevance-tuning", 1738925491, (0.60, 0.84), 0.612451447593028),
    ("pricing-display-test", 4197575311, (0.40, 0.59), 0.4648072554419852),
    ("recommendation-engine-v2", 2127656550, (0.60, 0.84), 0.6269667971092705),
]

# Spec §A2: the draw u (12 decimals) for each id.
GOLDEN_DRAW = {
    "init-001": 0.585816072812,
    "init-999": 0.023736901871,
    "literacy-rct-2024": 0.109760611009,
    "product-desc-enhancement": 0.230522232471,
    "checkout-flow-optimization": 0.957577412044,
    "search-relevance-tuning": 0.051881031638,
    "pricing-display-test": 0.341090818116,
    "recommendation-engine-v2": 0.112361654622,
}

# The orchestrator demo initiatives and their model types (spec §A2, last five rows).
DEMO = [
    ("product-desc-enhancement", "experiment", 0.8845783348706097),
    ("checkout-flow-optimization", "synthetic_control", 0.8298185788905657),
    ("search-relevance-tuning", "nearest_neighbour_matching", 0.612451447593028),
    ("pricing-display-test", "interrupted_time_series", 0.4648072554419852),
    ("recommendation-engine-v2", "subclassification", 0.6269667971092705),
]

V1_KEYS = {
    "initiative_id",
    "confidence",
    "cost",
    "return_best",
    "return_median",
    "return_worst",
    "model_type",
    "sample_size",
}


def event(initiative_id="init-001", model_type="experiment", **over):
    base = {
        "initiative_id": initiative_id,
        "model_type": model_type,
        "effect_estimate": 2.5,
        "ci_lower": 1.0,
        "ci_upper": 4.0,
        "p_value": 0.03,
        "sample_size": 120,
        "diagnostics": {},
        "cost_to_scale": 7.0,
    }
    base.update(over)
    return base


@pytest.mark.parametrize(("ident", "seed", "bounds", "expected"), GOLDEN)
def test_golden_vectors_of_the_pure_function(ident, seed, bounds, expected):
    assert id_seed(ident) == seed
    assert score_confidence(ident, *bounds) == expected


@pytest.mark.parametrize(("ident", "draw"), sorted(GOLDEN_DRAW.items()))
def test_recorded_draw_matches_the_spec(ident, draw):
    out = Evaluate().execute(event(ident))
    assert round(out["details"]["score"]["draw"], 12) == draw
    assert out["details"]["score"]["seed"] == id_seed(ident)


@pytest.mark.parametrize(("ident", "model_type", "expected"), DEMO)
def test_golden_vectors_through_the_component(ident, model_type, expected):
    out = Evaluate().execute(event(ident, model_type))
    assert out["confidence"] == expected
    assert out["strategy"] == "score"
    assert out["confidence_range"] == list(V1_RANGES[ModelType(model_type)])


def test_experiment_golden_vectors_through_the_component():
    for ident, _seed, bounds, expected in GOLDEN:
        if bounds == (0.85, 1.0):
            assert Evaluate().execute(event(ident))["confidence"] == expected
    assert Evaluate().execute(event("init-001", "observational"))["confidence"] == (
        0.3113050538342657
    )


def test_head_quasi_range_through_a_range_override():
    component = Evaluate(ranges={"quasi-experiment": [0.60, 0.85]})
    out = component.execute(event("init-001", "quasi-experiment"))
    assert out["confidence"] == 0.7464540182029812
    assert out["confidence_range"] == [0.60, 0.85]
    # other entries keep their v1 values
    assert component.ranges["synthetic_control"] == [0.60, 0.84]


def test_v1_table_covers_all_nine_model_types():
    expected = {
        "experiment": (0.85, 1.00),
        "quasi-experiment": (0.60, 0.84),
        "time-series": (0.40, 0.59),
        "observational": (0.20, 0.39),
        "interrupted_time_series": (0.40, 0.59),
        "synthetic_control": (0.60, 0.84),
        "nearest_neighbour_matching": (0.60, 0.84),
        "subclassification": (0.60, 0.84),
        "metrics_approximation": (0.20, 0.39),
    }
    assert {m.value: v for m, v in V1_RANGES.items()} == expected
    assert set(V1_RANGES) == set(ModelType)


@pytest.mark.parametrize("model_type", list(ModelType))
def test_confidence_within_range_for_every_model_type(model_type):
    lo, hi = V1_RANGES[model_type]
    for k in range(50):
        out = Evaluate().execute(event(f"initiative-{k}", model_type.value))
        assert lo <= out["confidence"] <= hi


def test_returns_map_from_the_interval_and_cost_is_passed_through():
    out = Evaluate().execute(event(effect_estimate=2.5, ci_lower=-1.5, ci_upper=6.25))
    assert (out["return_best"], out["return_median"], out["return_worst"]) == (6.25, 2.5, -1.5)
    assert out["cost"] == 7.0
    assert out["sample_size"] == 120
    assert out["returns_collapsed"] is False
    assert out["value_per_unit"] == 1.0


def test_v1_key_set_is_present_and_output_is_json_and_contract_valid():
    out = Evaluate().execute(event())
    assert V1_KEYS.issubset(out)
    assert ModelType(out["model_type"]) is ModelType.EXPERIMENT
    assert out["model_type"] == ModelType.EXPERIMENT
    assert json.loads(json.dumps(out)) == out
    assert EvaluateResult.from_dict(out).to_dict() == out
    assert validate_evaluation(out, "init-001") == out


def test_enum_member_input_is_accepted_like_its_string():
    assert Evaluate().execute(event(model_type=ModelType.SYNTHETIC_CONTROL)) == Evaluate().execute(
        event(model_type="synthetic_control")
    )


def test_confidence_ignores_the_measurement_and_depends_on_the_id():
    a = Evaluate().execute(event(effect_estimate=2.5, p_value=0.9, sample_size=30))
    b = Evaluate().execute(event(effect_estimate=3.0, p_value=0.001, sample_size=10_000))
    assert a["confidence"] == b["confidence"]
    assert Evaluate().execute(event("init-002"))["confidence"] != a["confidence"]


def test_repeated_calls_are_identical_and_the_input_is_not_mutated():
    ev = event()
    snapshot = json.loads(json.dumps(ev))
    first = Evaluate().execute(ev)
    assert Evaluate().execute(ev) == first
    assert ev == snapshot


def test_deterministic_across_processes_with_different_hash_seeds():
    code = (
        "from impact_assets.evaluate import score_confidence;"
        "print(repr(score_confidence('checkout-flow-optimization', 0.60, 0.84)))"
    )
    root = Path(__file__).resolve().parents[2]
    outputs = set()
    for hash_seed in ("0", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        done = subprocess.run(
            [sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        outputs.add(done.stdout.strip())
    assert outputs == {"0.8298185788905657"}


def test_built_through_the_component_registry():
    component = build_component("Evaluate")
    assert isinstance(component, Evaluate)
    assert component.execute(event())["confidence"] == 0.9378724109217887
    overridden = build_component("Evaluate", {"ranges": {"experiment": [0.9, 0.95]}})
    assert 0.9 <= overridden.execute(event())["confidence"] <= 0.95


def test_describe_round_trips_its_params():
    component = Evaluate(ranges={"experiment": [0.9, 0.95]})
    params = component.describe()["params"]
    assert json.loads(json.dumps(params)) == params
    rebuilt = Evaluate(**params)
    assert rebuilt.execute(event()) == component.execute(event())
