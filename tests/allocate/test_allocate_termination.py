"""A run stuck in ALLOCATE stops within 5 s of Ctrl-C, SIGTERM or Terminate in the UI, and
leaves nothing behind.

Each test starts the slow instance of :mod:`tests.allocate.slow_portfolio` (no time limit) in
its own process group, waits (generously: the host may be loaded) until HiGHS runs in its child
process, the state in which a solve ignores signals, sends the signal and measures from there.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from tests.allocate.slow_portfolio import slow_manifest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

#: The requirement: the run has stopped this many seconds after the signal.
STOP_SECONDS = 5.0

#: How long the run may take to reach the HiGHS child (MEASURE, EVALUATE, V*, a loaded host).
START_SECONDS = 240.0

DIRECT = """
from impact_assets.allocate.minimax import MinimaxRegretAllocate
from tests.allocate.slow_portfolio import slow_event
MinimaxRegretAllocate(min_portfolio_worst_return=None, time_limit=None).execute(slow_event())
print("FINISHED")
"""

ORCHESTRATOR = """
import sys
from impact_assets.orchestrator import Orchestrator
Orchestrator.from_config(sys.argv[1]).run()
print("FINISHED")
"""


def _group_processes(pgid: int) -> dict[int, str]:
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            found[int(entry.name)] = cmdline
    return found


def _highs_children(pgid: int) -> list[int]:
    return [pid for pid, cmd in _group_processes(pgid).items() if "highs_run.py" in cmd]


def _interrupt_when_stuck(cmd, env, sig, tmp_path):
    """Start ``cmd``, wait until HiGHS runs in a child, send ``sig``; return (seconds, output)."""
    log = (tmp_path / "run.log").open("w+")
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        waited = time.monotonic()
        while not _highs_children(proc.pid):
            if proc.poll() is not None:
                log.seek(0)
                pytest.fail(f"the run ended before HiGHS was stuck: {log.read()[-3000:]}")
            if time.monotonic() - waited > START_SECONDS:
                pytest.fail(f"HiGHS did not start within {START_SECONDS} s")
            time.sleep(0.2)
        time.sleep(1.0)  # well inside the solve
        sent = time.monotonic()
        os.kill(proc.pid, sig)
        try:
            proc.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running {STOP_SECONDS} s after {signal.Signals(sig).name}")
        stopped = time.monotonic() - sent
        # The solver child is gone too (killed before the exception propagated).
        assert _highs_children(proc.pid) == []
        log.seek(0)
        return stopped, log.read()
    finally:
        for pid in _group_processes(proc.pid):
            os.kill(pid, signal.SIGKILL)
        proc.wait()
        log.close()


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    return {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp), **extra}


def test_ctrl_c_stops_a_direct_allocate_call(tmp_path):
    env = _env(tmp_path)
    stopped, output = _interrupt_when_stuck(
        [sys.executable, "-c", DIRECT], env, signal.SIGINT, tmp_path
    )
    assert stopped <= STOP_SECONDS
    assert "KeyboardInterrupt" in output and "FINISHED" not in output
    assert list((tmp_path / "tmp").iterdir()) == []  # the solver's temporary files are gone


def test_ctrl_c_stops_the_orchestrator(tmp_path):
    manifest = slow_manifest(tmp_path / "project")
    env = _env(tmp_path)
    stopped, output = _interrupt_when_stuck(
        [sys.executable, "-c", ORCHESTRATOR, str(manifest)], env, signal.SIGINT, tmp_path
    )
    assert stopped <= STOP_SECONDS
    assert "KeyboardInterrupt" in output and "FINISHED" not in output
    assert list((tmp_path / "tmp").iterdir()) == []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "ctrl-c"])
def test_dagster_job_execute_stops_and_writes_no_portfolio(tmp_path, sig):
    manifest = slow_manifest(tmp_path / "project")
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    dg.DagsterInstance.from_config(str(home)).dispose()
    env = _env(tmp_path, DAGSTER_HOME=str(home), IMPACT_MANIFEST=str(manifest))
    cmd = [
        str(BIN / "dagster"),
        *("job", "execute", "-m", "impact_assets.definitions", "-j", "impact_pipeline"),
    ]
    stopped, output = _interrupt_when_stuck(cmd, env, sig, tmp_path)
    assert stopped <= STOP_SECONDS
    assert "RUN_SUCCESS" not in output
    with dg.DagsterInstance.from_config(str(home)) as instance:
        (run,) = instance.get_runs()
        assert not run.is_success
        assert instance.get_latest_materialization_event(dg.AssetKey("portfolio")) is None
        storage = Path(instance.storage_directory())
    # Nothing half-written: no portfolio file, no temporary file, none of the solver's files.
    assert not list(storage.rglob("portfolio*"))
    assert not [p for p in storage.rglob("*") if ".tmp" in p.name or p.name.endswith(".part")]
    assert list((tmp_path / "tmp").iterdir()) == []


def test_a_time_limited_portfolio_warns_and_the_run_goes_on(tmp_path):
    # The slow instance with a 2 s limit: status time_limit, a small certified gap, the
    # portfolio_solver_status check warns (does not block), and the report shows the gap.
    from impact_assets.assets.code_location import build_definitions
    from impact_assets.config import load_config

    manifest = slow_manifest(tmp_path / "project", time_limit=2.0)
    defs = build_definitions(load_config(manifest))
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def("impact_pipeline").execute_in_process(
            instance=instance, raise_on_error=False
        )
        assert result.success
        (check,) = [
            c
            for c in result.get_asset_check_evaluations()
            if c.check_name == "portfolio_solver_status"
        ]
        assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
        assert check.description.startswith("time_limit: certified relative gap ")
        storage = Path(instance.storage_directory()) / "impact_assets"
        portfolio = json.loads((storage / "portfolio.json").read_text())
        gap = portfolio["detail"]["solver"]["certified_gap_relative"]
        assert portfolio["status"] == "time_limit" and 0 <= gap <= 1e-2
        report = json.loads((storage / "portfolio_report.json").read_text())
        assert report["figures"]["allocation_certified_gap"] == gap


def test_terminate_in_the_ui_stops_the_run(tmp_path):
    # As in the UI of ``dagster dev``: Launch queues the run through the webserver (on
    # 127.0.0.1), the daemon starts it in its code server's run worker, and Terminate sends the
    # ``terminateRun`` mutation with the UI's default policy (SAFE_TERMINATE): the run launcher
    # asks that code server to interrupt the run worker, which is waiting for HiGHS.
    from dagster_graphql import DagsterGraphQLClient

    from tests.pipeline_assets.test_webserver import free_port, start, stop, wait_for

    manifest = slow_manifest(tmp_path / "project")
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    dg.DagsterInstance.from_config(str(home)).dispose()
    env = _env(tmp_path, DAGSTER_HOME=str(home), IMPACT_MANIFEST=str(manifest))
    port = free_port()
    web = start(
        [
            str(BIN / "dagster-webserver"),
            *("-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)),
        ],
        env,
        tmp_path / "webserver.log",
    )
    daemon = start(
        [str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"], env, tmp_path / "daemon.log"
    )

    def highs():
        return _highs_children(web.pid) + _highs_children(daemon.pid)

    try:
        client = DagsterGraphQLClient("127.0.0.1", port_number=port, timeout=60)

        def launched():
            try:
                return client.submit_job_execution("impact_pipeline")
            except Exception:  # the webserver or its code location is not up yet
                if web.poll() is not None:
                    pytest.fail((tmp_path / "webserver.log").read_text()[-3000:])
                return None

        run_id = wait_for(launched, START_SECONDS, "the webserver to launch the run")
        waited = time.monotonic()
        while not highs():
            status = client.get_run_status(run_id).value
            if status in ("SUCCESS", "FAILURE", "CANCELED"):
                pytest.fail(f"the run ended ({status}) before HiGHS was stuck")
            if time.monotonic() - waited > START_SECONDS:
                pytest.fail(f"HiGHS did not start within {START_SECONDS} s")
            time.sleep(0.2)
        time.sleep(1.0)  # well inside the solve
        sent = time.monotonic()
        client.terminate_run(run_id)
        while (status := client.get_run_status(run_id).value) not in (
            "SUCCESS",
            "FAILURE",
            "CANCELED",
        ):
            if time.monotonic() - sent > STOP_SECONDS:
                pytest.fail(f"still {status} {STOP_SECONDS} s after Terminate")
            time.sleep(0.1)
        stopped = time.monotonic() - sent
        highs_left = highs()
        print(f"Terminate: run {status} after {stopped:.2f} s")
    finally:
        stop(daemon)
        stop(web)
    assert status == "CANCELED" and stopped <= STOP_SECONDS
    assert highs_left == []
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert instance.get_latest_materialization_event(dg.AssetKey("portfolio")) is None
        # The interrupt reached the step waiting for HiGHS (not a worker killed from outside).
        failed = [
            (e.step_key, e.dagster_event.step_failure_data.error.cls_name)
            for e in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
        ]
        assert failed == [("portfolio", "DagsterExecutionInterruptedError")]
        storage = Path(instance.storage_directory())
    # Nothing half-written: no portfolio file, no temporary file, none of the solver's files.
    assert not list(storage.rglob("portfolio*"))
    assert not [p for p in storage.rglob("*") if ".tmp" in p.name or p.name.endswith(".part")]
    assert list((tmp_path / "tmp").iterdir()) == []
