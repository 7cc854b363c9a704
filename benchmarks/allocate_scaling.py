"""ALLOCATE scaling benchmark: random and hard portfolio classes at 200, 1,000 and 10,000 initiatives.

Run: ``python benchmarks/allocate_scaling.py [--sizes 200 1000 10000] [--classes ...]
[--rules minimax_regret bayesian] [--engines search highs] [--seed 7]``.

Every rule runs with its defaults (including the default time limit) and the floor off
(``min_portfolio_worst_return=None``, as in the shipped stage config); the budget is 30% of the
total cost. Classes (spec of the Pisinger classes: methods-notes.md, Pisinger 2005):

- ``random``: cost U(5,000, 40,000); median ``cost·U(−0.05, 0.35)``; a CI of half-width
  ``cost·U(0.02, 0.4)``, skewed at random; confidence U(0.2, 1).
- ``replicated``: five return profiles (best/median/worst/confidence), initiative ``i`` has
  profile ``i mod 5`` and its own cost U(5,000, 40,000) (one pilot reused across markets).
- ``duplicates``: the same, but each profile also has one cost (exact duplicates).
- ``strongly_correlated``: integer cost ``w`` U{1..10,000}, median ``w + 1,000``, best/worst
  median ± 500, confidence 1.
- ``inverse_strongly``: integer median ``p`` U{1..10,000}, cost ``p + 1,000``, best/worst
  ``p + 500`` and ``max(p − 500, 0)``, confidence 1.
- ``subset_sum``: integer cost ``w`` U{1..10,000}, median ``w``, best ``1.2w``, worst ``0.8w``,
  confidence 1.

Engines: ``search`` is the default path (LP fixing, the dedicated branch-and-bound, HiGHS when
its node limit is reached); ``highs`` is HiGHS alone on the same reduced model
(``search_node_limit=0``: LP fixing, dominance rows and identical initiatives as integer counts).

Printed per run: wall time of the whole ``execute`` call (validation, V*, the solve), status,
certified relative gap (``gap rel`` = ``certified_gap / scale``, as in the result; for minimax
regret the scale is ``max(max_j V*_j, max |R̃|)``, for Bayesian ``max |R̃|``, the largest single
return; ``gap/obj`` = ``certified_gap / |objective|``, the usual MIP convention), the method that finished, the number of
HiGHS MILP solves and of those run in a child process. Wall times are noisy on a shared host.
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np

from impact_assets.allocate.bayesian import BayesianAllocate
from impact_assets.allocate.minimax import MinimaxRegretAllocate

R = 10_000


def _event(cost, best, median, worst, confidence) -> dict:
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
        for i in range(len(cost))
    ]
    return {"initiatives": initiatives, "budget": float(0.3 * np.sum(cost))}


def random_class(n: int, rng: np.random.Generator) -> dict:
    cost = rng.uniform(5_000, 40_000, n)
    median = cost * rng.uniform(-0.05, 0.35, n)
    half = cost * rng.uniform(0.02, 0.4, n)
    skew = rng.uniform(0.5, 1.5, n)
    confidence = rng.uniform(0.2, 1.0, n)
    return _event(cost, median + half / skew, median, median - half * skew, confidence)


def _profiles(rng: np.random.Generator, n: int):
    median = rng.uniform(2_000, 12_000, 5)
    half = rng.uniform(1_000, 6_000, 5)
    confidence = rng.uniform(0.4, 0.95, 5)
    p = np.arange(n) % 5
    return p, (median + half)[p], median[p], (median - half)[p], confidence[p]


def replicated(n: int, rng: np.random.Generator) -> dict:
    _, best, median, worst, confidence = _profiles(rng, n)
    return _event(rng.uniform(5_000, 40_000, n), best, median, worst, confidence)


def duplicates(n: int, rng: np.random.Generator) -> dict:
    p, best, median, worst, confidence = _profiles(rng, n)
    return _event(rng.uniform(5_000, 40_000, 5)[p], best, median, worst, confidence)


def strongly_correlated(n: int, rng: np.random.Generator) -> dict:
    w = rng.integers(1, R + 1, n).astype(float)
    median = w + R / 10
    return _event(w, median + R / 20, median, median - R / 20, np.ones(n))


def inverse_strongly(n: int, rng: np.random.Generator) -> dict:
    median = rng.integers(1, R + 1, n).astype(float)
    worst = np.maximum(median - R / 20, 0.0)
    return _event(median + R / 10, median + R / 20, median, worst, np.ones(n))


def subset_sum(n: int, rng: np.random.Generator) -> dict:
    w = rng.integers(1, R + 1, n).astype(float)
    return _event(w, 1.2 * w, w, 0.8 * w, np.ones(n))


CLASSES = {
    "random": random_class,
    "replicated": replicated,
    "duplicates": duplicates,
    "strongly_correlated": strongly_correlated,
    "inverse_strongly": inverse_strongly,
    "subset_sum": subset_sum,
}
RULES = {"minimax_regret": MinimaxRegretAllocate, "bayesian": BayesianAllocate}
ENGINES = {"search": {}, "highs": {"search_node_limit": 0}}


def run(args: argparse.Namespace) -> None:
    header = (
        f"| {'class':<19} | {'N':>6} | {'rule':<14} | {'engine':<6} | {'time s':>6} | "
        f"{'status':<10} | {'gap rel':>7} | {'gap/obj':>7} | {'finished by':<27} | {'MILPs':>5} | {'child':>5} |"
    )
    print(header)
    print("|" + "|".join("-" * len(part) for part in header.split("|")[1:-1]) + "|")
    for n in args.sizes:
        for name in args.classes:
            event = CLASSES[name](n, np.random.default_rng(args.seed))
            for rule_name in args.rules:
                for engine in args.engines:
                    rule = RULES[rule_name](min_portfolio_worst_return=None, **ENGINES[engine])
                    start = time.perf_counter()
                    result = rule.execute(event)
                    elapsed = time.perf_counter() - start
                    solver = result["detail"]["solver"]
                    rel = solver.get("certified_gap_relative")
                    objective = result["detail"]["objective_value"]
                    gap = solver.get("certified_gap")
                    per_obj = gap / abs(objective) if gap is not None and objective else None
                    print(
                        f"| {name:<19} | {n:>6} | {rule_name:<14} | {engine:<6} | "
                        f"{elapsed:>6.2f} | {result['status']:<10} | "
                        f"{'-' if rel is None else f'{rel:.0e}':>7} | "
                        f"{'-' if per_obj is None else f'{per_obj:.0e}':>7} | "
                        f"{solver.get('method', '-'):<27} | {solver.get('milp_solves', 0):>5} | "
                        f"{solver.get('milp_in_child_process', 0):>5} |",
                        flush=True,
                    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[200, 1_000, 10_000])
    parser.add_argument("--classes", nargs="+", default=list(CLASSES), choices=list(CLASSES))
    parser.add_argument("--rules", nargs="+", default=list(RULES), choices=list(RULES))
    parser.add_argument("--engines", nargs="+", default=list(ENGINES), choices=list(ENGINES))
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    run(args)


if __name__ == "__main__":
    main()
