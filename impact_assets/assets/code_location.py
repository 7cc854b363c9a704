"""The code location's contents for one manifest: :func:`build_definitions` returns one explicit
:class:`dagster.Definitions` with every asset, check, job and resource."""

import warnings

import dagster as dg

from impact_assets.assets import evaluation, jobs, measurement, portfolio, report
from impact_assets.assets.manifest import GraphSpec
from impact_assets.assets.resources import (
    AllocateResource,
    EvaluateResource,
    MeasureResource,
    WorkerPoolResource,
)
from impact_assets.assets.storage import JsonIOManager
from impact_assets.config import PipelineConfig

# BackfillPolicy is beta in 1.13.27; single-run backfills are this project's decided shape.
warnings.filterwarnings("ignore", message=r"Parameter `backfill_policy` of function `asset`.*")


def build_definitions(
    config: PipelineConfig, backfill_policy: dg.BackfillPolicy | None = None
) -> dg.Definitions:
    """Every asset, check, job and resource for one manifest."""
    for stage in (config.measure, config.evaluate, config.allocate):
        stage.validate()  # an unknown component or parameter fails here, naming the stage file
    spec = GraphSpec.from_config(config, backfill_policy)
    nodes = [
        *measurement.build(spec),
        *evaluation.build(spec),
        *portfolio.build(spec),
        *report.build(spec),
    ]
    return dg.Definitions(
        # each asset carries its blocking contract checks (check_specs, run in its own step)
        assets=nodes,
        jobs=jobs.build(spec),
        # Every step of a run in one process (UI launches and backfill runs included): a step
        # per process costs about a minute per run here and buys nothing, since each step
        # already fans out over initiatives.
        executor=dg.in_process_executor,
        resources={
            "measure": MeasureResource.from_stage(config.measure),
            "evaluate": EvaluateResource.from_stage(config.evaluate),
            "allocate": AllocateResource.from_stage(config.allocate),
            "measure_workers": WorkerPoolResource(
                max_workers=config.max_workers,
                parallelism=config.parallelism,
            ),
            "io_manager": JsonIOManager(),
        },
    )
