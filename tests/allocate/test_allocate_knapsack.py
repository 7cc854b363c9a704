"""The exact knapsack (per-scenario V*) against enumeration, on both solve paths."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from impact_assets.allocate.knapsack import solve_knapsack


def _brute(values, costs, capacity):
    best = 0.0
    for bits in itertools.product([0, 1], repeat=len(values)):
        x = np.array(bits, dtype=float)
        if x @ costs <= capacity * (1 + 1e-12):
            best = max(best, float(x @ values))
    return best


@pytest.mark.parametrize("node_limit", [200_000, 0])
def test_knapsack_matches_enumeration(node_limit):
    rng = np.random.default_rng(11)
    for _ in range(120):
        n = int(rng.integers(0, 13))
        values = rng.uniform(-5, 20, n)
        costs = rng.uniform(0.5, 10, n)
        capacity = float(rng.uniform(0, 1) * costs.sum()) if n else 3.0
        sol = solve_knapsack(values, costs, capacity, node_limit=node_limit)
        assert sol.value == pytest.approx(_brute(values, costs, capacity), abs=1e-9)
        assert float(costs[sol.selected] @ np.ones(int(sol.selected.sum()))) <= capacity * (
            1 + 1e-12
        )
        assert sol.upper_bound >= sol.value
        assert sol.upper_bound - sol.value <= 1e-9 * max(1.0, sol.value)


def test_knapsack_trivial_cases():
    empty = solve_knapsack(np.array([-1.0, 0.0]), np.array([1.0, 1.0]), 5.0)
    assert empty.value == 0.0 and not empty.selected.any() and empty.method == "trivial"
    everything = solve_knapsack(np.array([1.0, 2.0]), np.array([1.0, 1.0]), 5.0)
    assert everything.value == 3.0 and everything.selected.all()


def test_costs_summing_exactly_to_the_capacity_fit():
    # 0.1 + 0.2 > 0.3 in binary floating point; the pair must still fit a budget of 0.3.
    sol = solve_knapsack(np.array([1.0, 1.0, 1.5]), np.array([0.1, 0.2, 0.3]), 0.3)
    assert sol.value == 2.0
