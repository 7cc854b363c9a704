"""Spec §B10 golden vectors and the §B9 greedy worked example, exactly."""

from __future__ import annotations

import pytest

from impact_assets.allocate.bayesian import BayesianAllocate
from impact_assets.allocate.minimax import MinimaxRegretAllocate
from impact_assets.allocate.mock import MockAllocate
from tests.allocate.allocate_reference import event, fixture_event

ABS = 1e-9


def _scenarios(mapping):
    return [mapping["best"], mapping["med"], mapping["worst"]]


def test_mmr_budget_10_default():
    out = MinimaxRegretAllocate().execute(fixture_event(10))
    d = out["detail"]
    assert out["selected_initiatives"] == ["A", "B", "C"]
    assert out["status"] == "optimal" and d["upstream_status"] == "Optimal"
    assert _scenarios(d["v_j_star"]) == pytest.approx([28.9, 19.6, 7.0], abs=ABS)
    assert d["objective_value"] == pytest.approx(2.0, abs=ABS)
    assert _scenarios(d["total_actual_returns"]) == pytest.approx([28.9, 19.6, 5.0], abs=ABS)
    assert _scenarios(d["regrets"]) == pytest.approx([0.0, 0.0, 2.0], abs=ABS)
    assert out["predicted_returns"] == {"A": 10.0, "B": 8.0, "C": 6.0}
    assert out["budget_allocated"] == {"A": 4.0, "B": 3.0, "C": 3.0}
    assert d["predicted_return_effective"] == pytest.approx({"A": 9.2, "B": 5.2, "C": 5.2})


@pytest.mark.parametrize("floor", [0.0, 4.0])
def test_mmr_threshold_half(floor):
    rule = MinimaxRegretAllocate(min_confidence_threshold=0.5, min_portfolio_worst_return=floor)
    out = rule.execute(fixture_event(10))
    d = out["detail"]
    assert out["selected_initiatives"] == ["A", "B", "C"]
    assert _scenarios(d["v_j_star"]) == pytest.approx([28.9, 19.6, 5.0], abs=ABS)
    assert d["objective_value"] == pytest.approx(0.0, abs=ABS)
    assert _scenarios(d["total_actual_returns"]) == pytest.approx([28.9, 19.6, 5.0], abs=ABS)
    assert _scenarios(d["regrets"]) == pytest.approx([0.0, 0.0, 0.0], abs=ABS)
    assert d["excluded"] == {"D": "below confidence threshold", "E": "not chosen by the optimiser"}


def test_mmr_floor_5():
    out = MinimaxRegretAllocate(min_portfolio_worst_return=5).execute(fixture_event(10))
    assert out["selected_initiatives"] == ["A", "B", "C"]
    assert _scenarios(out["detail"]["v_j_star"]) == pytest.approx([28.9, 19.6, 7.0], abs=ABS)
    assert out["detail"]["objective_value"] == pytest.approx(2.0, abs=ABS)


@pytest.mark.parametrize("budget", [0, 0.5])
def test_mmr_budget_too_small(budget):
    out = MinimaxRegretAllocate().execute(fixture_event(budget))
    d = out["detail"]
    assert out["selected_initiatives"] == []
    assert out["status"] == "optimal"
    assert _scenarios(d["v_j_star"]) == [0.0, 0.0, 0.0]
    assert d["objective_value"] == 0.0
    assert _scenarios(d["total_actual_returns"]) == [0.0, 0.0, 0.0]
    assert _scenarios(d["regrets"]) == [0.0, 0.0, 0.0]
    assert set(d["excluded"].values()) == {"did not fit"}


