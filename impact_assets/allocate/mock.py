"""``MockAllocate``: the greedy baseline (spec §B9)."""

from __future__ import annotations

from typing import Any

from impact_assets.allocate.inputs import build_result, parse_event
from impact_assets.allocate.outcome import (
    DID_NOT_FIT,
    NO_ELIGIBLE,
    OPTIMAL,
    UPSTREAM_STATUS,
    budget_fields,
)
from impact_assets.component import PipelineComponent


class MockAllocate(PipelineComponent):
    """Greedy by ``confidence * return_median``, first fit.

    Candidates are sorted by score, descending (stable: ties keep input order). Walking that list,
    an initiative is taken when its cost fits the remaining budget; one that does not fit is skipped
    and the walk continues. ``selected_initiatives`` is in input order (the v1 contract); the
    score order is kept in ``detail["score_order"]``. Like upstream, nothing filters negative
    scores. ``status`` is ``optimal`` (the greedy rule always completes) or
    ``no_eligible_initiatives`` for an empty list; it is not an optimality claim.
    """

    RULE = "greedy"

    def execute(self, event: dict[str, Any]) -> dict[str, Any]:
        candidates, budget = parse_event(event)
        scored = sorted(candidates, key=lambda c: -(c.confidence * c.return_median))
        remaining = budget
        chosen: list[str] = []
        skipped: dict[str, str] = {}
        for c in scored:
            if c.cost <= remaining:
                chosen.append(c.initiative_id)
                remaining -= c.cost
            else:
                skipped[c.initiative_id] = DID_NOT_FIT
        status = OPTIMAL if candidates else NO_ELIGIBLE
        detail = {
            "rule": self.RULE,
            "status": status,
            "upstream_status": UPSTREAM_STATUS[status],
            "status_reason": None if candidates else "no initiatives given",
            "score_order": chosen,
            "scores": {c.initiative_id: c.confidence * c.return_median for c in candidates},
            "predicted_return_effective": {
                c.initiative_id: c.confidence * c.return_median
                + (1.0 - c.confidence) * c.return_worst
                for c in candidates
                if c.initiative_id in set(chosen)
            },
            **budget_fields(candidates, chosen, budget),
            "excluded": {
                c.initiative_id: skipped[c.initiative_id]
                for c in candidates
                if c.initiative_id in skipped
            },
        }
        return build_result(
            candidates, set(chosen), budget, rule=self.RULE, status=status, detail=detail
        )
