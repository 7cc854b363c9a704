"""Dominance, identical initiatives and the time limit: exact where proved, honest where not."""

from __future__ import annotations

import itertools
import logging
from pathlib import Path

import numpy as np
import pytest
import yaml

from impact_assets.allocate import highs_run
from impact_assets.allocate.bayesian import BayesianAllocate
from impact_assets.allocate.empirical_bayes import EmpiricalBayesAllocate
from impact_assets.allocate.knapsack import solve_knapsack
from impact_assets.allocate.minimax import MinimaxRegretAllocate
from impact_assets.allocate.solver import DEFAULT_TIME_LIMIT
from impact_assets.allocate.structure import dominance_chains
from tests.allocate.allocate_reference import event, reference_choice

ROOT = Path(__file__).resolve().parents[2]


def _profile_rows(rng, n, profiles, duplicate_costs):
    """``n`` initiatives sharing ``profiles`` return profiles (ids shuffled against profiles)."""
    median = rng.uniform(-2, 10, profiles)
    worst = median - rng.uniform(0, 5, profiles)
    best = median + rng.uniform(0, 5, profiles)
    confidence = rng.uniform(0, 1, profiles)
    profile_cost = rng.uniform(0.5, 10, profiles)
    order = rng.permutation(n)
    rows = []
    for i in range(n):
        p = int(order[i] % profiles)
        cost = float(profile_cost[p]) if duplicate_costs else float(rng.uniform(0.5, 10))
        rows.append(
            (f"i{i:02d}", cost, float(best[p]), float(median[p]), float(worst[p]), confidence[p])
        )
    return rows


@pytest.mark.parametrize("rule_name", ["minimax_regret", "bayesian"])
@pytest.mark.parametrize("node_limit", [None, 0])
@pytest.mark.parametrize("duplicate_costs", [False, True])
def test_replicated_and_duplicate_portfolios_match_enumeration(
    rule_name, node_limit, duplicate_costs
):
    # Shared return profiles (with their own or identical costs) are where dominance chains and
    # integer counts act; both engines must keep the exact lexicographic optimum, ids included.
    weights = {"best": 0.2, "med": 0.5, "worst": 0.3}
    checked = 0
    for seed in range(40):
        rng = np.random.default_rng(500 + seed)
        n = int(rng.integers(2, 13))
        rows = _profile_rows(rng, n, int(rng.integers(1, 4)), duplicate_costs)
        budget = float(rng.uniform(0.2, 0.7) * sum(r[1] for r in rows))
        floor = [None, 0.0][seed % 2]
        kwargs = {"min_portfolio_worst_return": floor}
        if node_limit is not None:
            kwargs["search_node_limit"] = node_limit
        rule = (
            MinimaxRegretAllocate(**kwargs)
            if rule_name == "minimax_regret"
            else BayesianAllocate(weights=weights, **kwargs)
        )
        out = rule.execute(event(rows, budget))
        value, selected, clean = reference_choice(rows, budget, 0.0, floor, rule_name, weights)
        if value is None:
            assert out["status"] == "infeasible"
            continue
        assert out["status"] == "optimal"
        scale = max(1.0, abs(value), *out["detail"].get("v_j_star", {"x": 0.0}).values())
        assert out["detail"]["objective_value"] == pytest.approx(value, abs=1e-7 * scale)
        if clean:
            assert out["selected_initiatives"] == [r[0] for r in rows if r[0] in set(selected)]
            checked += 1
    assert checked >= 20


def test_dominance_chains_fund_cheaper_then_smaller_ids_first():
    # Columns 0, 2, 3 share a profile (row 0 and the objective); 1 differs. Costs (budget row 1):
    # 3 is cheapest, 0 and 2 cost the same (the smaller id first).
    matrix = np.array([[1.0, 2.0, 1.0, 1.0], [0.5, 0.5, 0.5, 0.2]])
    chains = dominance_chains(matrix, [np.array([-1.0, -2.0, -1.0, -1.0]), matrix[1]], 1)
    assert [c.tolist() for c in chains] == [[3, 0, 2]]


def test_a_cheaper_item_with_a_larger_id_within_the_tolerance_starts_a_new_chain():
    # Item 1 is cheaper than item 0 by less than the tolerance: neither tie-break step 3 nor
    # step 4 prefers it, so no link 1 -> 0 is made.
    matrix = np.array([[1.0, 1.0], [0.5, 0.5 - 1e-12]])
    assert dominance_chains(matrix, [np.array([-1.0, -1.0]), matrix[1]], 1) == []


