"""Every command in README.md is run here (extracted from the README, not copied), so the README
cannot rot. README command 2 (the test suite) is what CI runs; this checks that .ci/run calls it
verbatim rather than running the suite inside itself."""

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import requests
import yaml

from tests.pipeline_assets.test_cli import new_instance_home

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
BIN = Path(sys.executable).parent


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def commands(block: str) -> list[str]:
    return [
        line.split("  #")[0].strip()
        for line in block.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def section(title: str) -> str:
    return README.split(f"## {title}")[1].split("\n## ")[0]


def env_with_home(home: Path) -> dict[str, str]:
    new_instance_home(home)
    env = {k: v for k, v in os.environ.items() if k != "IMPACT_MANIFEST"}
    return {**env, "DAGSTER_HOME": str(home)}


def test_readme_starts_with_the_two_commands_and_ci_runs_the_second():
    first = README.split("```")[1]
    assert first.startswith("sh\n")
    assert commands(first[3:]) == ["sh scripts/demo.sh", "sh scripts/test.sh"]
    assert README.index("```sh") < README.index("## ")
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert ci[-1] == "sh scripts/test.sh"


def test_command_1_runs_the_demo_pipeline(tmp_path):
    home = tmp_path / "home"
    out = subprocess.run(
        ["sh", "-c", commands(blocks("sh")[0])[0]],
        cwd=ROOT,
        env=env_with_home(home),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    with dg.DagsterInstance.from_config(str(home)) as instance:
        runs = instance.get_runs()
        assert len(runs) == 1 and runs[0].is_success
        assert instance.get_latest_materialization_event(dg.AssetKey("portfolio_report"))


def test_shell_section_runs_as_written(tmp_path):
    home = tmp_path / "home"
    script = next(b for b in blocks("sh") if "reallocate" in b)
    assert "export DAGSTER_HOME=$PWD/.dagster" in script
    script = script.replace("export DAGSTER_HOME=$PWD/.dagster", f"export DAGSTER_HOME={home}")
    out = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=ROOT,
        env=env_with_home(home),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    with dg.DagsterInstance.from_config(str(home)) as instance:
        jobs = [run.job_name for run in reversed(instance.get_runs())]
        assert jobs[0] == "impact_pipeline" and jobs[-1] == "reallocate" and len(jobs) == 3
        assert all(run.is_success for run in instance.get_runs())


def test_open_the_ui_command_serves_the_code_location(tmp_path):
    line = next(c for c in commands(section("Open the UI")) if "dagster dev" in c)
    assert "-h 127.0.0.1" in line
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    line = line.replace("$PWD/.dagster", str(tmp_path / "home")).replace("-p 3000", f"-p {port}")
    proc = subprocess.Popen(
        ["bash", "-c", f"exec env {line}"],
        cwd=ROOT,
        env=env_with_home(tmp_path / "home"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        body = None
        while time.monotonic() < deadline and body is None:
            try:
                response = requests.post(
                    f"http://127.0.0.1:{port}/graphql",
                    json={"query": "{ assetNodes { assetKey { path } } }"},
                    timeout=5,
                )
                if response.ok and "assetNodes" in response.text:
                    body = response.json()
            except requests.RequestException:
                time.sleep(1)
        assert body is not None, "dagster dev did not serve the code location"
        names = {node["assetKey"]["path"][0] for node in body["data"]["assetNodes"]}
        assert {"pilot_measurement", "portfolio", "outcome_report", "portfolio_report"} <= names
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def test_run_config_override_block_is_valid_for_the_pipeline_job():
    from impact_assets.definitions import defs

    run_config = yaml.safe_load(blocks("yaml")[0])
    # a live instance while Dagster resolves the job: it reads the current instance's
    # definitions state, which an earlier test in this worker may have left behind
    with dg.instance_for_test():
        job = defs.resolve_job_def("impact_pipeline")
        assert dg.validate_run_config(job, run_config)
    assert run_config["resources"]["allocate"]["config"]["component"] == "MockAllocate"


def test_python_block_runs(tmp_path):
    code = blocks("python")[0]
    out = subprocess.run(
        [sys.executable, "-c", code + "\nprint(len(result['outcome_reports']))"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert int(out.stdout.strip().splitlines()[-1]) >= 1


def test_add_an_initiative_block_adds_a_partition(tmp_path):
    import shutil

    from impact_assets.assets.code_location import build_definitions
    from impact_assets.config import load_config

    block = next(b for b in blocks("yaml") if "initiative_id:" in b)
    project = tmp_path / "configs"
    shutil.copytree(ROOT / "configs", project, ignore=shutil.ignore_patterns("examples"))
    shutil.copy(
        project / "initiatives" / "search-relevance-tuning.yaml",
        project / "initiatives" / "free-shipping-threshold.yaml",
    )
    manifest = project / "pipeline.yaml"
    manifest.write_text(manifest.read_text().rstrip("\n") + "\n" + block)
    config = load_config(manifest)
    assert config.initiative_ids[-1] == "free-shipping-threshold"
    assert config.initiative("free-shipping-threshold").value_per_unit == 1500
    defs = build_definitions(config)
    with dg.instance_for_test():  # as above: a live instance while Dagster resolves the job
        keys = defs.resolve_job_def("impact_pipeline").partitions_def.get_partition_keys()
    assert "free-shipping-threshold" in keys and len(keys) == 6


def test_use_your_own_data_block_runs_on_files(tmp_path):
    import numpy as np
    import pandas as pd

    from impact_assets.measure.component import Measure

    block = next(b for b in blocks("yaml") if "type: file" in b)
    config = tmp_path / "initiative.yaml"
    config.write_text(block)
    rng = np.random.default_rng(3)
    (tmp_path / "data").mkdir()
    for name, n in (("pilot", 120), ("scale", 400)):
        price = rng.uniform(5, 50, n)
        enriched = rng.random(n) < 1 / (1 + np.exp(-(price - 25) / 10))
        revenue = 20 + 2 * price + 8 * enriched + rng.normal(0, 4, n)
        pd.DataFrame(
            {
                "product_id": [f"p{i}" for i in range(n)],
                "date": "2024-01-08",
                "revenue": revenue,
                "enriched": enriched,
                "price": price,
            }
        ).to_csv(tmp_path / "data" / f"{name}.csv", index=False)
    measure = Measure(storage_url=str(tmp_path / "store"))
    pilot = measure.execute({"initiative_id": "own-data", "measure_config": str(config)})
    scale = measure.execute(
        {
            "initiative_id": "own-data",
            "measure_config": str(config),
            "phase": "scale",
            "sample_size": 400,
        }
    )
    assert pilot["sample_size"] == 120 and scale["sample_size"] == 400
    assert pilot["true_effect"] is None and scale["true_effect"] is None
    # one draw: a 95% CI misses the truth one time in twenty, so check within 3 SE instead
    assert scale["ci_lower"] < scale["effect_estimate"] < scale["ci_upper"]
    assert abs(scale["effect_estimate"] - 8) < 3 * scale["standard_error"]
