"""Compare this ALLOCATE solver with an earlier commit's on many seeded instances.

Run: ``python benchmarks/allocate_compare.py [--old-commit 6bb57b5] [--instances 150]``
(from the repository root; needs git). The earlier commit's ``impact_assets`` is extracted with
``git archive`` into a temporary directory, and each solver runs in its own process over the
same instances: random, replicated profiles, exact duplicates (``allocate_scaling.py``) at
N = 20-300 and small integer instances full of exact ties, with the input order shuffled, both
rules, floor off or 0, threshold 0 or 0.3. The old solver gets ``--old-time-limit`` seconds (its
V* knapsacks are not limited), the new one ``--new-time-limit``.

Printed: how many instances the old solver proved optimal, and of those how many give the same
status, selection, objective and V* (exact float equality) with the new one; the instances the
old solver did not prove; the total time per class for each.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("random", "replicated", "duplicates", "integer", "random", "integer")


def integer_event(rng: np.random.Generator, n: int) -> dict:
    items = []
    for i in range(n):
        cost = int(rng.integers(1, 6))
        median = int(rng.integers(-2, 8))
        items.append(
            {
                "initiative_id": f"i{i:03d}",
                "cost": cost,
                "confidence": float(rng.choice([0.0, 0.5, 1.0])),
                "return_best": median + int(rng.integers(0, 4)),
                "return_median": median,
                "return_worst": median - int(rng.integers(0, 4)),
            }
        )
    return {"initiatives": items, "budget": float(sum(r["cost"] for r in items) // 2)}


def worker(out: Path, instances: int, time_limit: float) -> None:
    from allocate_scaling import CLASSES

    from impact_assets.allocate.bayesian import BayesianAllocate
    from impact_assets.allocate.minimax import MinimaxRegretAllocate

    with out.open("w") as fh:
        for seed in range(instances):
            rng = np.random.default_rng(seed)
            kind = KINDS[seed % len(KINDS)]
            if kind == "integer":
                n = int(rng.integers(5, 25))
                event = integer_event(rng, n)
            else:
                n = int(rng.choice([20, 50, 100, 200, 300]))
                event = CLASSES[kind](n, rng)
            order = rng.permutation(len(event["initiatives"]))
            event["initiatives"] = [event["initiatives"][i] for i in order]
            for rule_name, cls in (("m", MinimaxRegretAllocate), ("b", BayesianAllocate)):
                rule = cls(
                    min_portfolio_worst_return=[None, 0.0][seed % 2],
                    min_confidence_threshold=[0.0, 0.3][(seed // 2) % 2],
                    time_limit=time_limit,
                )
                start = time.perf_counter()
                record = {"key": f"{seed}-{rule_name}", "kind": kind, "n": n}
                try:
                    result = rule.execute(event)
                    record.update(
                        status=result["status"],
                        selected=result["selected_initiatives"],
                        objective=result["detail"]["objective_value"],
                        v_star=result["detail"].get("v_j_star"),
                    )
                except Exception as exc:
                    record["status"] = f"error: {exc}"
                record["seconds"] = time.perf_counter() - start
                fh.write(json.dumps(record) + "\n")
                fh.flush()


def run_side(package_root: Path, out: Path, instances: int, time_limit: float) -> list[dict]:
    env = {**os.environ, "PYTHONPATH": str(package_root)}
    subprocess.run(
        [sys.executable, __file__, "--worker", str(out), str(instances), str(time_limit)],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return [json.loads(line) for line in out.read_text().splitlines()]


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(Path(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old-commit", default="6bb57b5")
    parser.add_argument("--instances", type=int, default=150)
    parser.add_argument("--old-time-limit", type=float, default=5.0)
    parser.add_argument("--new-time-limit", type=float, default=8.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        old_root = Path(tmp) / "old"
        archive = subprocess.run(
            ["git", "archive", "--format=tar", args.old_commit, "impact_assets"],
            cwd=ROOT,
            check=True,
            capture_output=True,
        ).stdout
        with tarfile.open(fileobj=BytesIO(archive)) as tar:
            tar.extractall(old_root, filter="data")
        old = run_side(old_root, Path(tmp) / "old.jsonl", args.instances, args.old_time_limit)
        new = run_side(ROOT, Path(tmp) / "new.jsonl", args.instances, args.new_time_limit)
    counts: collections.Counter[str] = collections.Counter()
    seconds: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0.0])
    differences = []
    for a, b in zip(old, new, strict=True):
        seconds[a["kind"]][0] += a["seconds"]
        seconds[a["kind"]][1] += b["seconds"]
        if a["status"] != "optimal":
            counts[f"old {a['status']} ({a['kind']}); new {b['status']}"] += 1
            continue
        counts["old optimal"] += 1
        keys = ("status", "selected", "objective", "v_star")
        if all(a.get(k) == b.get(k) for k in keys):
            counts["old optimal: identical"] += 1
        else:
            differences.append((a["key"], a["kind"], a["n"], a["status"], b["status"]))
    for name, count in sorted(counts.items()):
        print(f"{name}: {count}")
    print(f"differences where the old solver proved optimality: {differences or 'none'}")
    for kind, (t_old, t_new) in sorted(seconds.items()):
        print(f"total seconds, {kind}: old {t_old:.1f}, new {t_new:.1f}")


if __name__ == "__main__":
    main()
