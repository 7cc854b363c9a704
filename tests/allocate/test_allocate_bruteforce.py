"""Both rules against exhaustive enumeration of every portfolio (n <= 12)."""

from __future__ import annotations

import numpy as np
import pytest

from impact_assets.allocate.bayesian import BayesianAllocate
from impact_assets.allocate.minimax import MinimaxRegretAllocate
from tests.allocate.allocate_reference import event, random_rows, reference_choice

N_CONTINUOUS = 220
N_INTEGER = 60


def _case(seed, integer):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 13))
    rows = random_rows(rng, n, integer=integer)
    total = sum(r[1] for r in rows)
    budget = float(np.round(rng.uniform(0.0, 0.8) * total, 3)) if not integer else int(total // 2)
    threshold = float(rng.choice([0.0, 0.0, 0.3]))
    floor = [None, 0.0, float(np.round(rng.uniform(-5, 5), 2))][int(rng.integers(0, 3))]
    w = rng.dirichlet([1.0, 1.0, 1.0])
    weights = {"best": float(w[0]), "med": float(w[1]), "worst": 1.0 - float(w[0]) - float(w[1])}
    if weights["worst"] < 0:
        weights["worst"] = 0.0
        weights["med"] = 1.0 - weights["best"]
    return rows, budget, threshold, floor, weights


def _check(rule_name, rows, budget, threshold, floor, weights, *, node_limit=None, exact_ties):
    kwargs = {"min_confidence_threshold": threshold, "min_portfolio_worst_return": floor}
    if node_limit is not None:
        kwargs["search_node_limit"] = node_limit
    if rule_name == "minimax_regret":
        out = MinimaxRegretAllocate(**kwargs).execute(event(rows, budget))
    else:
        out = BayesianAllocate(weights=weights, **kwargs).execute(event(rows, budget))
    eligible = [r for r in rows if r[5] >= threshold]
    if not eligible:
        assert out["status"] == "no_eligible_initiatives"
        assert out["selected_initiatives"] == []
        return
    value, selected, clean = reference_choice(rows, budget, threshold, floor, rule_name, weights)
    if value is None:
        assert out["status"] == "infeasible"
        assert out["selected_initiatives"] == []
        return
    assert out["status"] == "optimal"
    got = out["detail"]["objective_value"]
    scale = max(1.0, abs(value), *(abs(v) for v in out["detail"].get("v_j_star", {}).values()))
    assert got == pytest.approx(value, abs=1e-7 * scale)
    if exact_ties or clean:
        assert out["selected_initiatives"] == [r[0] for r in rows if r[0] in set(selected)]
    assert sum(out["budget_allocated"].values()) <= budget * (1 + 1e-12)


@pytest.mark.parametrize("rule_name", ["minimax_regret", "bayesian"])
def test_random_continuous_instances_match_enumeration(rule_name):
    for seed in range(N_CONTINUOUS):
        rows, budget, threshold, floor, weights = _case(seed, integer=False)
        _check(rule_name, rows, budget, threshold, floor, weights, exact_ties=False)


@pytest.mark.parametrize("rule_name", ["minimax_regret", "bayesian"])
def test_integer_instances_with_ties_follow_the_documented_tie_break(rule_name):
    # Integer data has many exact ties: the full lexicographic rule (objective, effective median,
    # cost, smaller ids) decides, and the enumeration applies the same rule.
    for seed in range(1000, 1000 + N_INTEGER):
        rows, budget, threshold, floor, weights = _case(seed, integer=True)
        weights = {"best": 0.25, "med": 0.5, "worst": 0.25}
        _check(rule_name, rows, budget, threshold, floor, weights, exact_ties=True)


@pytest.mark.parametrize("rule_name", ["minimax_regret", "bayesian"])
def test_highs_fallback_path_matches_enumeration(rule_name):
    # search_node_limit=0 skips the dedicated search: HiGHS with LP fixing and lexicographic
    # phases must reach the same optimum.
    for seed in range(2000, 2040):
        rows, budget, threshold, floor, weights = _case(seed, integer=False)
        _check(rule_name, rows, budget, threshold, floor, weights, node_limit=0, exact_ties=False)


def _plain_highs(rows, budget, floor, rule_name, weights):
    """An independent one-shot formulation, solved by HiGHS with a zero relative gap."""
    from scipy.optimize import Bounds, LinearConstraint, milp

    cost = np.array([r[1] for r in rows])
    raw = np.array([[r[2], r[3], r[4]] for r in rows])
    c = np.array([r[5] for r in rows])
    eff = c[:, None] * raw + (1 - c[:, None]) * raw[:, 2:3]
    n = len(rows)
    opts = {"mip_rel_gap": 0.0}
    knap = LinearConstraint(cost[None, :], -np.inf, budget)
    if rule_name == "bayesian":
        w = np.array([weights["best"], weights["med"], weights["worst"]])
        cons = [knap]
        if floor is not None:
            cons.append(LinearConstraint(raw[None, :, 2], floor, np.inf))
        res = milp(
            -(eff @ w), integrality=np.ones(n), bounds=Bounds(0, 1), constraints=cons, options=opts
        )
        return None if res.status == 2 else -res.fun
    v_star = []
    for j in range(3):
        res = milp(
            -eff[:, j],
            integrality=np.ones(n),
            bounds=Bounds(0, 1),
            constraints=[knap],
            options=opts,
        )
        v_star.append(max(0.0, -res.fun))
    a = np.zeros((4 + (floor is not None), n + 1))
    a[:3, :n] = eff.T
    a[:3, n] = 1.0
    a[3, :n] = cost
    lo = [*v_star, -np.inf]
    hi = [np.inf] * 3 + [budget]
    if floor is not None:
        a[4, :n] = raw[:, 2]
        lo.append(floor)
        hi.append(np.inf)
    obj = np.zeros(n + 1)
    obj[n] = 1.0
    res = milp(
        obj,
        integrality=np.r_[np.ones(n), 0],
        bounds=Bounds(0, np.r_[np.ones(n), np.inf]),
        constraints=LinearConstraint(a, lo, hi),
        options=opts,
    )
    return None if res.status == 2 else res.fun


@pytest.mark.parametrize("rule_name", ["minimax_regret", "bayesian"])
def test_medium_instances_match_a_plain_highs_formulation(rule_name):
    # Beyond enumeration: 30 initiatives, against HiGHS on the textbook model.
    for seed in range(3000, 3006):
        rng = np.random.default_rng(seed)
        rows = random_rows(rng, 30)
        budget = 0.3 * sum(r[1] for r in rows)
        floor = [None, 0.0][seed % 2]
        weights = {"best": 0.2, "med": 0.5, "worst": 0.3}
        if rule_name == "minimax_regret":
            out = MinimaxRegretAllocate(min_portfolio_worst_return=floor).execute(
                event(rows, budget)
            )
        else:
            out = BayesianAllocate(weights=weights, min_portfolio_worst_return=floor).execute(
                event(rows, budget)
            )
        expected = _plain_highs(rows, budget, floor, rule_name, weights)
        if expected is None:
            assert out["status"] == "infeasible"
            continue
        scale = max(1.0, abs(expected), *out["detail"].get("v_j_star", {"x": 0}).values())
        assert out["detail"]["objective_value"] == pytest.approx(expected, abs=1e-6 * scale)