def test_mmr_equal_confidence_budget_6():
    rows = [("A", 3, 10, 7, 2, 0.7), ("B", 3, 9, 6, 3, 0.7), ("C", 3, 8, 5, 4, 0.7)]
    out = MinimaxRegretAllocate().execute(event(rows, 6))
    d = out["detail"]
    assert out["selected_initiatives"] == ["B", "C"]
    assert _scenarios(d["v_j_star"]) == pytest.approx([14.8, 10.6, 7.0], abs=ABS)
    assert d["objective_value"] == pytest.approx(0.8, abs=ABS)
    assert _scenarios(d["total_actual_returns"]) == pytest.approx([14.0, 9.8, 7.0], abs=ABS)
    assert _scenarios(d["regrets"]) == pytest.approx([0.8, 0.8, 0.0], abs=ABS)


def test_mmr_unattainable_floor_is_infeasible():
    out = MinimaxRegretAllocate(min_portfolio_worst_return=999).execute(
        event([("X", 3, 10, 7, 1, 0.9)], 5)
    )
    d = out["detail"]
    assert out["selected_initiatives"] == []
    assert out["status"] == "infeasible" and d["upstream_status"] == "Infeasible"
    assert d["objective_value"] is None
    assert "min_portfolio_worst_return=999" in d["status_reason"]
    assert "largest attainable sum of return_worst is 1.0" in d["status_reason"]


def test_mmr_single_negative_item_left_out():
    out = MinimaxRegretAllocate().execute(event([("X", 1, 1, -1, -3, 0.9)], 10))
    d = out["detail"]
    assert out["selected_initiatives"] == []
    assert _scenarios(d["v_j_star"]) == pytest.approx([0.6, 0.0, 0.0], abs=ABS)
    assert d["objective_value"] == pytest.approx(0.6, abs=ABS)
    assert d["excluded"] == {"X": "not chosen by the optimiser"}


@pytest.mark.parametrize(
    ("weights", "budget", "selected", "objective", "totals"),
    [
        (None, 10, ["A", "B", "C"], 17.833333333333332, None),
        (
            {"best": 0.1, "med": 0.3, "worst": 0.6},
            10,
            ["A", "C", "D"],
            12.25,
            [25.9, 18.2, 7.0],
        ),
        ({"best": 0.8, "med": 0.1, "worst": 0.1}, 10, ["A", "B", "C"], 25.58, None),
        ({"best": 0.25, "med": 0.5, "worst": 0.25}, 10, ["A", "B", "C"], 18.275, None),
        (None, 5, ["C", "D"], 8.733333333333333, None),
    ],
)
def test_bayesian_golden(weights, budget, selected, objective, totals):
    out = BayesianAllocate(weights=weights).execute(fixture_event(budget))
    d = out["detail"]
    assert out["selected_initiatives"] == selected
    assert out["rule"] == d["rule"] == "bayesian"
    assert d["objective_value"] == pytest.approx(objective, abs=ABS)
    assert sorted(d["weighted_returns"]) == selected
    if totals is not None:
        assert _scenarios(d["total_actual_returns"]) == pytest.approx(totals, abs=ABS)
    if budget == 10 and selected == ["A", "C", "D"]:
        assert out["budget_allocated"] == {"A": 4.0, "C": 3.0, "D": 2.0}


def test_mock_worked_example():
    out = MockAllocate().execute(fixture_event(10))
    d = out["detail"]
    assert d["score_order"] == ["A", "C", "B"]
    assert out["selected_initiatives"] == ["A", "B", "C"]  # input order (v1 contract)
    assert d["scores"]["C"] > d["scores"]["B"]  # float rounding, spec §B9
    assert d["budget_used"] == 10.0 and d["budget_left"] == 0.0
    assert d["excluded"] == {"D": "did not fit", "E": "did not fit"}
    assert d["rule"] == "greedy" and d["status"] == "optimal"


def test_mock_first_fit_skips_and_continues():
    rows = [("big", 8, 30, 20, 10, 1.0), ("mid", 5, 12, 10, 8, 1.0), ("small", 2, 3, 2, 1, 1.0)]
    out = MockAllocate().execute(event(rows, 10))
    assert out["detail"]["score_order"] == ["big", "small"]
    assert out["detail"]["excluded"] == {"mid": "did not fit"}
