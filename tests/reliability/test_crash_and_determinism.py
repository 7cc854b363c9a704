"""Crash safety and determinism of the whole pipeline, real components, separate processes.

* Two undisturbed runs (each its own ``dagster job execute`` process, instance and job-directory
  store) store byte-identical values for every asset, once run ids, storage ids and timestamps
  (``lineage``) and the job-directory path are left out.
* A run killed with SIGKILL in the middle of the measure stage leaves no corrupted file: every
  stored JSON parses, every job directory that exists is complete; re-running completes and
  gives the same values as an undisturbed run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from impact_assets.assets.storage import canonical_json
from impact_assets.synthetic_portfolio import write_portfolio

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
IDS = ["exp-0001", "sc-0002", "nnm-0003", "its-0004"]
HOLD = "nnm-0003"


def project(root: Path) -> Path:
    """Four initiatives, four methods, tiny data; MEASURE is the real engine (``SlowMeasure``)."""
    path = write_portfolio(root, len(IDS), n_products=40, scale_sample_size=60, seed=5)
    (root / "stages" / "measure.yaml").write_text(
        yaml.safe_dump({"component": "tests.reliability.slow_measure:SlowMeasure"})
    )
    return path


def environment(home: Path, manifest: Path, **extra: str) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMPACT_TEST_")}
    return {
        **env,
        "DAGSTER_HOME": str(home),
        "IMPACT_MANIFEST": str(manifest),
        "PYTHONPATH": str(ROOT),
        **extra,
    }


COMMAND = [str(BIN / "dagster"), "job", "execute", "-m", "impact_assets.definitions"]
COMMAND += ["-j", "impact_pipeline"]


def run_pipeline(workdir: Path, env: dict[str, str]) -> None:
    """One whole run; the measure stage writes job directories under ``workdir/data/measure``."""
    out = subprocess.run(COMMAND, cwd=workdir, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]


def _without_run_details(value):
    if isinstance(value, dict):
        return {
            k: _without_run_details(v) for k, v in value.items() if k not in ("lineage", "job_dir")
        }
    if isinstance(value, list):
        return [_without_run_details(v) for v in value]
    return value


def stored_values(home: Path) -> dict[str, str]:
    """Every stored asset file as canonical JSON text, without run-specific details."""
    storage = home / "storage" / "impact_assets"
    files = sorted(p for p in storage.rglob("*.json") if "exports" not in p.parts)
    return {
        str(p.relative_to(storage)): canonical_json(
            _without_run_details(json.loads(p.read_text(encoding="utf-8")))
        )
        for p in files
    }


def assert_store_intact(home: Path, jobs: Path) -> None:
    """No half-written file: every JSON parses; every job directory is complete."""
    for path in (home / "storage").rglob("*.json"):
        json.loads(path.read_text(encoding="utf-8"))
    for job in jobs.glob("*/*"):
        if job.name.startswith("."):
            continue  # a temp directory of the killed run: never read as a result
        manifest = json.loads((job / "manifest.json").read_text(encoding="utf-8"))
        for entry in manifest["files"].values():
            assert (job / entry["path"]).is_file(), (job, entry)


def test_two_full_runs_in_separate_processes_are_identical(tmp_path):
    manifest = project(tmp_path / "project")
    values = []
    for name in ("a", "b"):
        workdir = tmp_path / name
        workdir.mkdir()
        run_pipeline(workdir, environment(workdir / "home", manifest))
        values.append(stored_values(workdir / "home"))
    first, second = values
    assert len(first) == 5 * len(IDS) + 2
    assert first == second


def test_sigkill_in_the_measure_stage_then_rerun_completes_identically(tmp_path):
    manifest = project(tmp_path / "project")
    reference = tmp_path / "reference"
    reference.mkdir()
    run_pipeline(reference, environment(reference / "home", manifest))

    crashed = tmp_path / "crashed"
    crashed.mkdir()
    marker = tmp_path / "holding"
    env = environment(
        crashed / "home", manifest, IMPACT_TEST_HOLD=HOLD, IMPACT_TEST_MARKER=str(marker)
    )
    with (tmp_path / "killed.log").open("w") as log:
        proc = subprocess.Popen(
            COMMAND,
            cwd=crashed,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 300
        jobs = crashed / "data" / "measure"
        # Wait until the measure stage is under way: the held initiative waits, and at least
        # one other initiative's job directory has been written.
        while time.monotonic() < deadline and proc.poll() is None:
            if marker.exists() and list(jobs.glob("*/pilot/manifest.json")):
                break
            time.sleep(0.2)
        assert proc.poll() is None, (tmp_path / "killed.log").read_text()[-3000:]
        assert marker.exists(), "the run never reached the measure stage"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert_store_intact(crashed / "home", jobs)
    # Killed before the stage ended: nothing of pilot_measurement was stored.
    assert not (crashed / "home" / "storage" / "impact_assets" / "pilot_measurement").exists()

    run_pipeline(crashed, environment(crashed / "home", manifest))
    assert_store_intact(crashed / "home", jobs)
    assert stored_values(crashed / "home") == stored_values(reference / "home")