def test_knapsack_with_equal_values_and_copies_matches_enumeration():
    for seed in range(60):
        rng = np.random.default_rng(seed)
        n = int(rng.integers(1, 15))
        kinds = int(rng.integers(1, 4))
        values = rng.choice(rng.uniform(-1, 10, kinds), n)
        costs = np.where(rng.random(n) < 0.5, 3.0, rng.uniform(0.5, 6, n))
        capacity = float(rng.uniform(0, 0.8) * costs.sum())
        best = max(
            (
                sum(values[list(s)])
                for k in range(n + 1)
                for s in itertools.combinations(range(n), k)
                if costs[list(s)].sum() <= capacity
            ),
            default=0.0,
        )
        sol = solve_knapsack(values, costs, capacity)
        assert sol.value == pytest.approx(max(best, 0.0), abs=1e-9)
        assert costs[sol.selected].sum() <= capacity * (1 + 1e-12)


def _subset_sum_event(n, seed=11):
    rng = np.random.default_rng(seed)
    w = rng.integers(1, 10_001, n).astype(float)
    rows = [(f"s{i:04d}", w[i], 1.2 * w[i], w[i], 0.8 * w[i], 1.0) for i in range(n)]
    return event(rows, float(0.3 * w.sum()) + 0.5)


def test_time_limit_returns_the_best_portfolio_with_a_certified_gap(caplog):
    # Subset-sum (Pisinger): proving optimality takes far longer than the one second allowed.
    ev = _subset_sum_event(400)
    with caplog.at_level(logging.WARNING):
        out = MinimaxRegretAllocate(min_portfolio_worst_return=None, time_limit=1.0).execute(ev)
    assert out["status"] == "time_limit"
    assert "non-optimal status" in caplog.text
    detail = out["detail"]
    solver = detail["solver"]
    assert out["selected_initiatives"]
    assert sum(out["budget_allocated"].values()) <= ev["budget"]
    assert 0.0 <= solver["certified_gap_relative"] <= 1e-2
    assert solver["certified_gap"] == pytest.approx(
        solver["certified_gap_relative"] * solver["scale"]
    )
    # The objective is the regret of the portfolio returned, against the V* used.
    theta = max(detail["regrets"].values())
    assert detail["objective_value"] == pytest.approx(max(0.0, theta))
    assert detail["status_reason"] == "time limit reached; best portfolio found"


def test_default_time_limit_is_the_shipped_one_and_none_stays_available():
    config = yaml.safe_load((ROOT / "configs/stages/allocate.yaml").read_text())
    assert config["time_limit"] == DEFAULT_TIME_LIMIT
    assert MinimaxRegretAllocate().time_limit == DEFAULT_TIME_LIMIT
    assert BayesianAllocate().params()["time_limit"] == DEFAULT_TIME_LIMIT
    assert EmpiricalBayesAllocate().params()["time_limit"] == DEFAULT_TIME_LIMIT
    rule = MinimaxRegretAllocate(time_limit=None)
    assert MinimaxRegretAllocate(**rule.params()).time_limit is None


def test_a_milp_moved_to_the_child_process_returns_a_feasible_certified_answer():
    # Long enough to leave the calling process (more than IN_PROCESS_SECONDS), then stopped by
    # its deadline in the child: a feasible point and a bound below its value.
    rng = np.random.default_rng(3)
    n = 3000
    w = rng.integers(1, 10_001, n).astype(float)
    capacity = 0.3 * w.sum() + 0.5
    import time

    deadline = time.perf_counter() + highs_run.IN_PROCESS_SECONDS + 8.0
    res = highs_run.solve_milp(
        -w / w.max(),
        np.ones(n),
        np.zeros(n),
        np.ones(n),
        (w / capacity)[None, :],
        np.array([-np.inf]),
        np.array([1.0]),
        {"mip_rel_gap": 0.0, "mip_feasibility_tolerance": 1e-10},
        deadline=deadline,
    )
    if res.status == 0:
        pytest.fail("the subset-sum MILP was proved optimal within a second: not slow enough")
    assert res.in_child and res.status == 1
    chosen = res.x > 0.5
    assert w[chosen].sum() <= capacity * (1 + 1e-9)
    assert res.dual_bound <= -w[chosen].sum() / w.max() + 1e-9
