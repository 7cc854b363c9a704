"""Jobs: the whole pipeline in one run, a one-initiative refresh, and an explicit re-allocation."""

from __future__ import annotations

import dagster as dg

from impact_assets.assets.manifest import GraphSpec

PIPELINE_JOB = "impact_pipeline"
REFRESH_JOB = "initiative_refresh"
REALLOCATE_JOB = "reallocate"


def build(spec: GraphSpec) -> list:
    everything = dg.AssetSelection.groups("impact")
    impact_pipeline = dg.define_asset_job(
        PIPELINE_JOB,
        selection=everything,
        tags=spec.range_tags,
        executor_def=dg.in_process_executor,
        description=(
            "The whole pipeline for every initiative in ONE run: pilot, evaluate, allocate once, "
            "scale, report. Its tags carry the full initiative range."
        ),
    )
    initiative_refresh = dg.define_asset_job(
        REFRESH_JOB,
        selection=dg.AssetSelection.assets("pilot_measurement", "evaluation"),
        executor_def=dg.in_process_executor,
        description=(
            "Re-measure and re-evaluate selected initiatives only (pick partitions). Does not "
            "re-allocate: run 'reallocate' when you want a new portfolio."
        ),
    )
    reallocate = dg.define_asset_job(
        REALLOCATE_JOB,
        selection=dg.AssetSelection.assets(
            "portfolio", "allocation", "scale_measurement", "outcome_report", "portfolio_report"
        ),
        tags=spec.range_tags,
        executor_def=dg.in_process_executor,
        description="Allocate again over the current evaluations, then scale and report.",
    )
    return [impact_pipeline, initiative_refresh, reallocate]
