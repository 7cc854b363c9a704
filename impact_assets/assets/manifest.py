"""Which manifest the code location serves, and the initiative partitions built from it.

The manifest is ``configs/pipeline.yaml`` in the project root unless ``IMPACT_MANIFEST`` names
another file. Partitions are static: editing the manifest and reloading the code location adds
or removes initiatives.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from impact_assets.config import InitiativeConfig, PipelineConfig

MANIFEST_ENV = "IMPACT_MANIFEST"
BATCH_ENV = "IMPACT_BACKFILL_BATCH_SIZE"
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def manifest_path() -> Path:
    """The manifest path: ``$IMPACT_MANIFEST`` or ``<project>/configs/pipeline.yaml``."""
    env = os.environ.get(MANIFEST_ENV)
    if env:
        return Path(env).expanduser().resolve()
    candidate = PROJECT_ROOT / "configs" / "pipeline.yaml"
    if candidate.exists():
        return candidate
    return (Path.cwd() / "configs" / "pipeline.yaml").resolve()


def backfill_policy_from_env() -> dg.BackfillPolicy:
    """One run for everything (default), or batches of ``$IMPACT_BACKFILL_BATCH_SIZE`` initiatives."""
    raw = os.environ.get(BATCH_ENV, "").strip()
    if not raw or raw == "0":
        return dg.BackfillPolicy.single_run()
    try:
        size = int(raw)
    except ValueError:
        raise ValueError(f"{BATCH_ENV} must be a whole number, got {raw!r}") from None
    if size < 0:
        raise ValueError(f"{BATCH_ENV} must be >= 0, got {raw!r}")
    return dg.BackfillPolicy.multi_run(max_partitions_per_run=size)


@dataclass(frozen=True)
class GraphSpec:
    """Everything the asset factories need: the manifest, its partitions, the backfill policy."""

    config: PipelineConfig
    partitions: dg.StaticPartitionsDefinition
    backfill_policy: dg.BackfillPolicy

    @classmethod
    def from_config(
        cls, config: PipelineConfig, backfill_policy: dg.BackfillPolicy | None = None
    ) -> GraphSpec:
        return cls(
            config=config,
            partitions=dg.StaticPartitionsDefinition(config.initiative_ids),
            backfill_policy=backfill_policy or dg.BackfillPolicy.single_run(),
        )

    def initiative(self, initiative_id: str) -> InitiativeConfig:
        return self.config.initiative(initiative_id)

    @property
    def range_tags(self) -> dict[str, str]:
        """Run tags that make one run cover every initiative."""
        ids = self.config.initiative_ids
        return {
            "dagster/asset_partition_range_start": ids[0],
            "dagster/asset_partition_range_end": ids[-1],
        }
