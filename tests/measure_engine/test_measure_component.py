"""The Measure component: job directories, phases, sample size, determinism, threads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest
import yaml

from impact_assets.contracts import MeasureResult
from impact_assets.measure.component import Measure, MeasureError
from impact_assets.registry import build_component
from tests.measure_engine.measure_support import (
    DEMO_INITIATIVES,
    REFERENCE_CONFIGS,
    real_models_available,
    write_config,
    write_panel_file,
)

REPO = Path(__file__).resolve().parents[2]


def _event(config: Path, initiative="init-1", **kw):
    return {"initiative_id": initiative, "measure_config": str(config), **kw}


def _read(path: Path) -> dict:
    return json.loads(path.read_text())


def test_registered_and_returns_a_valid_result(tmp_path):
    measure = build_component("Measure", {"storage_url": str(tmp_path / "store")})
    assert isinstance(measure, Measure)
    config = write_config(tmp_path)
    result = measure.execute(_event(config))
    MeasureResult.from_dict(result)
    assert result["phase"] == "pilot"
    assert result["sample_size"] == 60
    assert result["model_type"] == "experiment"
    assert result["true_effect"] is not None and result["true_effect"] > 0
    assert result["diagnostics"]["n_observations"] == 60 * 14
    assert result["diagnostics"]["sample_size_unit"] == "products"
    job = Path(result["job_dir"])
    assert job == tmp_path / "store" / "init-1" / "pilot"
    manifest = _read(job / "manifest.json")
    assert set(manifest["files"]) == {
        "config",
        "products",
        "business_metrics",
        "transformed_metrics",
        "experiment__groups",
        "impact_results",
        "measure_result",
    }
    for entry in manifest["files"].values():
        assert (job / entry["path"]).is_file()
    # passthrough: the transformed data are the business metrics, stored once
    assert manifest["files"]["transformed_metrics"]["path"] == "business_metrics.parquet"
    assert manifest["initiative_id"] == "init-1" and manifest["phase"] == "pilot"
    envelope = _read(job / "impact_results.json")
    assert envelope["schema_version"] == "2.0"
    assert set(envelope["data"]) == {"model_params", "impact_estimates", "model_summary"}
    assert envelope["data"]["impact_estimates"]["nan_example"] is None  # strict JSON
    written = _read(job / "measure_result.json")
    assert written == {k: v for k, v in result.items() if k != "job_dir"}
    business = pd.read_parquet(job / "business_metrics.parquet")
    assert {"revenue_y0", "revenue_y1", "enriched"} <= set(business.columns)
    assert sorted(p.name for p in job.parent.iterdir()) == ["pilot"]  # no temp dirs left


def test_pilot_and_scale_write_separate_directories(tmp_path):
    measure = Measure(storage_url=str(tmp_path / "store"))
    config = write_config(tmp_path)
    pilot = measure.execute(_event(config))
    pilot_bytes = (Path(pilot["job_dir"]) / "measure_result.json").read_bytes()
    scale = measure.execute(_event(config, phase="scale", sample_size=250))
    assert scale["phase"] == "scale" and scale["sample_size"] == 250
    assert Path(scale["job_dir"]) == tmp_path / "store" / "init-1" / "scale"
    assert Path(pilot["job_dir"]) != Path(scale["job_dir"])
    # the pilot's files are untouched by the scale run
    assert (Path(pilot["job_dir"]) / "measure_result.json").read_bytes() == pilot_bytes
    products = pd.read_parquet(Path(scale["job_dir"]) / "products.parquet")
    assert len(products) == 250 and products["product_id"].is_unique
    business = pd.read_parquet(Path(scale["job_dir"]) / "business_metrics.parquet")
    assert business["product_id"].nunique() == 250
    assert business.groupby("product_id")["enriched"].first().sum() == 125  # same fraction
    pilot_ids = set(pd.read_parquet(Path(pilot["job_dir"]) / "products.parquet")["product_id"])
    assert not pilot_ids & set(products["product_id"])  # a new catalog
    assert _read(Path(scale["job_dir"]) / "manifest.json")["source"]["seed"] != 7


def test_pilot_sample_size_overrides_n_products(tmp_path):
    measure = Measure(storage_url=str(tmp_path / "store"))
    result = measure.execute(_event(write_config(tmp_path), sample_size=45))
    assert result["sample_size"] == 45


def test_sample_size_below_the_contract_minimum_fails_early(tmp_path):
    measure = Measure(storage_url=str(tmp_path / "store"))
    with pytest.raises(ValueError, match="sample_size"):
        measure.execute(_event(write_config(tmp_path), phase="scale", sample_size=10))
    with pytest.raises(ValueError, match="sample_size"):
        measure.execute(_event(write_config(tmp_path), phase="scale", sample_size=True))


def test_products_file_is_used_when_present(tmp_path):
    products = pd.DataFrame(
        {
            "product_id": [f"P{k:02d}" for k in range(35)],
            "category": "Books",
            "price": [10.0 + k for k in range(35)],
        }
    )
    (tmp_path / "data").mkdir()
    products.to_csv(tmp_path / "data" / "products.csv", index=False)
    config = write_config(
        tmp_path, override={"DATA": {"SOURCE": {"CONFIG": {"path": "data/products.csv"}}}}
    )
    measure = Measure(storage_url=str(tmp_path / "store"))
    result = measure.execute(_event(config))
    assert result["sample_size"] == 35
    stored = pd.read_parquet(Path(result["job_dir"]) / "products.parquet")
    assert stored["product_id"].tolist() == products["product_id"].tolist()


def test_rerun_replaces_the_directory(tmp_path):
    measure = Measure(storage_url=str(tmp_path / "store"))
    config = write_config(tmp_path)
    first = Path(measure.execute(_event(config))["job_dir"])
    (first / "stale__artifact.parquet").write_bytes(b"old")
    second = Path(measure.execute(_event(config))["job_dir"])
    assert first == second
    assert not (second / "stale__artifact.parquet").exists()
    assert sorted(p.name for p in second.parent.iterdir()) == ["pilot"]


def test_failed_run_keeps_the_previous_result(tmp_path, monkeypatch):
    measure = Measure(storage_url=str(tmp_path / "store"))
    config = write_config(tmp_path)
    job = Path(measure.execute(_event(config))["job_dir"])
    before = {p.name: p.read_bytes() for p in job.iterdir()}

    from impact_assets.measure import jobdir

    def boom(self, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(jobdir.JobDir, "write_json", boom)
    with pytest.raises(OSError, match="disk full"):
        measure.execute(_event(config))
    assert {p.name: p.read_bytes() for p in job.iterdir()} == before
    assert sorted(p.name for p in job.parent.iterdir()) == ["pilot"]  # temp dir removed


def test_model_failure_names_the_initiative(tmp_path):
    config = write_config(
        tmp_path, override={"MEASUREMENT": {"PARAMS": {"dependent_variable": "nope"}}}
    )
    with pytest.raises(MeasureError, match="init-1"):
        Measure(storage_url=str(tmp_path / "store")).execute(_event(config))
    assert not (tmp_path / "store" / "init-1" / "pilot").exists()


@pytest.mark.parametrize("bad", ["../escape", "a/b", "", ".hidden", "x" * 65, None, 3])
def test_invalid_initiative_id_is_rejected_before_the_file_system(tmp_path, bad):
    store = tmp_path / "store"
    with pytest.raises(ValueError, match="initiative_id"):
        Measure(storage_url=str(store)).execute(_event(write_config(tmp_path), initiative=bad))
    assert list(store.iterdir()) == []


def test_event_validation(tmp_path):
    measure = Measure(storage_url=str(tmp_path / "store"))
    config = write_config(tmp_path)
    with pytest.raises(ValueError, match="phase"):
        measure.execute(_event(config, phase="rollout"))
    with pytest.raises(ValueError, match="measure_config"):
        measure.execute({"initiative_id": "init-1"})
    with pytest.raises(ValueError, match="local directory"):
        Measure(storage_url="s3://bucket/prefix")


def test_relative_storage_url_is_relative_to_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    measure = Measure(storage_url="rel/store")
    assert (tmp_path / "rel" / "store").is_dir()
    assert measure.params() == {"storage_url": "rel/store"}
    result = measure.execute(_event(write_config(tmp_path / "cfg")))
    assert Path(result["job_dir"]) == tmp_path / "rel" / "store" / "init-1" / "pilot"


def test_file_source_pilot_and_scale(tmp_path):
    write_panel_file(tmp_path / "data" / "pilot.csv", n_products=40, n_days=5, seed=1)
    write_panel_file(tmp_path / "data" / "scale.csv", n_products=120, n_days=5, seed=2)
    config = write_config(
        tmp_path,
        override={
            "DATA": {
                "SOURCE": {
                    "type": "file",
                    "CONFIG": {
                        "path": "data/pilot.csv",
                        "scale_path": "data/scale.csv",
                        "product_id_column": "sku",
                        "date_column": "day",
                        "start_date": None,
                        "end_date": None,
                    },
                },
                "ENRICHMENT": None,
            }
        },
    )
    measure = Measure(storage_url=str(tmp_path / "store"))
    pilot = measure.execute(_event(config))
    scale = measure.execute(_event(config, phase="scale", sample_size=5000))
    assert pilot["sample_size"] == 40 and scale["sample_size"] == 120
    assert pilot["true_effect"] is None
    assert pilot["effect_estimate"] == pytest.approx(5.0, abs=4.0)
    assert "products" not in _read(Path(pilot["job_dir"]) / "manifest.json")["files"]


def test_threads_give_the_same_results_as_sequential_runs(tmp_path):
    configs = {
        f"init-{k}": write_config(
            tmp_path / f"c{k}",
            override={"DATA": {"SOURCE": {"CONFIG": {"seed": 100 + k}}}},
        )
        for k in range(6)
    }
    sequential = Measure(storage_url=str(tmp_path / "seq"))
    expected = {i: sequential.execute(_event(c, initiative=i)) for i, c in configs.items()}
    threaded = Measure(storage_url=str(tmp_path / "thr"))
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {
            i: pool.submit(threaded.execute, _event(c, initiative=i)) for i, c in configs.items()
        }
        got = {i: f.result() for i, f in futures.items()}
    for initiative, result in got.items():
        strip = lambda r: {k: v for k, v in r.items() if k != "job_dir"}  # noqa: E731
        assert strip(result) == strip(expected[initiative])


def test_pilot_run_is_fast(tmp_path):
    config = write_config(
        tmp_path,
        override={
            "DATA": {
                "SOURCE": {
                    "CONFIG": {
                        "n_products": 100,
                        "start_date": "2024-10-01",
                        "end_date": "2024-12-31",
                    }
                }
            }
        },
    )
    measure = Measure(storage_url=str(tmp_path / "store"))
    measure.execute(_event(config))  # warm up imports
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        measure.execute(_event(config))
        best = min(best, time.perf_counter() - started)
    assert best < 0.25, best


# --------------------------------------------------------------------------- determinism

_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from tests.measure_engine.measure_support import register_test_model
    from impact_assets.measure.component import Measure
    register_test_model()
    store, jobs = sys.argv[1], json.loads(sys.argv[2])
    measure = Measure(storage_url=store)
    for initiative, config, phase, size in jobs:
        event = {"initiative_id": initiative, "measure_config": config, "phase": phase}
        if size:
            event["sample_size"] = size
        measure.execute(event)
    """
)


