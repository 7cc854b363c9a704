"""``MockAllocate``: the greedy baseline (spec §B9)."""

from __future__ import annotations

import math
from typing import Any

from impact_assets.allocate.inputs import build_result, parse_event
from impact_assets.component import PipelineComponent


class MockAllocate(PipelineComponent):
    """Greedy by ``confidence * return_median``, first fit.

    Candidates are sorted by score, descending (stable: ties keep input order). Walking that list,
    an initiative is taken when its cost fits the remaining budget; one that does not fit is skipped
    and the walk continues. ``selected_initiatives`` is in input order (the v1 contract); the
    score order is kept in ``detail["score_order"]``.
    """

    def execute(self, event: dict[str, Any]) -> dict[str, Any]:
        candidates, budget = parse_event(event)
        scored = sorted(candidates, key=lambda c: -(c.confidence * c.return_median))
        remaining = budget
        chosen: list[str] = []
        excluded: dict[str, str] = {}
        for c in scored:
            if c.cost <= remaining:
                chosen.append(c.initiative_id)
                remaining -= c.cost
            else:
                excluded[c.initiative_id] = "did not fit"
        used = math.fsum(c.cost for c in candidates if c.initiative_id in set(chosen))
        detail = {
            "rule": "greedy",
            "score_order": chosen,
            "scores": {c.initiative_id: c.confidence * c.return_median for c in candidates},
            "budget_used": used,
            "budget_left": budget - used,
            "excluded": excluded,
        }
        return build_result(
            candidates, set(chosen), budget, rule="greedy", status="optimal", detail=detail
        )
