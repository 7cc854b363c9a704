"""The Dagster code location: ``dagster job execute -m impact_assets.definitions -j impact_pipeline``.

Reads the manifest named by ``IMPACT_MANIFEST`` (default ``configs/pipeline.yaml``) when the code
location loads, and builds one explicit :class:`dagster.Definitions` from it.
"""

from __future__ import annotations

import warnings

import dagster as dg

from impact_assets.assets import evaluation, jobs, measurement, portfolio, report
from impact_assets.assets.manifest import GraphSpec, backfill_policy_from_env, manifest_path
from impact_assets.assets.resources import AllocateResource, EvaluateResource, MeasureResource
from impact_assets.assets.storage import JsonIOManager
from impact_assets.config import PipelineConfig, load_config

# Partitioned asset checks are a preview feature in the pinned Dagster 1.13.27; we accept it.
warnings.filterwarnings("ignore", message=r".*partitions_def on an AssetCheckSpec.*")
warnings.filterwarnings("ignore", category=dg.PreviewWarning)


def build_definitions(
    config: PipelineConfig, backfill_policy: dg.BackfillPolicy | None = None
) -> dg.Definitions:
    """Every asset, check, job and resource for one manifest."""
    spec = GraphSpec.from_config(config, backfill_policy)
    nodes = [
        *measurement.build(spec),
        *evaluation.build(spec),
        *portfolio.build(spec),
        *report.build(spec),
    ]
    checks = [n for n in nodes if isinstance(n, dg.AssetChecksDefinition)]
    assets = [n for n in nodes if not isinstance(n, dg.AssetChecksDefinition)]
    return dg.Definitions(
        assets=assets,
        asset_checks=checks,
        jobs=jobs.build(spec),
        resources={
            "measure": MeasureResource.from_stage(config.measure),
            "evaluate": EvaluateResource.from_stage(config.evaluate),
            "allocate": AllocateResource.from_stage(config.allocate),
            "io_manager": JsonIOManager(),
        },
    )


defs = build_definitions(load_config(manifest_path()), backfill_policy_from_env())
