"""Timing of the shipped ALLOCATE default and of the budget frontier (a script, not a test).

Run: ``python benchmarks/frontier_scaling.py [--sizes 100 1000] [--seed 7]``.

Instances are those of ``benchmarks/allocate_scaling.py`` (cost U(5,000, 40,000), budget 30% of
the total cost, median ``cost * U(-0.05, 0.35)``, a skewed CI around it). Per size: one
``EmpiricalBayesAllocate`` call (shrinkage included) and ``budget_frontier`` with the same
component (21 budgets from 0 to the total cost, plus the chosen one: 22 solves). Targets:
ALLOCATE at N = 1,000 within 1 s, the frontier within 10 s. Wall clock on a shared host: noisy.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from allocate_scaling import instance

from impact_assets.allocate.frontier import budget_frontier
from impact_assets.registry import build_component


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1_000])
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    print("| N | rule | ALLOCATE s | status | selected | frontier solves | frontier s |")
    print("|---|---|---|---|---|---|---|")
    for n in args.sizes:
        event = instance(n, args.seed)
        for name in ("EmpiricalBayesAllocate", "MinimaxRegretAllocate"):
            component = build_component(name)
            start = time.perf_counter()
            result = component.execute(event)
            single = time.perf_counter() - start
            start = time.perf_counter()
            frontier = budget_frontier(component, event["initiatives"], budget=event["budget"])
            seconds = time.perf_counter() - start
            print(
                f"| {n} | {name} | {single:.3f} | {result['status']} | "
                f"{len(result['selected_initiatives'])} | {len(frontier['points'])} | "
                f"{seconds:.2f} |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
