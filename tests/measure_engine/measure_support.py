"""Support for the measure-engine tests: a tiny deterministic model and config writers.

Importable as ``tests.measure_engine.measure_support`` (the repository root is on ``sys.path``),
including from the subprocesses of the determinism test.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from scipy import stats

from impact_assets.measure.models.base import MODEL_REGISTRY, Model, ModelError, ModelFit

TEST_MODEL = "test_difference"

# The reference material lies beside the clone (CI) or in the workplace's shared folder.
REFERENCE = next(
    (
        candidate
        for candidate in (
            Path(__file__).resolve().parents[3] / "shared" / "reference",
            Path("/work/shared/reference"),
        )
        if candidate.is_dir()
    ),
    Path(__file__).resolve().parents[3] / "shared" / "reference",
)
REFERENCE_CONFIGS = REFERENCE / "impact-loop" / "configs"
REFERENCE_ENVELOPES = REFERENCE / "envelopes"
DEMO_INITIATIVES = (
    "product-desc-enhancement",
    "checkout-flow-optimization",
    "search-relevance-tuning",
    "pricing-display-test",
    "recommendation-engine-v2",
)


class DifferenceModel(Model):
    """Difference in mean outcome between treated and control rows (normal-theory CI).

    Reports ``model_type`` ``experiment`` (a ``MeasureResult`` needs a known model type).
    Required parameter: ``treatment_column``.
    """

    name = TEST_MODEL

    def validate_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        outcome = params.get("dependent_variable", "revenue")
        if not isinstance(outcome, str):
            raise ModelError(
                f"{TEST_MODEL}: parameter 'dependent_variable' must be a string, got {outcome!r}"
            )
        treatment = params.get("treatment_column")
        if treatment is None:
            raise ModelError(f"{TEST_MODEL}: parameter 'treatment_column' is required")
        if not isinstance(treatment, str):
            raise ModelError(
                f"{TEST_MODEL}: parameter 'treatment_column' must be a string, got {treatment!r}"
            )
        return {"dependent_variable": outcome, "treatment_column": treatment}

    def fit(self, data: pd.DataFrame, params: Mapping[str, Any]) -> ModelFit:
        y_col, t_col = params["dependent_variable"], params["treatment_column"]
        for column in (y_col, t_col):
            if column not in data.columns:
                raise ModelError(f"{TEST_MODEL}: column {column!r} not found in data")
        treated = data[t_col].astype(bool).to_numpy()
        y = data[y_col].to_numpy(dtype=float)
        y_t, y_c = y[treated], y[~treated]
        if len(y_t) < 2 or len(y_c) < 2:
            raise ModelError(f"{TEST_MODEL}: needs at least 2 treated and 2 control rows")
        effect = float(y_t.mean() - y_c.mean())
        se = float(math.sqrt(y_t.var(ddof=1) / len(y_t) + y_c.var(ddof=1) / len(y_c)))
        z = effect / se if se > 0 else 0.0
        p = float(2 * stats.norm.sf(abs(z)))
        groups = pd.DataFrame(
            {
                "group": ["control", "treated"],
                "n": [len(y_c), len(y_t)],
                "mean": [float(y_c.mean()), float(y_t.mean())],
            }
        )
        return ModelFit(
            model_type="experiment",
            effect_estimate=effect,
            ci_lower=effect - 1.96 * se,
            ci_upper=effect + 1.96 * se,
            p_value=p,
            standard_error=se,
            estimand="difference in means (per row)",
            n_observations=len(data),
            model_params={"dependent_variable": y_col, "treatment_column": t_col},
            impact_estimates={"effect": effect, "se": se, "nan_example": float("nan")},
            model_summary={"n_treated": int(treated.sum()), "n_control": int((~treated).sum())},
            diagnostics={"ci_method": "normal"},
            artifacts={"groups": groups},
        )

    def true_effect(self, data: pd.DataFrame, params: Mapping[str, Any]) -> float | None:
        y_col, t_col = params["dependent_variable"], params["treatment_column"]
        y0 = f"{y_col}_y0"
        if y0 not in data.columns:
            return None
        treated = data[t_col].astype(bool).to_numpy()
        return float((data[y_col] - data[y0]).to_numpy()[treated].mean())


def register_test_model() -> None:
    MODEL_REGISTRY[TEST_MODEL] = DifferenceModel


def unregister_test_model() -> None:
    MODEL_REGISTRY.pop(TEST_MODEL, None)


def real_models_available(*names: str) -> bool:
    """True once the models package is imported (importing it registers its models); a models
    package that does not import, or a model it does not register, fails the test module
    instead of skipping its tests."""
    import impact_assets.measure.models  # noqa: F401

    missing = [name for name in names if name not in MODEL_REGISTRY]
    if missing:
        raise AssertionError(f"impact_assets.measure.models registers no model named {missing}")
    return True


BASE_CONFIG: dict[str, Any] = {
    "DATA": {
        "SOURCE": {
            "type": "simulator",
            "CONFIG": {
                "seed": 7,
                "start_date": "2024-03-01",
                "end_date": "2024-03-14",
                "n_products": 60,
            },
        },
        "ENRICHMENT": {
            "FUNCTION": "product_detail_boost",
            "PARAMS": {
                "enrichment_fraction": 0.5,
                "enrichment_start": "2024-03-01",
                "effect_size": 0.3,
                "seed": 8,
            },
        },
    },
    "MEASUREMENT": {
        "MODEL": TEST_MODEL,
        "PARAMS": {"treatment_column": "enriched", "dependent_variable": "revenue"},
    },
}


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def write_config(directory: Path, name: str = "measure.yaml", override=None, text=None) -> Path:
    """Write ``BASE_CONFIG`` merged with ``override`` (or raw ``text``) and return the path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    if text is not None:
        path.write_text(text)
    else:
        path.write_text(yaml.safe_dump(merge(BASE_CONFIG, override or {}), sort_keys=False))
    return path


def write_panel_file(
    path: Path, n_products: int = 40, n_days: int = 10, effect: float = 5.0, seed: int = 0
) -> Path:
    """A product-day CSV with a known additive effect on ``revenue`` for half the products."""
    rng = np.random.default_rng(seed)
    ids = [f"SKU{k:03d}" for k in range(n_products)]
    dates = pd.date_range("2024-05-01", periods=n_days, freq="D")
    rows = []
    for k, pid in enumerate(ids):
        treated = k % 2 == 0
        base = rng.normal(50, 5)
        for date in dates:
            rows.append(
                {
                    "sku": pid,
                    "day": date.date().isoformat(),
                    "enriched": treated,
                    "revenue": base + rng.normal(0, 1) + (effect if treated else 0.0),
                    "price": 10.0 + k,
                }
            )
    frame = pd.DataFrame(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path
