"""The whole pipeline, real components, on a Dagster instance stored in PostgreSQL.

``DAGSTER_HOME/dagster.yaml`` is ``deploy/dagster.yaml`` verbatim (every connection setting
through ``env:``); the run, its events and every materialization are read back from PostgreSQL.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import yaml

from impact_assets.synthetic_portfolio import write_portfolio
from tests.deploy.pg_support import (
    ROOT,
    needs_postgres,
    postgres_home,
    query,
)

BIN = Path(sys.executable).parent
COMMAND = [str(BIN / "dagster"), "job", "execute", "-m", "impact_assets.definitions"]
COMMAND += ["-j", "impact_pipeline"]
PARTITIONED = (
    "pilot_measurement",
    "evaluation",
    "allocation",
    "scale_measurement",
    "outcome_report",
)


def small_real_manifest(root: Path, n: int = 6) -> Path:
    """``n`` initiatives over the six methods, tiny data, job dirs under ``root/measure-jobs``."""
    path = write_portfolio(root, n, n_products=40, scale_sample_size=60, seed=11)
    stage = root / "stages" / "measure.yaml"
    config = yaml.safe_load(stage.read_text())
    config["storage_url"] = str(root / "measure-jobs")
    stage.write_text(yaml.safe_dump(config))
    return path


@needs_postgres
def test_whole_pipeline_runs_on_a_postgres_instance(tmp_path, pg_database):
    manifest = small_real_manifest(tmp_path / "project")
    home = postgres_home(tmp_path / "home")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "IMPACT_MANIFEST": str(manifest),
        "PYTHONPATH": str(ROOT),
    }
    out = subprocess.run(
        COMMAND,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]

    # Nothing went to SQLite; the password is nowhere in DAGSTER_HOME.
    assert not list(home.rglob("*.db"))
    secret = os.environ["IMPACT_PG_PASSWORD"]
    for path in home.rglob("*"):
        if path.is_file():
            assert secret not in path.read_text(errors="replace"), path

    ids = [f"{p}-{k:04d}" for k, p in enumerate(("exp", "sc", "nnm", "its", "sub", "approx"), 1)]
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        runs = instance.get_runs()
        assert len(runs) == 1 and runs[0].is_success
        for asset in PARTITIONED:
            assert instance.get_materialized_partitions(dg.AssetKey(asset)) == set(ids), asset
        for asset in ("portfolio", "portfolio_report"):
            assert instance.get_latest_materialization_event(dg.AssetKey(asset)) is not None
        storage = Path(instance.storage_directory()) / "impact_assets"
        run_id = runs[0].run_id

    # The same facts straight from PostgreSQL's tables.
    assert query(pg_database, "SELECT run_id, status FROM runs") == [(run_id, "SUCCESS")]
    rows = query(
        pg_database,
        "SELECT asset_key, count(*) FROM event_logs "
        "WHERE dagster_event_type = 'ASSET_MATERIALIZATION' GROUP BY asset_key",
    )
    counts = {json.loads(key)[0]: n for key, n in rows}
    assert counts == {
        **{asset: len(ids) for asset in PARTITIONED},
        "portfolio": 1,
        "portfolio_report": 1,
    }
    # Real measurements, stored as JSON beside the instance.
    pilot = json.loads((storage / "pilot_measurement" / "exp-0001.json").read_text())
    assert pilot["status"] == "ok" and pilot["model_type"] == "experiment"
    assert pilot["sample_size"] == 40
    assert Path(pilot["job_dir"]).is_relative_to(tmp_path / "project" / "measure-jobs")
