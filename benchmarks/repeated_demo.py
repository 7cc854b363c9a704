"""Write the repeated-demo manifest: the five demo initiatives repeated, each copy its own cost.

One pilot reused across markets: copy ``k`` of a demo initiative keeps its measure config (so the
same return profile) and ``value_per_unit``, and gets a cost of the demo cost times
U(0.5, 1.5), rounded to whole units; the budget is 30% of the total cost.

    python benchmarks/repeated_demo.py OUT_DIR --initiatives 1000 [--seed 7]
    DAGSTER_HOME=... IMPACT_MANIFEST=OUT_DIR/pipeline.yaml \\
        dagster job execute -m impact_assets.definitions -j impact_pipeline
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]


def write(out: Path, n: int, seed: int) -> Path:
    demo = yaml.safe_load((ROOT / "configs/pipeline.yaml").read_text())
    out.mkdir(parents=True, exist_ok=True)
    for folder in ("initiatives", "stages"):
        shutil.copytree(ROOT / "configs" / folder, out / folder, dirs_exist_ok=True)
    rng = np.random.default_rng(seed)
    base = demo["initiatives"]
    initiatives = []
    for k in range(n):
        item = dict(base[k % len(base)])
        item["initiative_id"] = f"{item['initiative_id']}-{k // len(base):04d}"
        item["name"] = f"{item['name']} (market {k // len(base)})"
        item["cost_to_scale"] = float(round(item["cost_to_scale"] * rng.uniform(0.5, 1.5)))
        initiatives.append(item)
    manifest = {
        **{key: value for key, value in demo.items() if key != "initiatives"},
        "name": f"repeated demo portfolio ({n} initiatives)",
        "budget": float(round(0.3 * sum(i["cost_to_scale"] for i in initiatives))),
        "initiatives": initiatives,
    }
    path = out / "pipeline.yaml"
    path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--initiatives", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    print(write(args.out, args.initiatives, args.seed))


if __name__ == "__main__":
    main()
