"""Bad inputs not covered elsewhere (docs/reliability.md lists every case and its test).

Each case ends with an error naming the file, the initiative and the field (or a documented
empty result), and leaves no half-written or corrupted file behind.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import yaml

from impact_assets.assets.code_location import build_definitions
from impact_assets.assets.storage import JsonIOManager
from impact_assets.config import ConfigError, load_config
from impact_assets.measure.component import Measure
from impact_assets.measure.config import MeasureConfigError
from tests.support import write_manifest

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENT = {
    "MODEL": "experiment",
    "PARAMS": {"formula": "revenue ~ enriched + price", "treatment_column": "enriched"},
}
MATCHING = {
    "MODEL": "nearest_neighbour_matching",
    "PARAMS": {
        "treatment_column": "enriched",
        "covariate_columns": ["price"],
        "dependent_variable": "revenue",
        "caliper": 0.2,
        "replace": True,
    },
}


def panel(
    n_products: int = 60,
    *,
    nan: bool = False,
    drop: str | None = None,
    constant: bool = False,
    separated: bool = False,
) -> pd.DataFrame:
    """A small product x day panel with a known +5 effect of ``enriched`` on ``revenue``."""
    rng = np.random.default_rng(0)
    rows = []
    for product in range(n_products):
        treated = 1 if constant else product % 2
        price = 50 + rng.normal(0, 5) + (100 if separated and treated else 0)
        for day in range(1, 5):
            rows.append(
                {
                    "product_id": f"p{product}",
                    "date": f"2024-01-0{day}",
                    "price": price,
                    "enriched": treated,
                    "revenue": 100 + 5 * treated + rng.normal(0, 3),
                }
            )
    frame = pd.DataFrame(rows)
    if nan:
        frame.loc[3, "revenue"] = np.nan
    if drop:
        frame = frame.drop(columns=[drop])
    return frame


def file_config(folder: Path, frame: pd.DataFrame | None, measurement=EXPERIMENT) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if frame is not None:
        frame.to_csv(folder / "data.csv", index=False)
    config = {
        "DATA": {"SOURCE": {"type": "file", "CONFIG": {"path": "data.csv"}}},
        "MEASUREMENT": measurement,
    }
    path = folder / "measure.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def measure_error(tmp_path: Path, frame, measurement=EXPERIMENT) -> str:
    """Run MEASURE on ``frame``; return the error; check nothing was written for the initiative."""
    config = file_config(tmp_path / "cfg", frame, measurement)
    store = tmp_path / "store"
    with pytest.raises(ValueError) as info:
        Measure(storage_url=str(store)).execute(
            {"initiative_id": "bad-data", "measure_config": str(config)}
        )
    message = str(info.value)
    assert str(config) in message and "'bad-data'" in message, message
    # No job directory (and no temp directory) for a measurement that failed.
    assert not list((store / "bad-data").glob("*")) if (store / "bad-data").exists() else True
    return message


# --------------------------------------------------------------------------- data files


def test_data_file_missing(tmp_path):
    message = measure_error(tmp_path, None)
    assert "DATA.SOURCE.CONFIG.path: Data file not found" in message


def test_data_file_with_a_missing_column(tmp_path):
    message = measure_error(tmp_path, panel(drop="enriched"))
    assert "column 'enriched' not found in data" in message


def test_data_file_with_nans(tmp_path):
    message = measure_error(tmp_path, panel(nan=True))
    assert "column 'revenue' has 1 missing value(s) (NaN)" in message


def test_fewer_than_30_units(tmp_path):
    message = measure_error(tmp_path, panel(n_products=20))
    assert message.endswith(
        "measure.yaml: initiative 'bad-data': MEASUREMENT.min_sample_size: model 'experiment': "
        "sample_size is 20 (products), below the minimum 30 (the contract's default); a "
        "small-panel design may set a lower MEASUREMENT.min_sample_size (docs/measure.md, "
        "'Sample size per model')"
    )


def test_constant_treatment(tmp_path):
    message = measure_error(tmp_path, panel(constant=True))
    assert "treatment column 'enriched' is constant" in message


def test_no_overlap_between_treated_and_control(tmp_path):
    message = measure_error(tmp_path, panel(separated=True), MATCHING)
    assert "no unit has a match within parameter 'caliper'" in message
    assert "do not overlap" in message


def test_no_rows_left_after_the_date_filter(tmp_path):
    config = file_config(tmp_path / "cfg", panel())
    data = yaml.safe_load(config.read_text())
    data["DATA"]["SOURCE"]["CONFIG"].update(start_date="2030-01-01", end_date="2030-02-01")
    config.write_text(yaml.safe_dump(data))
    with pytest.raises(MeasureConfigError, match=r"path: no rows left in .*data.csv"):
        Measure(storage_url=str(tmp_path / "store")).execute(
            {"initiative_id": "bad-data", "measure_config": str(config)}
        )


# --------------------------------------------------------------------------- paths and ids


def test_data_path_escaping_the_project_is_refused_unless_allowed(tmp_path):
    outside = tmp_path / "elsewhere"
    panel().to_csv(outside.mkdir() or outside / "data.csv", index=False)
    project = tmp_path / "project"
    config = file_config(project / "measure", None)
    data = yaml.safe_load(config.read_text())
    data["DATA"]["SOURCE"]["CONFIG"]["scale_path"] = "../../elsewhere/data.csv"
    config.write_text(yaml.safe_dump(data))
    manifest = write_manifest(
        project,
        [
            {
                "initiative_id": "leaky",
                "cost_to_scale": 1.0,
                "measure_config": "measure/measure.yaml",
            }
        ],
    )
    with pytest.raises(ConfigError) as info:
        load_config(manifest)
    assert str(info.value) == (
        f"{config}: initiative 'leaky': DATA.SOURCE.CONFIG.scale_path: path "
        f"'../../elsewhere/data.csv' resolves to {outside / 'data.csv'}, outside the manifest "
        f"directory {project}; set 'allow_external_paths: true' in {manifest} to allow it"
    )
    # An absolute path is no way around it; the explicit option is.
    data["DATA"]["SOURCE"]["CONFIG"]["scale_path"] = str(outside / "data.csv")
    config.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="outside the manifest directory"):
        load_config(manifest)
    manifest.write_text(manifest.read_text() + "allow_external_paths: true\n")
    assert load_config(manifest).initiative_ids == ["leaky"]


def test_symlink_out_of_the_project_is_refused(tmp_path):
    outside = tmp_path / "secret.yaml"
    outside.write_text("{}")
    project = tmp_path / "project"
    manifest = write_manifest(
        project,
        [{"initiative_id": "a", "cost_to_scale": 1.0, "measure_config": "measure/link.yaml"}],
    )
    (project / "measure" / "link.yaml").symlink_to(outside)
    with pytest.raises(ConfigError, match=r"measure_config: path 'measure/link.yaml' resolves"):
        load_config(manifest)


@pytest.mark.parametrize("bad", ["../../etc/passwd", "a/b", ".hidden", "x" * 65, ""])
def test_a_partition_key_that_would_escape_the_store_is_refused(tmp_path, bad):
    manager = JsonIOManager(base_dir=str(tmp_path / "store"))
    with pytest.raises(ValueError, match="not a valid initiative id"):
        manager._path(tmp_path / "store", dg.AssetKey("evaluation"), bad)
    assert not (tmp_path / "store").exists()


# --------------------------------------------------------------------------- stage configs


def test_stage_config_naming_a_missing_class(tmp_path):
    manifest = write_manifest(tmp_path, measure={"component": "impact_assets.measure:NoSuchClass"})
    out = subprocess.run(
        [sys.executable, "-m", "impact_assets", "validate", str(manifest)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2
    line = out.stderr.strip()
    assert line.startswith(f"error: {tmp_path / 'stages' / 'measure.yaml'}: component:"), line
    assert "NoSuchClass" in line and "Traceback" not in out.stderr


def test_stage_config_naming_a_missing_module(tmp_path):
    manifest = write_manifest(tmp_path, allocate={"component": "no_such_package.solver:Rule"})
    with pytest.raises(ConfigError) as info:
        load_config(manifest).allocate.build()
    assert str(info.value).startswith(f"{tmp_path / 'stages' / 'allocate.yaml'}: component:")
    assert "no_such_package" in str(info.value)


# --------------------------------------------------------------------------- allocation


def run_pipeline(manifest: Path):
    defs = build_definitions(load_config(manifest))
    instance = dg.instance_for_test()
    inst = instance.__enter__()
    result = defs.resolve_job_def("impact_pipeline").execute_in_process(
        instance=inst, raise_on_error=False
    )
    storage = Path(inst.storage_directory()) / "impact_assets"
    return result, storage, instance


def read_all(storage: Path) -> dict[str, object]:
    """Every stored asset file; each must be complete, strict JSON."""
    files = sorted(storage.rglob("*.json"))
    assert files
    return {str(p.relative_to(storage)): json.loads(p.read_text()) for p in files}


@pytest.mark.parametrize(
    ("allocate", "budget", "status"),
    [
        ({"component": "MinimaxRegretAllocate", "min_portfolio_worst_return": None}, 1.0, None),
        ({"component": "MockAllocate"}, 1.0, None),
        (
            {"component": "MinimaxRegretAllocate", "min_portfolio_worst_return": 1e9},
            30.0,
            "infeasible",
        ),
    ],
    ids=["budget-below-every-cost-minimax", "budget-below-every-cost-greedy", "floor-unreachable"],
)
def test_allocations_that_fund_nothing_are_a_documented_empty_result(
    tmp_path, allocate, budget, status
):
    manifest = write_manifest(tmp_path, allocate=allocate, budget=budget)
    result, storage, instance = run_pipeline(manifest)
    try:
        assert result.success
        stored = read_all(storage)
        portfolio = stored["portfolio.json"]
        assert portfolio["selected_initiatives"] == [] and portfolio["budget_allocated"] == {}
        if status is not None:
            assert portfolio["status"] == status
            assert "min_portfolio_worst_return" in portfolio["detail"]["status_reason"]
        checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
        assert all(checks.values()), checks
        for key in ("init-1", "init-2", "init-3"):
            decision = stored[f"allocation/{key}.json"]
            assert decision["selected"] is False and decision["reason"]
            assert stored[f"scale_measurement/{key}.json"]["status"] == "not_selected"
            assert stored[f"outcome_report/{key}.json"]["status"] == "not_scaled"
        assert stored["portfolio_report.json"]["figures"]["n_selected"] == 0
    finally:
        instance.__exit__(None, None, None)


# --------------------------------------------------------------------------- one bad initiative


def test_initiatives_with_bad_data_are_named_and_the_rest_is_kept(tmp_path):
    """Real MEASURE: one data file is missing, another lacks a column, the third is fine."""
    project = tmp_path / "project"
    good = file_config(project / "good", panel())
    gone = file_config(project / "gone", None)
    bad = file_config(project / "bad", panel(drop="enriched"))
    manifest = write_manifest(
        project,
        [
            {
                "initiative_id": "good-1",
                "cost_to_scale": 5.0,
                "measure_config": "good/measure.yaml",
            },
            {
                "initiative_id": "gone-1",
                "cost_to_scale": 5.0,
                "measure_config": "gone/measure.yaml",
            },
            {"initiative_id": "bad-1", "cost_to_scale": 5.0, "measure_config": "bad/measure.yaml"},
        ],
        measure={"component": "Measure", "storage_url": str(tmp_path / "jobs")},
        evaluate={"component": "EvidenceEvaluate"},
    )
    result, storage, instance = run_pipeline(manifest)
    try:
        assert not result.success
        stored = read_all(storage)
        missing = stored["pilot_measurement/gone-1.json"]
        assert missing["status"] == "failed"
        assert (
            f"{gone}: initiative 'gone-1': DATA.SOURCE.CONFIG.path: Data file not found"
            in (missing["error"])
        )
        failed = stored["pilot_measurement/bad-1.json"]
        assert failed["status"] == "failed"
        assert str(bad) in failed["error"] and "'bad-1'" in failed["error"]
        assert "column 'enriched' not found" in failed["error"]
        assert stored["evaluation/gone-1.json"]["status"] == "failed"
        assert stored["pilot_measurement/good-1.json"]["status"] == "ok"
        assert stored["evaluation/good-1.json"]["status"] == "ok"
        assert "portfolio.json" not in stored  # refused, not allocated over a subset
        failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
        assert failure.step_key == "portfolio"
        message = failure.event_specific_data.error.message
        assert "evaluation failed for 2 initiative(s): gone-1:" in message and "bad-1:" in message
        # The good initiative's job directory is complete; the bad ones have none.
        assert (tmp_path / "jobs" / "good-1" / "pilot" / "manifest.json").exists()
        assert not (tmp_path / "jobs" / "bad-1" / "pilot").exists()
        assert not (tmp_path / "jobs" / "gone-1").exists()
        assert good.exists()
    finally:
        instance.__exit__(None, None, None)


# --------------------------------------------------------------------------- environment


@pytest.mark.parametrize(
    ("variable", "raw", "message"),
    [
        ("IMPACT_BACKFILL_BATCH_SIZE", "ten", "must be a whole number, got 'ten'"),
        ("IMPACT_BACKFILL_BATCH_SIZE", "-1", "must be >= 0, got '-1'"),
        ("IMPACT_WORKER_NICE", "20", "must be a whole number from 0 to 19, got '20'"),
    ],
)
def test_a_bad_environment_setting_is_one_clear_line(tmp_path, variable, raw, message):
    manifest = write_manifest(
        tmp_path,
        measure={"component": "tests.support:FakeMeasure"},
        evaluate={"component": "tests.support:FakeEvaluate"},
    )
    out = subprocess.run(
        [sys.executable, "-m", "impact_assets", "validate"],
        cwd=ROOT,
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "IMPACT_MANIFEST": str(manifest),
            variable: raw,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2
    assert out.stderr == f"error: {variable} {message}\n"
