"""The budget frontier: what the portfolio is expected to return, and at worst, at every budget.

``budget_frontier`` runs the **same ALLOCATE component** the pipeline uses at ``n_points``
budgets evenly spaced from 0 to the total cost of all initiatives (the chosen budget is added as
one more point), and records for each budget:

* ``expected``: the sum of the selected initiatives' ``predicted_returns`` (for
  ``EmpiricalBayesAllocate`` the posterior means; for the upstream rules the raw medians);
* ``worst``: the sum of the selected initiatives' worst-case returns as the rule sees them
  (``detail.total_raw_worst``: posterior lower bounds for ``EmpiricalBayesAllocate``, raw
  ``return_worst`` otherwise);
* the selected ids, the budget used and the status.

``entries`` says, per initiative, the smallest budget of the grid at which it is funded and at
how many grid budgets it is funded (optimal 0/1 portfolios are not nested: an initiative may enter
and leave again as the budget grows).

For an expected-value rule the optimum can only grow with the budget (a larger budget can fund
every smaller portfolio), so ``expected`` is non-decreasing; ``worst`` need not be.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from impact_assets.component import PipelineComponent

#: Default number of budgets on the grid (0 and the total cost included).
N_POINTS = 21


def budget_grid(total_cost: float, n_points: int = N_POINTS, chosen: float | None = None):
    """``n_points`` budgets from 0 to ``total_cost`` (plus ``chosen`` when inside), sorted."""
    if isinstance(n_points, bool) or not isinstance(n_points, int) or n_points < 2:
        raise ValueError(f"frontier: n_points must be an integer >= 2, got {n_points!r}")
    grid = {total_cost * k / (n_points - 1) for k in range(n_points)}
    if chosen is not None and math.isfinite(chosen) and 0 <= chosen <= total_cost:
        grid.add(float(chosen))
    return sorted(grid)


def budget_frontier(
    component: PipelineComponent,
    initiatives: Sequence[Mapping[str, Any]],
    *,
    budget: float | None = None,
    n_points: int = N_POINTS,
) -> dict[str, Any]:
    """Solve ALLOCATE at every budget of the grid; see the module docstring.

    Parameters
    ----------
    component:
        The ALLOCATE component (the one the pipeline runs).
    initiatives:
        The EVALUATE result dicts ALLOCATE receives.
    budget:
        The chosen budget, marked in the result (``chosen_budget``) and added to the grid.
    n_points:
        Budgets on the evenly spaced grid, including 0 and the total cost.
    """
    items = [dict(i) for i in initiatives]
    total = math.fsum(float(i["cost"]) for i in items)
    points = []
    for b in budget_grid(total, n_points, budget):
        result = component.execute({"initiatives": items, "budget": b})
        detail = result.get("detail") or {}
        selected = list(result["selected_initiatives"])
        worst = detail.get("total_raw_worst")
        points.append(
            {
                "budget": b,
                "expected": math.fsum(result["predicted_returns"].values()),
                "worst": None if worst is None else float(worst),
                "budget_used": math.fsum(result["budget_allocated"].values()),
                "n_selected": len(selected),
                "selected": selected,
                "status": result.get("status"),
            }
        )
    entries = {}
    for item in items:
        ident = item["initiative_id"]
        funded_at = [p["budget"] for p in points if ident in p["selected"]]
        entries[ident] = {
            "enters_at": funded_at[0] if funded_at else None,
            "n_budgets_funded": len(funded_at),
        }
    return {
        "chosen_budget": budget,
        "total_cost": total,
        "rule": type(component).__name__,
        "points": points,
        "entries": entries,
    }


def entries_markdown(frontier: Mapping[str, Any]) -> str:
    """A markdown table: initiatives in the order they enter, with the budget where they do."""
    from impact_assets.reporting import fmt

    entries = frontier.get("entries") or {}
    order = sorted(
        entries.items(),
        key=lambda kv: (kv[1]["enters_at"] is None, kv[1]["enters_at"] or 0.0, kv[0]),
    )
    n = len(frontier.get("points") or [])
    lines = ["| initiative | enters at budget | funded at budgets (of grid) |", "|---|---|---|"]
    for ident, entry in order:
        enters = "never" if entry["enters_at"] is None else fmt(float(entry["enters_at"]))
        lines.append(f"| {ident} | {enters} | {entry['n_budgets_funded']} of {n} |")
    return "\n".join(lines)
