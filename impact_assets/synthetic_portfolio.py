"""Write a synthetic manifest of N initiatives that cycle through the six measurement methods.

Used for the 30-initiative example (``configs/examples/portfolio-30``), the pipeline scaling
benchmark and tests. Every initiative gets its own seed, a true effect drawn from a documented
distribution (some harmful, some negligible), a cost between 5,000 and 40,000, and the budget is
a share of the total cost, so the allocation has to choose.

    python -m impact_assets.synthetic_portfolio OUT_DIR --initiatives 30 --seed 7
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import yaml

METHODS = (
    "experiment",
    "synthetic_control",
    "nearest_neighbour_matching",
    "interrupted_time_series",
    "subclassification",
    "metrics_approximation",
)

_SHORT = {
    "experiment": "exp",
    "synthetic_control": "sc",
    "nearest_neighbour_matching": "nnm",
    "interrupted_time_series": "its",
    "subclassification": "sub",
    "metrics_approximation": "approx",
}


def measure_config(method: str, seed: int, effect_size: float, n_products: int) -> dict[str, Any]:
    """A measure config (upstream format) for one initiative measured by ``method``."""
    long_window = method in (
        "synthetic_control",
        "interrupted_time_series",
        "metrics_approximation",
    )
    start, end, begin = (
        ("2024-10-01", "2024-12-31", "2024-11-15")
        if long_window
        else ("2024-01-08", "2024-01-21", "2024-01-08")
    )
    fraction = {"synthetic_control": 0.1, "interrupted_time_series": 1.0}.get(method, 0.5)
    enrichment = {
        "enrichment_fraction": fraction,
        "enrichment_start": begin,
        "effect_size": round(float(effect_size), 4),
        "ramp_days": 7 if method == "synthetic_control" else 0,
        "seed": seed,
    }
    data: dict[str, Any] = {
        "SOURCE": {
            "type": "simulator",
            "CONFIG": {
                "seed": seed,
                "n_products": n_products,
                "start_date": start,
                "end_date": end,
            },
        },
        "ENRICHMENT": {"FUNCTION": "product_detail_boost", "PARAMS": enrichment},
    }
    params: dict[str, Any]
    if method == "experiment":
        params = {"formula": "revenue ~ enriched + price", "treatment_column": "enriched"}
    elif method == "synthetic_control":
        data["TRANSFORM"] = {"FUNCTION": "prepare_for_synthetic_control", "PARAMS": {}}
        params = {
            "treatment_time": begin,
            "outcome_column": "revenue",
            "unit_column": "product_id",
            "time_column": "date",
        }
    elif method == "nearest_neighbour_matching":
        params = {
            "treatment_column": "enriched",
            "covariate_columns": ["price"],
            "dependent_variable": "revenue",
            "caliper": None,
            "replace": True,
        }
    elif method == "interrupted_time_series":
        data["TRANSFORM"] = {
            "FUNCTION": "aggregate_by_date",
            "PARAMS": {"metric": "revenue", "statistic": "mean"},
        }
        params = {"intervention_date": begin, "dependent_variable": "revenue"}
    elif method == "subclassification":
        params = {
            "treatment_column": "enriched",
            "covariate_columns": ["price"],
            "n_strata": 5,
            "estimand": "att",
            "dependent_variable": "revenue",
        }
    elif method == "metrics_approximation":
        enrichment["quality_boost"] = 0.3
        data["TRANSFORM"] = {
            "FUNCTION": "prepare_simulator_for_approximation",
            "PARAMS": {"baseline_metric": "revenue"},
        }
        params = {
            "RESPONSE": {"FUNCTION": "linear", "PARAMS": {"coefficient": 0.5}},
            "aggregate": "mean",
        }
    else:
        raise ValueError(f"unknown method {method!r}; methods: {', '.join(METHODS)}")
    return {"DATA": data, "MEASUREMENT": {"MODEL": method, "PARAMS": params}}


def write_portfolio(
    root: Path,
    n_initiatives: int,
    *,
    seed: int = 7,
    budget_share: float = 0.3,
    scale_sample_size: int = 500,
    n_products: int = 120,
    max_workers: int = 2,
    allocate_component: str = "MinimaxRegretAllocate",
    evaluate_component: str = "EvidenceEvaluate",
) -> Path:
    """Write ``pipeline.yaml``, stage configs and one measure config per initiative under ``root``.

    True effect sizes (relative uplift) are drawn from a mixture: 60% N(0.35, 0.15), 25% near zero
    N(0, 0.03), 15% harmful N(-0.25, 0.1). Costs are uniform on [5,000, 40,000] (rounded to 500).
    """
    if n_initiatives < 1:
        raise ValueError(f"n_initiatives must be >= 1, got {n_initiatives}")
    rng = np.random.default_rng(seed)
    root = Path(root)
    (root / "stages").mkdir(parents=True, exist_ok=True)
    (root / "initiatives").mkdir(parents=True, exist_ok=True)
    stages = {
        "measure": {"component": "Measure", "storage_url": "./data/measure"},
        "evaluate": {"component": evaluate_component},
        "allocate": {"component": allocate_component},
    }
    if allocate_component == "MinimaxRegretAllocate":
        stages["allocate"]["min_portfolio_worst_return"] = None
    for name, content in stages.items():
        (root / "stages" / f"{name}.yaml").write_text(yaml.safe_dump(content, sort_keys=False))
    initiatives = []
    for k in range(n_initiatives):
        method = METHODS[k % len(METHODS)]
        kind = rng.choice(3, p=[0.6, 0.25, 0.15])
        effect = [rng.normal(0.35, 0.15), rng.normal(0.0, 0.03), rng.normal(-0.25, 0.1)][kind]
        cost = float(np.round(rng.uniform(5_000, 40_000) / 500) * 500)
        ident = f"{_SHORT[method]}-{k + 1:04d}"
        config = measure_config(method, seed * 10_000 + k, effect, n_products)
        path = root / "initiatives" / f"{ident}.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        initiatives.append(
            {
                "initiative_id": ident,
                "cost_to_scale": cost,
                "measure_config": f"initiatives/{ident}.yaml",
            }
        )
    total = sum(i["cost_to_scale"] for i in initiatives)
    manifest = {
        "name": f"synthetic portfolio of {n_initiatives}",
        "budget": round(total * budget_share, 2),
        "scale_sample_size": scale_sample_size,
        "max_workers": max_workers,
        "measure": {"config": "stages/measure.yaml"},
        "evaluate": {"config": "stages/evaluate.yaml"},
        "allocate": {"config": "stages/allocate.yaml"},
        "initiatives": initiatives,
    }
    path = root / "pipeline.yaml"
    path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--initiatives", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--budget-share", type=float, default=0.3)
    parser.add_argument("--scale-sample-size", type=int, default=500)
    args = parser.parse_args(argv)
    path = write_portfolio(
        args.out,
        args.initiatives,
        seed=args.seed,
        budget_share=args.budget_share,
        scale_sample_size=args.scale_sample_size,
    )
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
