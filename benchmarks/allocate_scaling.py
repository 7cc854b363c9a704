"""ALLOCATE scaling benchmark: seeded random portfolios of 100, 1,000 and 10,000 initiatives.

Run: ``.venv/bin/python benchmarks/allocate_scaling.py [--sizes 100 1000 10000] [--seed 7]``
(``--baseline`` also times the plain one-shot ``scipy.optimize.milp`` formulation).

Instances: cost uniform in [5,000, 40,000]; budget 30% of the total cost; median return
``cost * U(-0.05, 0.35)``; a CI of half-width ``cost * U(0.02, 0.4)`` around it, skewed at
random, so many CIs straddle zero; confidence uniform in [0.2, 1.0]. Both rules run with the
floor off (``min_portfolio_worst_return=None``), with the upstream default floor 0, and with a
binding floor (90% of the largest sum of ``return_worst`` the budget can buy).

Printed per rule: wall time (end to end through ``execute``, including validation and V*),
status, objective, certified gap (absolute, and relative to the solver scale: for minimax
``max(max_j V*_j, max |R̃|)``, for Bayesian ``max |R̃|``), variables left free after LP
reduced-cost fixing, branch-and-bound nodes, HiGHS MILP solves (0 = the dedicated search
proved optimality on its own).
Timings are wall clock on a shared machine: noisy.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from impact_assets.allocate.bayesian import BayesianAllocate
from impact_assets.allocate.knapsack import solve_knapsack
from impact_assets.allocate.minimax import MinimaxRegretAllocate


def instance(n: int, seed: int) -> dict:
    """A seeded random ALLOCATE event with ``n`` initiatives."""
    rng = np.random.default_rng(seed)
    cost = rng.uniform(5_000, 40_000, n)
    median = cost * rng.uniform(-0.05, 0.35, n)
    half = cost * rng.uniform(0.02, 0.4, n)
    skew = rng.uniform(0.5, 1.5, n)
    worst = median - half * skew
    best = median + half / skew
    confidence = rng.uniform(0.2, 1.0, n)
    initiatives = [
        {
            "initiative_id": f"init-{i:05d}",
            "cost": float(cost[i]),
            "confidence": float(confidence[i]),
            "return_best": float(best[i]),
            "return_median": float(median[i]),
            "return_worst": float(worst[i]),
            "model_type": "experiment",
            "sample_size": 100,
        }
        for i in range(n)
    ]
    return {"initiatives": initiatives, "budget": float(0.3 * cost.sum())}


def plain_milp_seconds(event: dict) -> tuple[float, str]:
    """The one-shot formulation (V* by three MILPs, then the main MILP), for comparison."""
    from scipy.optimize import Bounds, LinearConstraint, milp

    items = event["initiatives"]
    budget = event["budget"]
    c = np.array([i["confidence"] for i in items])
    cost = np.array([i["cost"] for i in items])
    raw = np.array([[i["return_best"], i["return_median"], i["return_worst"]] for i in items])
    eff = c[:, None] * raw + (1 - c[:, None]) * raw[:, 2:3]
    n = len(items)
    start = time.perf_counter()
    v_star = []
    for j in range(3):
        res = milp(
            -eff[:, j],
            integrality=np.ones(n),
            bounds=Bounds(0, 1),
            constraints=LinearConstraint(cost[None, :], -np.inf, budget),
            options={"time_limit": 60},
        )
        v_star.append(-res.fun)
    a = np.zeros((4, n + 1))
    a[:3, :n] = eff.T
    a[:3, n] = 1.0
    a[3, :n] = cost
    lo = np.array([*v_star, -np.inf])
    hi = np.array([np.inf, np.inf, np.inf, budget])
    obj = np.zeros(n + 1)
    obj[n] = 1.0
    res = milp(
        obj,
        integrality=np.r_[np.ones(n), 0],
        bounds=Bounds(0, np.r_[np.ones(n), np.inf]),
        constraints=LinearConstraint(a, lo, hi),
        options={"time_limit": 60},
    )
    return time.perf_counter() - start, res.message


def binding_floor(event: dict) -> float:
    """90% of the largest sum of ``return_worst`` the budget can buy: a floor that binds."""
    worst = np.array([i["return_worst"] for i in event["initiatives"]])
    cost = np.array([i["cost"] for i in event["initiatives"]])
    return 0.9 * solve_knapsack(worst, cost, event["budget"]).value


def run(sizes: list[int], seed: int, baseline: bool) -> None:
    header = (
        f"| {'N':>6} | {'rule':<14} | {'floor':<7} | {'time s':>6} | {'status':<7} | "
        f"{'objective':>13} | {'gap abs':>8} | {'gap rel':>7} | {'free':>4} | {'nodes':>7} | "
        f"{'MILPs':>5} |"
    )
    print(header)
    print("|" + "|".join("-" * len(part) for part in header.split("|")[1:-1]) + "|")
    for n in sizes:
        event = instance(n, seed)
        for floor_name, floor in (("off", None), ("0", 0.0), ("binding", binding_floor(event))):
            for name, rule in (
                ("minimax_regret", MinimaxRegretAllocate(min_portfolio_worst_return=floor)),
                ("bayesian", BayesianAllocate(min_portfolio_worst_return=floor)),
            ):
                start = time.perf_counter()
                result = rule.execute(event)
                elapsed = time.perf_counter() - start
                detail = result["detail"]
                solver = detail["solver"]
                gap = solver.get("certified_gap")
                rel = solver.get("certified_gap_relative")
                objective = detail["objective_value"]
                print(
                    f"| {n:>6} | {name:<14} | {floor_name:<7} | {elapsed:>6.3f} | "
                    f"{result['status']:<7} | "
                    f"{'-' if objective is None else f'{objective:.4f}':>13} | "
                    f"{'-' if gap is None else f'{gap:.1e}':>8} | "
                    f"{'-' if rel is None else f'{rel:.0e}':>7} | "
                    f"{solver.get('free_phase1', '-'):>4} | "
                    f"{solver.get('search_nodes', '-'):>7} | {solver.get('milp_solves', 0):>5} |"
                )
        if baseline and n <= 1000:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                seconds, message = plain_milp_seconds(event)
            print(
                f"plain scipy.optimize.milp (minimax, floor off), N={n}: {seconds:.3f} s ({message})"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1_000, 10_000])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--baseline", action="store_true")
    args = parser.parse_args()
    run(args.sizes, args.seed, args.baseline)


if __name__ == "__main__":
    main()
