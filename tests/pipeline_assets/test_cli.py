"""`dagster job execute` from a shell, in a fresh DAGSTER_HOME, as a user runs it."""

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg

from tests.support import write_manifest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def fake_manifest(root: Path, **top) -> Path:
    return write_manifest(
        root,
        measure={"component": "tests.support:FakeMeasure"},
        evaluate={"component": "tests.support:FakeEvaluate"},
        **top,
    )


def new_instance_home(home: Path) -> None:
    """A DAGSTER_HOME whose SQLite storage exists before any process uses it: several processes
    creating a fresh instance at once race in Dagster's schema migration (alembic "more than one
    head"; docs/reliability.md)."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    dg.DagsterInstance.from_config(str(home)).dispose()


def cli_env(home: Path, manifest: Path) -> dict[str, str]:
    new_instance_home(home)
    return {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "IMPACT_MANIFEST": str(manifest),
        "PYTHONPATH": str(ROOT),
    }


PIPELINE = ["job", "execute", "-m", "impact_assets.definitions", "-j", "impact_pipeline"]


def dagster(args: list[str], env: dict[str, str], check: bool = False):
    """Run the ``dagster`` CLI from the project root, as a user would."""
    return subprocess.run(
        [str(BIN / "dagster"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=check,
    )


def test_dagster_job_execute_runs_the_whole_pipeline_in_one_run(tmp_path):
    manifest = fake_manifest(tmp_path / "project")
    env = cli_env(tmp_path / "home", manifest)
    out = dagster(PIPELINE, env)
    assert out.returncode == 0, out.stderr[-3000:]
    log = out.stdout + out.stderr
    assert "pilot 3/3" in log and "RUN_SUCCESS" in log
    with dg.DagsterInstance.from_config(str(tmp_path / "home")) as instance:
        runs = instance.get_runs()
        assert len(runs) == 1 and runs[0].is_success
        assert runs[0].tags["dagster/asset_partition_range_start"] == "init-1"
        assert runs[0].tags["dagster/asset_partition_range_end"] == "init-3"
        for asset in ("pilot_measurement", "evaluation", "allocation", "outcome_report"):
            assert instance.get_materialized_partitions(dg.AssetKey(asset)) == {
                "init-1",
                "init-2",
                "init-3",
            }


def test_asset_materialize_refreshes_one_initiative(tmp_path):
    manifest = fake_manifest(tmp_path / "project")
    env = cli_env(tmp_path / "home", manifest)
    out = dagster(
        [
            "asset",
            "materialize",
            "-m",
            "impact_assets.definitions",
            "--select",
            "pilot_measurement,evaluation",
            "--partition",
            "init-2",
        ],
        env,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    with dg.DagsterInstance.from_config(str(tmp_path / "home")) as instance:
        assert instance.get_materialized_partitions(dg.AssetKey("evaluation")) == {"init-2"}
        assert instance.get_latest_materialization_event(dg.AssetKey("portfolio")) is None


def validate(env: dict[str, str]):
    """``python -m impact_assets validate``: what ``scripts/demo.sh`` runs first."""
    return subprocess.run(
        [sys.executable, "-m", "impact_assets", "validate"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_bad_manifest_gives_one_clear_line_and_exit_2(tmp_path):
    manifest = fake_manifest(tmp_path / "project")
    manifest.write_text(manifest.read_text().replace("budget: 30.0", "budget: -3"))
    env = cli_env(tmp_path / "home", manifest)
    message = f"{manifest}: budget: must be > 0, got -3"
    out = validate(env)
    assert out.returncode == 2
    assert out.stderr == f"error: {message}\n"
    # the Dagster CLI stops loading the code location on the same error, named on its last line
    out = dagster(PIPELINE, env)
    assert out.returncode != 0
    assert out.stderr.strip().splitlines()[-1] == f"impact_assets.config.ConfigError: {message}"


def test_report_command_prints_the_table_and_exports(tmp_path):
    import csv
    import json

    manifest = fake_manifest(tmp_path / "project")
    env = cli_env(tmp_path / "home", manifest)
    python = str(BIN / "python")
    missing = subprocess.run(
        [python, "-m", "impact_assets", "report"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert missing.returncode == 2
    assert missing.stderr.strip().startswith("error: no portfolio_report has been materialized")
    dagster(PIPELINE, env, check=True)
    out = subprocess.run(
        [
            python,
            "-m",
            "impact_assets",
            "report",
            "--csv",
            str(tmp_path / "r.csv"),
            "--json",
            str(tmp_path / "r.json"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    lines = out.stdout.splitlines()
    assert lines[0].split()[:3] == ["initiative", "method", "pilot_estimate"]
    assert [line.split()[0] for line in lines[1:4]] == ["init-1", "init-2", "init-3"]
    rows = list(csv.DictReader((tmp_path / "r.csv").open()))
    assert [r["initiative"] for r in rows] == ["init-1", "init-2", "init-3"]
    assert [r["selected"] for r in rows] == ["True", "True", "False"]
    assert float(rows[0]["error"]) == float(rows[0]["actual"]) - float(rows[0]["predicted"])
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["figures"]["n_selected"] == 2 and data["figures"]["budget_used"] == 30.0
    exports = tmp_path / "home" / "storage" / "impact_assets" / "exports"
    png = (exports / "portfolio_report.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    import pandas as pd

    frame = pd.read_parquet(exports / "portfolio_report.parquet")
    assert list(frame["initiative"]) == ["init-1", "init-2", "init-3"]


def test_unknown_component_gives_one_clear_line_naming_the_stage_file(tmp_path):
    manifest = fake_manifest(tmp_path / "project")
    stage = manifest.parent / "stages" / "allocate.yaml"
    stage.write_text("component: MinimaxRegretAlocate\n")
    env = cli_env(tmp_path / "home", manifest)
    out = validate(env)
    assert out.returncode == 2
    line = out.stderr.strip().splitlines()[-1]
    assert line.startswith(f"error: {stage}: component: Unknown component 'MinimaxRegretAlocate'")
    assert "Did you mean 'MinimaxRegretAllocate'?" in line and "Traceback" not in out.stderr
    out = dagster(PIPELINE, env)
    assert out.returncode != 0
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith(f"impact_assets.config.ConfigError: {stage}: component: Unknown")
