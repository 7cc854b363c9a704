"""Spec §B6 edge cases, with the behaviour chosen here, for every rule."""

from __future__ import annotations

import json

import pytest

from impact_assets.allocate.bayesian import BayesianAllocate
from impact_assets.allocate.inputs import AllocationInputError
from impact_assets.allocate.minimax import MinimaxRegretAllocate
from impact_assets.allocate.mock import MockAllocate
from tests.allocate.allocate_reference import event, fixture_event

RULES = [MinimaxRegretAllocate, BayesianAllocate]
V1_KEYS = {"selected_initiatives", "predicted_returns", "budget_allocated"}
UNIFORM_DETAIL = {"rule", "status", "upstream_status", "budget_used", "budget_left", "excluded"}


@pytest.mark.parametrize("rule", [*RULES, MockAllocate])
def test_empty_initiative_list(rule):
    out = rule().execute({"initiatives": [], "budget": 10})
    assert out["selected_initiatives"] == []
    assert out["status"] == "no_eligible_initiatives"
    assert out["detail"]["upstream_status"] == "No Eligible Initiatives"
    assert out["detail"]["status_reason"] == "no initiatives given"


@pytest.mark.parametrize("rule", RULES)
def test_all_below_threshold(rule, caplog):
    out = rule(min_confidence_threshold=1.0).execute(fixture_event(10))
    assert out["selected_initiatives"] == []
    assert out["status"] == "no_eligible_initiatives"
    assert set(out["detail"]["excluded"].values()) == {"below confidence threshold"}
    assert "non-optimal status" in caplog.text


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("budget", [0, 0.5, 1])
def test_budget_below_every_cost_is_empty_and_optimal(rule, budget):
    out = rule().execute(fixture_event(budget))
    assert out["selected_initiatives"] == []
    assert out["status"] == "optimal"
    assert out["detail"]["budget_left"] == budget
    assert out["detail"]["objective_value"] == 0.0
    assert set(out["detail"]["excluded"].values()) == {"did not fit"}


@pytest.mark.parametrize("rule", [*RULES, MockAllocate])
def test_negative_budget_is_a_validation_error(rule):
    with pytest.raises(AllocationInputError, match=r"field 'budget': must be >= 0, got -1.0"):
        rule().execute(fixture_event(-1))


@pytest.mark.parametrize("rule", RULES)
def test_unattainable_floor_is_infeasible_and_explained(rule, caplog):
    out = rule(min_portfolio_worst_return=100).execute(fixture_event(10))
    d = out["detail"]
    assert out["status"] == "infeasible" and out["selected_initiatives"] == []
    assert d["objective_value"] is None
    assert d["status_reason"].startswith("no portfolio within budget 10.0 reaches")
    assert "largest attainable sum of return_worst is 7.0" in d["status_reason"]
    assert "non-optimal status" in caplog.text
    json.dumps(out, allow_nan=False)


@pytest.mark.parametrize("rule", RULES)
def test_floor_above_zero_with_nothing_affordable_is_infeasible(rule):
    out = rule(min_portfolio_worst_return=1).execute(fixture_event(1))
    assert out["status"] == "infeasible"


@pytest.mark.parametrize("rule", RULES)
def test_single_affordable_positive_initiative_is_selected(rule):
    out = rule().execute(event([("solo", 3, 10, 7, 1, 0.9)], 5))
    assert out["selected_initiatives"] == ["solo"]
    assert out["budget_allocated"] == {"solo": 3.0}
    assert out["detail"]["budget_left"] == 2.0


def test_negative_median_initiative_left_out_even_when_affordable():
    rows = [("good", 2, 8, 5, 1, 0.8), ("bad", 1, 1, -2, -4, 0.9)]
    for rule in RULES:
        out = rule().execute(event(rows, 10))
        assert out["selected_initiatives"] == ["good"]
        assert out["detail"]["excluded"] == {"bad": "not chosen by the optimiser"}


@pytest.mark.parametrize("rule", RULES)
def test_ids_that_upstream_pulp_would_collide_stay_distinct(rule):
    rows = [
        ("a-b", 2, 9, 6, 2, 0.9),
        ("a_b", 2, 8, 5, 1, 0.7),
        ("a b", 2, 7, 4, 1, 0.6),
        ("a>b/[c]", 2, 5, 3, 1, 0.5),
    ]
    out = rule(min_portfolio_worst_return=None).execute(event(rows, 6))
    assert out["selected_initiatives"] == ["a-b", "a_b", "a b"]
    assert out["detail"]["excluded"] == {"a>b/[c]": "not chosen by the optimiser"}


@pytest.mark.parametrize("rule", [*RULES, MockAllocate])
def test_output_contract_and_uniform_detail(rule):
    out = rule().execute(fixture_event(10))
    assert set(out) >= V1_KEYS
    assert set(out["detail"]) >= UNIFORM_DETAIL
    assert (
        set(out["predicted_returns"])
        == set(out["budget_allocated"])
        == set(out["selected_initiatives"])
    )
    assert out["detail"]["budget_used"] + out["detail"]["budget_left"] == pytest.approx(10)
    excluded = set(out["detail"]["excluded"])
    assert excluded.isdisjoint(out["selected_initiatives"])
    assert excluded | set(out["selected_initiatives"]) == {"A", "B", "C", "D", "E"}
    json.dumps(out, allow_nan=False)


def test_floor_none_switches_the_constraint_off():
    rows = [("risky", 5, 20, 10, -8, 0.9), ("safe", 5, 3, 2, 1, 0.9)]
    with_floor = MinimaxRegretAllocate().execute(event(rows, 5))
    without = MinimaxRegretAllocate(min_portfolio_worst_return=None).execute(event(rows, 5))
    assert with_floor["selected_initiatives"] == ["safe"]
    assert without["selected_initiatives"] == ["risky"]
    assert without["detail"]["min_portfolio_worst_return"] is None


def test_minimax_detail_reports_solver_certificate():
    d = MinimaxRegretAllocate().execute(fixture_event(10))["detail"]
    assert d["solver"]["certified_gap_relative"] <= 1e-9
    assert set(d["solver"]["v_star"]) == {"best", "med", "worst"}
    assert all(v["certified_gap"] <= 1e-9 for v in d["solver"]["v_star"].values())


@pytest.mark.parametrize("rule", RULES)
def test_params_are_json_safe_constructor_args(rule):
    component = rule(min_confidence_threshold=0.25, min_portfolio_worst_return=None)
    params = component.params()
    json.dumps(params, allow_nan=False)
    rebuilt = rule(**params)
    assert rebuilt.params() == params


def test_time_limit_returns_a_valid_portfolio_with_its_certified_gap():
    import numpy as np

    from tests.allocate.allocate_reference import random_rows

    rows = random_rows(np.random.default_rng(4), 400)
    budget = 0.3 * sum(r[1] for r in rows)
    out = MinimaxRegretAllocate(min_portfolio_worst_return=None, time_limit=1e-4).execute(
        event(rows, budget)
    )
    solver = out["detail"]["solver"]
    assert out["status"] in {"optimal", "time_limit"}
    assert sum(out["budget_allocated"].values()) <= budget
    assert solver["certified_gap"] >= 0
    if out["status"] == "time_limit":
        assert out["detail"]["upstream_status"] == "Not Solved"
        assert out["selected_initiatives"]  # never a silent empty portfolio
        assert out["detail"]["objective_value"] >= solver["lp_bound"] - 1e-9
