"""The budget frontier (allocate/frontier.py) and its chart."""

from __future__ import annotations

import itertools
import math

import pytest

from impact_assets.allocate.empirical_bayes import EmpiricalBayesAllocate
from impact_assets.allocate.frontier import budget_frontier, budget_grid, entries_markdown
from impact_assets.allocate.minimax import MinimaxRegretAllocate
from impact_assets.reporting import plot_frontier
from tests.allocate.test_empirical_bayes import _portfolio


@pytest.mark.parametrize(
    "component",
    [EmpiricalBayesAllocate(), MinimaxRegretAllocate(min_portfolio_worst_return=None)],
    ids=["empirical_bayes", "minimax_regret"],
)
def test_frontier_matches_single_solves(component):
    event = _portfolio()
    frontier = budget_frontier(component, event["initiatives"], budget=event["budget"])
    total = math.fsum(i["cost"] for i in event["initiatives"])
    points = frontier["points"]
    assert len(points) >= 21 and points[0]["budget"] == 0 and points[-1]["budget"] == total
    assert event["budget"] in [p["budget"] for p in points]
    for point in points:
        single = component.execute({**event, "budget": point["budget"]})
        assert point["selected"] == single["selected_initiatives"]
        assert point["expected"] == pytest.approx(math.fsum(single["predicted_returns"].values()))
        assert point["worst"] == pytest.approx(single["detail"]["total_raw_worst"])
        assert point["budget_used"] <= point["budget"] * (1 + 1e-12)
    assert points[0]["selected"] == [] and points[0]["expected"] == 0
    for ident, entry in frontier["entries"].items():
        funded = [p["budget"] for p in points if ident in p["selected"]]
        assert entry["enters_at"] == (funded[0] if funded else None)
        assert entry["n_budgets_funded"] == len(funded)


def test_expected_return_never_falls_with_budget():
    event = _portfolio()
    points = budget_frontier(EmpiricalBayesAllocate(), event["initiatives"], n_points=30)["points"]
    expected = [p["expected"] for p in points]
    assert all(b >= a - 1e-9 * max(1.0, abs(a)) for a, b in itertools.pairwise(expected))
    # everything with a positive posterior mean is funded at the total cost
    positive = {
        i
        for i, p in EmpiricalBayesAllocate()
        .execute({**event, "budget": 1e9})["detail"]["shrinkage"]["initiatives"]
        .items()
        if p["posterior_mean"] > 0
    }
    assert set(points[-1]["selected"]) == positive


def test_grid_errors_and_chart(tmp_path):
    with pytest.raises(ValueError, match="frontier: n_points must be an integer >= 2, got 1"):
        budget_grid(10.0, 1)
    assert budget_grid(10.0, 3, chosen=2.5) == [0.0, 2.5, 5.0, 10.0]
    event = _portfolio()
    frontier = budget_frontier(EmpiricalBayesAllocate(), event["initiatives"], budget=60.0)
    path = plot_frontier(frontier, tmp_path / "frontier.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = entries_markdown(frontier)
    assert (
        table.splitlines()[0] == "| initiative | enters at budget | funded at budgets (of grid) |"
    )
    assert len(table.splitlines()) == 2 + len(event["initiatives"])
