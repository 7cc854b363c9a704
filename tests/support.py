"""Test support: small manifests on disk and deterministic fake components."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from impact_assets.component import PipelineComponent


def write_manifest(
    root: Path,
    initiatives: list[dict[str, Any]] | None = None,
    *,
    measure: dict | None = None,
    evaluate: dict | None = None,
    allocate: dict | None = None,
    **top: Any,
) -> Path:
    """Write a manifest, its three stage configs and one measure config per initiative."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "stages").mkdir(exist_ok=True)
    (root / "measure").mkdir(exist_ok=True)
    stages = {
        "measure": measure or {"component": "FakeMeasure"},
        "evaluate": evaluate or {"component": "FakeEvaluate"},
        "allocate": allocate or {"component": "MockAllocate"},
    }
    for name, content in stages.items():
        (root / "stages" / f"{name}.yaml").write_text(yaml.safe_dump(content))
    if initiatives is None:
        initiatives = [
            {"initiative_id": f"init-{k}", "cost_to_scale": 10.0 * k} for k in range(1, 4)
        ]
    entries = []
    for item in initiatives:
        item = dict(item)
        if "measure_config" not in item:
            cfg = root / "measure" / f"{item['initiative_id']}.yaml"
            cfg.write_text(yaml.safe_dump({"effect": float(len(item["initiative_id"]))}))
            item["measure_config"] = f"measure/{cfg.name}"
        entries.append(item)
    manifest = {
        "budget": 30.0,
        "scale_sample_size": 500,
        "max_workers": 2,
        "measure": {"config": "stages/measure.yaml"},
        "evaluate": {"config": "stages/evaluate.yaml"},
        "allocate": {"config": "stages/allocate.yaml"},
        "initiatives": entries,
    }
    manifest.update(top)
    path = root / "pipeline.yaml"
    path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    return path


class FakeMeasure(PipelineComponent):
    """Deterministic MEASURE stand-in that records every event it sees."""

    def __init__(self, shift: float = 0.0) -> None:
        self.shift = shift
        self.events: list[dict[str, Any]] = []

    def params(self) -> dict[str, Any]:
        return {"shift": self.shift}

    def execute(self, event: dict[str, Any]) -> dict[str, Any]:
        self.events.append(dict(event))
        config = Path(event.get("measure_config") or "")
        if config.is_file():  # a measure config with ``fail: <message>`` makes this one fail
            failure = (yaml.safe_load(config.read_text()) or {}).get("fail")
            if failure:
                raise RuntimeError(failure)
        digits = sum(ord(ch) for ch in event["initiative_id"]) % 7
        effect = 1.0 + digits + self.shift + (0.5 if event.get("phase") == "scale" else 0.0)
        return {
            "initiative_id": event["initiative_id"],
            "effect_estimate": effect,
            "ci_lower": effect - 1.0,
            "ci_upper": effect + 1.0,
            "p_value": 0.01,
            "sample_size": event.get("sample_size", 100),
            "model_type": "experiment",
            "phase": event.get("phase", "pilot"),
        }


class FakeEvaluate(PipelineComponent):
    """EVALUATE stand-in: confidence 0.9, returns straight from the CI."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def execute(self, event: dict[str, Any]) -> dict[str, Any]:
        self.events.append(dict(event))
        return {
            "initiative_id": event["initiative_id"],
            "confidence": 0.9,
            "cost": event["cost_to_scale"],
            "return_best": event["ci_upper"],
            "return_median": event["effect_estimate"],
            "return_worst": event["ci_lower"],
            "model_type": event["model_type"],
            "sample_size": event["sample_size"],
        }
