"""Runs spread over processes: a batched asset backfill run by dagster-daemon on PostgreSQL.

50 initiatives, ``IMPACT_BACKFILL_BATCH_SIZE=10`` (``BackfillPolicy.multi_run(10)``), the queued
run coordinator of ``deploy/dagster.yaml`` (``max_concurrent_runs: 2``). The daemon launches every
run as its own process; several execute at once; the backfill ends green; and the reports equal
those of the same manifest executed as one run.
"""

import os
from pathlib import Path

import dagster as dg
import requests
import yaml

from impact_assets.assets.code_location import build_definitions
from impact_assets.config import load_config
from impact_assets.synthetic_portfolio import write_portfolio
from tests.deploy.pg_support import (
    ROOT,
    needs_postgres,
    postgres_home,
    stored_reports,
)
from tests.pipeline_assets.test_webserver import (
    BACKFILL_MUTATION,
    BIN,
    free_port,
    graphql,
    start,
    stop,
    wait_for,
)

N = 50
BATCH = 10
PARTITIONED = (
    "pilot_measurement",
    "evaluation",
    "allocation",
    "scale_measurement",
    "outcome_report",
)
ALL_ASSETS = (*PARTITIONED, "portfolio", "portfolio_report")


def fifty_initiatives(root: Path) -> Path:
    """50 initiatives from the synthetic portfolio, fake MEASURE/EVALUATE (the runs are the point)."""
    path = write_portfolio(root, N, n_products=40, scale_sample_size=200, seed=3)
    for stage, component in (("measure", "FakeMeasure"), ("evaluate", "FakeEvaluate")):
        (root / "stages" / f"{stage}.yaml").write_text(
            yaml.safe_dump({"component": f"tests.support:{component}"})
        )
    return path


def partition_count(run: dg.DagsterRun, ids: list[str]) -> int | None:
    tags = run.tags
    if "dagster/partition" in tags:
        return 1
    start = tags.get("dagster/asset_partition_range_start")
    end = tags.get("dagster/asset_partition_range_end")
    if start is None:
        return None
    return ids.index(end) - ids.index(start) + 1


@needs_postgres
def test_daemon_backfills_fifty_initiatives_in_batches_of_ten(tmp_path, pg_database):
    manifest = fifty_initiatives(tmp_path / "project")
    ids = load_config(manifest).initiative_ids
    home = postgres_home(tmp_path / "home")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "IMPACT_MANIFEST": str(manifest),
        "IMPACT_BACKFILL_BATCH_SIZE": str(BATCH),
        "PYTHONPATH": str(ROOT),
    }
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(
        yaml.safe_dump(
            {
                "load_from": [
                    {
                        "python_module": {
                            "module_name": "impact_assets.definitions",
                            "working_directory": str(ROOT),
                            "location_name": "impact_assets",
                        }
                    }
                ]
            }
        )
    )
    port = free_port()
    web = start(
        [str(BIN / "dagster-webserver"), "-w", str(workspace), "-h", "127.0.0.1", "-p", str(port)],
        env,
        tmp_path / "webserver.log",
    )
    daemon = start(
        [str(BIN / "dagster-daemon"), "run", "-w", str(workspace)], env, tmp_path / "daemon.log"
    )
    try:

        def up():
            try:
                return requests.get(f"http://127.0.0.1:{port}/server_info", timeout=2).ok
            except requests.RequestException:
                return False

        wait_for(up, 180, "the webserver")
        launched = graphql(
            port,
            BACKFILL_MUTATION,
            {
                "params": {
                    "assetSelection": [{"path": [name]} for name in ALL_ASSETS],
                    "allPartitions": True,
                }
            },
        )["launchPartitionBackfill"]
        assert launched["__typename"] == "LaunchBackfillSuccess", launched
        backfill_id = launched["backfillId"]
        stop(web)  # the daemon does the rest

        # Meanwhile (the backfill daemon ticks every 30 s): the same manifest as ONE run.
        defs = build_definitions(load_config(manifest))
        with dg.instance_for_test() as single:
            result = defs.resolve_job_def("impact_pipeline").execute_in_process(instance=single)
            assert result.success and len(single.get_runs()) == 1
            one_run = stored_reports(Path(single.storage_directory()) / "impact_assets")

        with dg.DagsterInstance.from_config(str(home)) as instance:

            def finished():
                backfill = instance.get_backfill(backfill_id)
                status = backfill.status.value
                return status if status != "REQUESTED" else None

            status = wait_for(finished, 480, "the backfill")
            log = (tmp_path / "daemon.log").read_text()[-4000:]
            assert status == "COMPLETED_SUCCESS", log

            runs = instance.get_run_records(dg.RunsFilter(tags={"dagster/backfill": backfill_id}))
            assert runs and all(r.dagster_run.is_success for r in runs), log
            # Batches: no run covers more than 10 initiatives; pilot+evaluation took >= 5 runs.
            sizes = [partition_count(r.dagster_run, ids) for r in runs]
            assert max(s for s in sizes if s is not None) == BATCH
            pilot_runs = [
                r
                for r in runs
                if dg.AssetKey("pilot_measurement") in (r.dagster_run.asset_selection or ())
            ]
            assert len(pilot_runs) == N // BATCH
            # Runs were separate processes that overlapped in time (max_concurrent_runs: 2).
            spans = sorted((r.start_time, r.end_time) for r in runs)
            overlaps = [
                (a, b)
                for i, a in enumerate(spans)
                for b in spans[i + 1 :]
                if b[0] < a[1] and a[0] < b[1]
            ]
            assert overlaps, spans
            # Never more than two at once.
            for start_time, _ in spans:
                running = [s for s in spans if s[0] <= start_time < s[1]]
                assert len(running) <= 2, spans
            for asset in PARTITIONED:
                assert instance.get_materialized_partitions(dg.AssetKey(asset)) == set(ids), asset
            for asset in ("portfolio", "portfolio_report"):
                assert instance.get_latest_materialization_event(dg.AssetKey(asset)) is not None
            batched = stored_reports(Path(instance.storage_directory()) / "impact_assets")
    finally:
        stop(daemon)
        stop(web)
    assert len(batched) == N + 1
    # ... gives the same reports.
    assert batched == one_run