def _run_process(store: Path, jobs: list, hash_seed: str) -> None:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(REPO)}
    subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(store), json.dumps(jobs)],
        check=True,
        cwd=str(REPO),
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_whole_measurement_is_deterministic_across_processes(tmp_path):
    jobs = [
        ["init-1", str(write_config(tmp_path)), "pilot", None],
        ["init-1", str(write_config(tmp_path)), "scale", 300],
    ]
    real = [
        name
        for name in ("product-desc-enhancement", "pricing-display-test", "search-relevance-tuning")
        if real_models_available(
            "experiment", "interrupted_time_series", "nearest_neighbour_matching"
        )
    ]
    jobs += [[name, str(REFERENCE_CONFIGS / f"{name}.yaml"), "pilot", None] for name in real]
    _run_process(tmp_path / "a", jobs, "1")
    _run_process(tmp_path / "b", jobs, "2")
    compared = 0
    for initiative, _, phase, _ in jobs:
        a, b = tmp_path / "a" / initiative / phase, tmp_path / "b" / initiative / phase
        assert (a / "measure_result.json").read_bytes() == (b / "measure_result.json").read_bytes()
        envelopes = [_read(d / "impact_results.json") for d in (a, b)]
        for envelope in envelopes:
            envelope["metadata"].pop("executed_at")
        assert envelopes[0] == envelopes[1]
        assert (a / "config.yaml").read_bytes() == (b / "config.yaml").read_bytes()
        files = _read(a / "manifest.json")["files"]
        assert files == _read(b / "manifest.json")["files"]
        for name in ("business_metrics", "transformed_metrics"):
            path = files[name]["path"]
            pd.testing.assert_frame_equal(pd.read_parquet(a / path), pd.read_parquet(b / path))
        compared += 1
    assert compared == len(jobs)


