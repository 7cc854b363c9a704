"""The scorer registry: built-ins, a custom scorer plugged in by name, and the shared pipeline."""

from __future__ import annotations

import pytest

from impact_assets.evaluate import (
    Evaluate,
    EvidenceEvaluate,
    Score,
    Scorer,
    ScorerError,
    ScorerEvaluate,
    available_scorers,
    create_scorer,
    register_scorer,
    resolve_scorer,
    scale_to_range,
    unregister_scorer,
)
from impact_assets.registry import build_component


def event(**over):
    base = {
        "initiative_id": "init-001",
        "model_type": "nearest_neighbour_matching",
        "effect_estimate": 1.5,
        "ci_lower": 0.5,
        "ci_upper": 2.0,
        "p_value": None,
        "sample_size": 80,
        "diagnostics": {"max_abs_smd_after": 0.04},
        "cost_to_scale": 3.0,
    }
    base.update(over)
    return base


class MidpointScorer(Scorer):
    """A test scorer: the midpoint of the range, shifted by an option."""

    name = "midpoint"

    def __init__(self, shift: float = 0.0):
        self.shift = shift

    def score(self, measurement, confidence_range):
        lo, hi = confidence_range
        return Score(scale_to_range(0.5 + self.shift, confidence_range), {"lo": lo, "hi": hi})

    def params(self):
        return {"shift": self.shift}


@pytest.fixture
def midpoint():
    register_scorer("midpoint", MidpointScorer)
    yield
    unregister_scorer("midpoint")


def test_builtins_are_registered_and_there_is_no_fake_review():
    names = available_scorers()
    assert {"score", "evidence"} <= set(names)
    assert "review" not in names
    assert names == sorted(names)


def test_unknown_scorer_names_the_available_ones():
    with pytest.raises(ScorerError) as info:
        resolve_scorer("scor")
    text = str(info.value)
    assert text.startswith("Unknown scorer 'scor'. Did you mean 'score'? Available: ")
    assert "evidence" in text


def test_non_scorer_classes_are_rejected():
    with pytest.raises(ScorerError, match="must be a Scorer subclass"):
        register_scorer("bad", dict)
    with pytest.raises(ScorerError, match="not a Scorer subclass"):
        resolve_scorer("impact_assets.evaluate.score:Evaluate")


def test_invalid_scorer_options_are_reported():
    with pytest.raises(ScorerError, match="scorer 'score': invalid options"):
        create_scorer("score", {"temperature": 0.0})


def test_scorer_evaluate_reproduces_the_fixed_components():
    assert ScorerEvaluate("score").execute(event()) == Evaluate().execute(event())
    options = {"sample_scale": 40.0, "weights": {"diagnostics": 0.5}}
    assert ScorerEvaluate("evidence", options).execute(event()) == EvidenceEvaluate(
        **options
    ).execute(event())


def test_a_registered_scorer_runs_through_the_shared_pipeline(midpoint):
    component = ScorerEvaluate(
        "midpoint", {"shift": 0.25}, ranges={"nearest_neighbour_matching": [0.6, 0.8]}
    )
    out = component.execute(event(value_per_unit=2.0))
    assert out["strategy"] == "midpoint"
    assert out["confidence"] == pytest.approx(0.75)
    assert out["details"]["midpoint"] == {"lo": 0.6, "hi": 0.8}
    assert (out["return_best"], out["return_median"], out["return_worst"]) == (4.0, 3.0, 1.0)
    assert component.params() == {
        "scorer": "midpoint",
        "options": {"shift": 0.25},
        "ranges": component.ranges,
    }


def test_a_scorer_by_module_path():
    component = ScorerEvaluate("impact_assets.evaluate.evidence:EvidenceScorer")
    assert component.execute(event())["strategy"] == "evidence"


def test_scorer_evaluate_is_reachable_from_a_stage_config(midpoint):
    component = build_component(
        "impact_assets.evaluate.component:ScorerEvaluate",
        {"scorer": "midpoint", "options": {"shift": 0.0}},
    )
    assert component.execute(event())["confidence"] == pytest.approx(0.72)


def test_scale_to_range():
    assert scale_to_range(0.0, (0.6, 0.84)) == 0.6
    assert scale_to_range(1.0, (0.6, 0.84)) == 0.84
    assert scale_to_range(0.5, (0.2, 0.2)) == 0.2
    for bad in (-0.1, 1.1, float("nan")):
        with pytest.raises(ValueError, match="quality must be within"):
            scale_to_range(bad, (0.0, 1.0))
