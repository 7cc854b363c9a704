"""A deliberately slow ALLOCATE instance, as an event and as a manifest, for termination tests.

Costs are integers and every return is its cost ± 1 (after EVALUATE's confidence 0.9): close to
Pisinger's subset-sum class, where proving optimality takes HiGHS far longer than any test runs.
The MEASURE component below reads the effect from the initiative's measure config, so the
manifest decides the returns; EVALUATE is :class:`tests.support.FakeEvaluate` (CI ± 1).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import yaml

from impact_assets.component import PipelineComponent
from tests.support import write_manifest

N = 100


def costs(n: int = N) -> np.ndarray:
    return np.random.default_rng(11).integers(1000, 10_001, n).astype(float)


def budget(w: np.ndarray) -> float:
    # A fractional budget over integer costs: no portfolio fills it exactly.
    return float(0.3 * w.sum()) + 0.5


def slow_event(n: int = N) -> dict[str, Any]:
    w = costs(n)
    items = [
        {
            "initiative_id": f"s{i:04d}",
            "cost": float(w[i]),
            "confidence": 0.9,
            "return_best": float(w[i]) + 1.0,
            "return_median": float(w[i]),
            "return_worst": float(w[i]) - 1.0,
        }
        for i in range(n)
    ]
    return {"initiatives": items, "budget": budget(w)}


class ConfigEffectMeasure(PipelineComponent):
    """MEASURE stand-in: the effect is the ``effect`` key of the measure config, CI ± 1."""

    def execute(self, event: dict[str, Any]) -> dict[str, Any]:
        effect = float(yaml.safe_load(Path(event["measure_config"]).read_text())["effect"])
        return {
            "initiative_id": event["initiative_id"],
            "effect_estimate": effect,
            "ci_lower": effect - 1.0,
            "ci_upper": effect + 1.0,
            "p_value": 0.01,
            "sample_size": event.get("sample_size", 100),
            "model_type": "experiment",
            "phase": event.get("phase", "pilot"),
        }


def slow_manifest(root: Path, n: int = N, time_limit: float | None = None) -> Path:
    """The slow instance as a manifest; its ALLOCATE has no time limit unless one is given."""
    w = costs(n)
    (root / "measure").mkdir(parents=True, exist_ok=True)
    initiatives = []
    for i in range(n):
        ident = f"s{i:04d}"
        (root / "measure" / f"{ident}.yaml").write_text(yaml.safe_dump({"effect": float(w[i])}))
        initiatives.append(
            {
                "initiative_id": ident,
                "cost_to_scale": float(w[i]),
                "measure_config": f"measure/{ident}.yaml",
            }
        )
    return write_manifest(
        root,
        initiatives,
        measure={"component": "tests.allocate.slow_portfolio:ConfigEffectMeasure"},
        evaluate={"component": "tests.support:FakeEvaluate"},
        allocate={
            "component": "MinimaxRegretAllocate",
            "min_portfolio_worst_return": None,
            "time_limit": time_limit,
        },
        budget=budget(w),
    )
