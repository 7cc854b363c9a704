"""The uniform ``detail`` fields every allocation rule reports, and the status vocabulary."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from impact_assets.allocate.inputs import Candidate

OPTIMAL = "optimal"
INFEASIBLE = "infeasible"
NO_ELIGIBLE = "no_eligible_initiatives"
TIME_LIMIT = "time_limit"

#: Our status -> the upstream status string (spec §B1, §B3).
UPSTREAM_STATUS = {
    OPTIMAL: "Optimal",
    INFEASIBLE: "Infeasible",
    NO_ELIGIBLE: "No Eligible Initiatives",
    TIME_LIMIT: "Not Solved",
}

BELOW_THRESHOLD = "below confidence threshold"
NOT_CHOSEN = "not chosen by the optimiser"
DID_NOT_FIT = "did not fit"


def budget_fields(candidates: Sequence[Candidate], chosen: Iterable[str], budget: float) -> dict:
    """``budget_used``, ``budget_left`` (also as ``budget_unallocated``, spec Part D item 3)."""
    chosen = set(chosen)
    used = math.fsum(c.cost for c in candidates if c.initiative_id in chosen)
    left = max(0.0, budget - used)
    return {"budget_used": used, "budget_left": left, "budget_unallocated": left}


def excluded_reasons(
    candidates: Sequence[Candidate],
    chosen: Iterable[str],
    budget: float,
    below_threshold: Iterable[str] = (),
) -> dict[str, str]:
    """Why each unselected initiative was left out, in input order.

    ``below confidence threshold`` (filtered before optimising), ``did not fit`` (its cost alone
    exceeds the budget), else ``not chosen by the optimiser``.
    """
    chosen = set(chosen)
    below = set(below_threshold)
    reasons: dict[str, str] = {}
    for c in candidates:
        if c.initiative_id in chosen:
            continue
        if c.initiative_id in below:
            reasons[c.initiative_id] = BELOW_THRESHOLD
        elif c.cost > budget:
            reasons[c.initiative_id] = DID_NOT_FIT
        else:
            reasons[c.initiative_id] = NOT_CHOSEN
    return reasons
