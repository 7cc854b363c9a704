"""EVALUATE inside the whole pipeline, configured from stage YAML like a user would."""

from __future__ import annotations

import pytest

from impact_assets.evaluate import score_confidence
from impact_assets.orchestrator import Orchestrator
from tests.support import write_manifest

INITIATIVES = [
    {"initiative_id": "init-001", "cost_to_scale": 10.0},
    {"initiative_id": "init-002", "cost_to_scale": 10.0, "value_per_unit": 3.0},
]


@pytest.mark.parametrize(
    ("stage", "strategy"),
    [
        ({"component": "Evaluate"}, "score"),
        ({"component": "EvidenceEvaluate", "sample_scale": 50.0}, "evidence"),
    ],
)
def test_pipeline_runs_with_evaluate_from_stage_config(tmp_path, stage, strategy):
    path = write_manifest(tmp_path / "p", INITIATIVES, evaluate=stage, budget=100.0)
    result = Orchestrator.from_config(path).run()
    evaluations = {e["initiative_id"]: e for e in result["evaluate_results"]}
    pilots = {p["initiative_id"]: p for p in result["pilot_results"]}
    assert {e["strategy"] for e in evaluations.values()} == {strategy}
    for ident, evaluation in evaluations.items():
        pilot = pilots[ident]
        vpu = 3.0 if ident == "init-002" else 1.0
        assert evaluation["value_per_unit"] == vpu
        assert evaluation["return_median"] == pilot["effect_estimate"] * vpu
        assert evaluation["return_best"] == pilot["ci_upper"] * vpu
        assert evaluation["return_worst"] == pilot["ci_lower"] * vpu
        assert 0.85 <= evaluation["confidence"] <= 1.0
    if strategy == "score":
        assert evaluations["init-001"]["confidence"] == score_confidence("init-001", 0.85, 1.0)
    reports = {r["initiative_id"]: r for r in result["outcome_reports"]}
    assert set(reports) == {"init-001", "init-002"}
    assert reports["init-002"]["details"]["value_per_unit"] == 3.0