# --------------------------------------------------------------------------- the demo configs


@pytest.mark.skipif(
    not real_models_available(
        "experiment",
        "interrupted_time_series",
        "synthetic_control",
        "nearest_neighbour_matching",
        "subclassification",
    ),
    reason="the six models are not registered yet",
)
@pytest.mark.parametrize("initiative", DEMO_INITIATIVES)
def test_upstream_demo_configs_run_end_to_end(tmp_path, initiative):
    measure = Measure(storage_url=str(tmp_path / "store"))
    config = REFERENCE_CONFIGS / f"{initiative}.yaml"
    pilot = measure.execute(_event(config, initiative=initiative))
    scale = measure.execute(_event(config, initiative=initiative, phase="scale", sample_size=400))
    for result in (pilot, scale):
        MeasureResult.from_dict(result)
        assert result["true_effect"] is not None and result["true_effect"] > 0  # a real effect
        if result["ci_lower"] is not None:
            assert result["ci_lower"] <= result["effect_estimate"] <= result["ci_upper"]
    # the scale phase really scales: a catalog of 400 products instead of the pilot's 100
    for result, n_products in ((pilot, 100), (scale, 400)):
        manifest = json.loads((Path(result["job_dir"]) / "manifest.json").read_text())
        assert manifest["source"]["n_products"] == n_products
    if pilot["model_type"] == "interrupted_time_series":  # sample_size counts dates
        assert pilot["sample_size"] == scale["sample_size"] == 92
    else:
        assert pilot["sample_size"] == 100 and scale["sample_size"] == 400


