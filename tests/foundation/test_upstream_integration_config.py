"""The upstream orchestrator's integration-test setup (configs/examples/upstream-integration):
5 simulated products over 31 days, aggregate_by_date, ITS with the intervention on 2024-01-15.
Upstream runs it; so must we, through the Orchestrator and through `dagster job execute`, with a
scale phase that really measures a larger catalog."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from impact_assets.config import load_config
from impact_assets.measure.component import Measure
from impact_assets.orchestrator import Orchestrator
from tests.pipeline_assets.test_cli import PIPELINE, cli_env

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "configs" / "examples" / "upstream-integration"
IDS = ["init-001", "init-002", "init-003"]


def _source(job_dir: str | Path) -> dict:
    return json.loads((Path(job_dir) / "manifest.json").read_text())["source"]


def test_upstream_integration_config_runs_through_the_orchestrator(tmp_path):
    cfg = load_config(EXAMPLE / "pipeline.yaml")
    orchestrator = Orchestrator(
        measure=Measure(storage_url=str(tmp_path / "store")),
        evaluate=cfg.evaluate.build(),
        allocate=cfg.allocate.build(),
        config=cfg,
    )
    result = orchestrator.run()
    assert [r["initiative_id"] for r in result["pilot_results"]] == IDS
    for pilot in result["pilot_results"]:
        # ITS rests on the 31 dates (its sample_size), not on the 5 products
        assert pilot["sample_size"] == 31 and pilot["min_sample_size"] == 30
        assert pilot["diagnostics"]["sample_size_unit"] == "periods of the series"
        assert pilot["diagnostics"]["n_pre_periods"] == 14
        assert pilot["diagnostics"]["n_post_periods"] == 17
        assert pilot["true_effect"] == 0.0  # no enrichment
        assert _source(pilot["job_dir"])["n_products"] == 5
    selected = result["allocate_result"]["selected_initiatives"]
    assert selected == IDS  # budget 100,000 covers the three costs (33,000)
    assert len(result["outcome_reports"]) == len(result["scale_results"]) == 3
    for scale, pilot in zip(result["scale_results"], result["pilot_results"], strict=True):
        # the scale phase really scales: a new catalog of scale_sample_size (500) products
        source = _source(scale["job_dir"])
        assert source["n_products"] == cfg.scale_sample_size == 500
        assert source["n_rows"] == 500 * 31
        assert scale["phase"] == "scale" and scale["sample_size"] == 31
        # one date of the scaled catalog sums 100 times as many products as the pilot's
        pilot_rev = pd.read_parquet(Path(pilot["job_dir"]) / "transformed_metrics.parquet")
        scale_rev = pd.read_parquet(Path(scale["job_dir"]) / "transformed_metrics.parquet")
        assert scale_rev["revenue"].mean() > 20 * pilot_rev["revenue"].mean()
    for report in result["outcome_reports"]:
        assert report["sample_size_scale"] >= report["sample_size_pilot"] == 31
        assert report["min_sample_size"] == 30


def test_upstream_integration_config_runs_through_dagster_job_execute(tmp_path):
    project = tmp_path / "project"
    shutil.copytree(EXAMPLE, project)
    env = cli_env(tmp_path / "home", project / "pipeline.yaml")
    out = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), *PIPELINE],
        cwd=project,  # the stage config's storage_url is relative to the working directory
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "RUN_SUCCESS" in out.stdout + out.stderr
    store = project / "data" / "measure-upstream-integration"
    for initiative in IDS:
        assert _source(store / initiative / "pilot")["n_products"] == 5
        assert _source(store / initiative / "scale")["n_products"] == 500
    with dg.DagsterInstance.from_config(str(tmp_path / "home")) as instance:
        assert instance.get_materialized_partitions(dg.AssetKey("outcome_report")) == set(IDS)


def test_manifest_min_sample_size_reaches_the_measure_event(tmp_path):
    from impact_assets import steps
    from impact_assets.config import ConfigError

    project = tmp_path / "project"
    shutil.copytree(EXAMPLE, project)
    manifest = project / "pipeline.yaml"
    text = manifest.read_text()
    manifest.write_text(
        text.replace(
            "    cost_to_scale: 8000\n", "    cost_to_scale: 8000\n    min_sample_size: 17\n"
        )
    )
    cfg = load_config(manifest)
    small = cfg.initiatives[2]
    assert small.min_sample_size == 17 and cfg.initiatives[0].min_sample_size is None
    assert steps.measure_event(small)["min_sample_size"] == 17
    assert "min_sample_size" not in steps.measure_event(cfg.initiatives[0])
    manifest.write_text(
        text.replace(
            "    cost_to_scale: 8000\n", "    cost_to_scale: 8000\n    min_sample_size: 2.5\n"
        )
    )
    with pytest.raises(ConfigError) as err:
        load_config(manifest)
    assert str(err.value) == (
        f"{manifest}: initiative 'init-003': initiatives[2].min_sample_size: "
        "must be an integer, got 2.5"
    )