def test_an_already_parsed_config_is_used_while_the_file_is_unchanged(tmp_path, monkeypatch):
    """``measure_config_parsed`` (from the manifest loader) spares MEASURE a parse while the
    file's stat matches; a changed file is read again. Results are those of reading the file."""
    import impact_assets.measure.component as component_module

    config = write_config(tmp_path)
    reference = Measure(storage_url=str(tmp_path / "reference")).execute(_event(config))
    reads = []
    read_config_file = component_module.read_config_file
    monkeypatch.setattr(
        component_module,
        "read_config_file",
        lambda *args: reads.append(args) or read_config_file(*args),
    )
    stat = config.stat()
    parsed = ((stat.st_mtime_ns, stat.st_size), yaml.safe_load(config.read_text()))
    measure = Measure(storage_url=str(tmp_path / "store"))
    first = measure.execute(_event(config, measure_config_parsed=parsed))
    assert reads == []
    assert {**first, "job_dir": None} == {**reference, "job_dir": None}
    assert parsed[1] == yaml.safe_load(config.read_text())  # the event's mapping is not changed

    changed = yaml.safe_load(config.read_text())
    changed["DATA"]["SOURCE"]["CONFIG"]["seed"] = 99
    config.write_text(yaml.safe_dump(changed, sort_keys=False))
    second = measure.execute(_event(config, measure_config_parsed=parsed))
    assert len(reads) == 1
    fresh = Measure(storage_url=str(tmp_path / "fresh")).execute(_event(config))
    assert {**second, "job_dir": None} == {**fresh, "job_dir": None}
    assert second["effect_estimate"] != first["effect_estimate"]
