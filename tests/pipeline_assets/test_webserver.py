"""A real dagster-webserver on 127.0.0.1 and a dagster-daemon, queried over GraphQL.

Runs the pipeline through the GraphQL client, reads every asset's partition statuses and the
latest check results, then launches a one-partition backfill that the daemon runs to a green end.
Finally one initiative's MEASURE fails: its contract checks read failed (severity WARN, naming it
and the error) and ``portfolio`` refuses to allocate, as the UI shows them.
"""

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests
from dagster_graphql import DagsterGraphQLClient

from tests.pipeline_assets.test_cli import BIN, ROOT, cli_env, fake_manifest

ASSETS = [
    "pilot_measurement",
    "evaluation",
    "allocation",
    "scale_measurement",
    "outcome_report",
]
IDS = {"init-1", "init-2", "init-3"}

PARTITIONS_QUERY = """
query ($path: [String!]!) {
  assetNodeOrError(assetKey: {path: $path}) {
    ... on AssetNode {
      assetPartitionStatuses {
        ... on DefaultPartitionStatuses {
          materializedPartitions failedPartitions unmaterializedPartitions
        }
      }
      assetChecksOrError {
        ... on AssetChecks { checks { name blocking executionForLatestMaterialization { status } } }
      }
    }
  }
}
"""

WORKSPACE_QUERY = """
{
  workspaceOrError {
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError { __typename ... on PythonError { message } }
      }
    }
  }
}
"""

BACKFILL_MUTATION = """
mutation ($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
  }
}
"""

CHECK_EXECUTIONS_QUERY = """
query ($path: [String!]!, $check: String!) {
  assetCheckExecutions(assetKey: {path: $path}, checkName: $check, limit: 1) {
    runId status evaluation { severity description }
  }
}
"""

RUN_FAILURES_QUERY = """
query ($runId: ID!) {
  logsForRun(runId: $runId) {
    ... on EventConnection {
      events { __typename ... on ExecutionStepFailureEvent { stepKey error { message } } }
    }
  }
}
"""

BACKFILL_QUERY = """
query ($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    ... on PartitionBackfill { status }
  }
}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(args: list[str], env: dict, log: Path) -> subprocess.Popen:
    handle = log.open("w")
    return subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
    )


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def graphql(port: int, query: str, variables: dict) -> dict:
    response = requests.post(
        f"http://127.0.0.1:{port}/graphql",
        json={"query": query, "variables": variables},
        timeout=60,
    )
    response.raise_for_status()
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(1.0)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def forked_processes(root: int) -> list[str]:
    """Command lines of the multiprocessing children (a code server's run subprocesses and their
    MEASURE workers) among the descendants of process ``root``."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(parent, []).append(int(stat.parent.name))
    found, todo = [], list(children.get(root, []))
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "--multiprocessing-fork" in command:
            found.append(command)
    return found


def test_webserver_graphql_and_daemon_backfill(tmp_path):
    # MEASURE in worker processes inside the run subprocess the code server starts: that
    # subprocess must still exit at the end of the run (impact_assets/parallel.py)
    manifest = fake_manifest(tmp_path / "project", parallelism="processes")
    env = cli_env(tmp_path / "home", manifest)
    port = free_port()
    web = start(
        [
            str(BIN / "dagster-webserver"),
            "-w",
            "workspace.yaml",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        env,
        tmp_path / "webserver.log",
    )
    daemon = start(
        [str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"], env, tmp_path / "daemon.log"
    )
    try:

        def up():
            try:
                return requests.get(f"http://127.0.0.1:{port}/server_info", timeout=2).ok
            except requests.RequestException:
                return False

        wait_for(up, 120, "the webserver")

        def location_loaded():
            entries = graphql(port, WORKSPACE_QUERY, {})["workspaceOrError"]["locationEntries"]
            entry = entries[0] if entries else None
            if entry and entry["locationOrLoadError"]["__typename"] == "PythonError":
                pytest.fail(f"code location failed: {entry['locationOrLoadError']['message']}")
            return entry is not None and entry["loadStatus"] == "LOADED"

        wait_for(location_loaded, 180, "the code location")
        client = DagsterGraphQLClient("127.0.0.1", port_number=port)
        run_id = client.submit_job_execution("impact_pipeline")
        wait_for(
            lambda: client.get_run_status(run_id).value in ("SUCCESS", "FAILURE", "CANCELED"),
            300,
            "the pipeline run",
        )
        assert client.get_run_status(run_id).value == "SUCCESS", (
            tmp_path / "daemon.log"
        ).read_text()[-3000:]
        # the daemon launched the queued run, through its own code server
        wait_for(
            lambda: not forked_processes(daemon.pid) and not forked_processes(web.pid),
            60,
            "the run subprocess and its MEASURE workers to exit",
        )

        for asset in ASSETS:
            node = graphql(port, PARTITIONS_QUERY, {"path": [asset]})["assetNodeOrError"]
            statuses = node["assetPartitionStatuses"]
            assert set(statuses["materializedPartitions"]) == IDS, asset
            assert statuses["failedPartitions"] == [] and statuses["unmaterializedPartitions"] == []
            checks = node["assetChecksOrError"]["checks"]
            assert checks and all(c["blocking"] for c in checks), asset
            # asset-level checks: the run's one result per check is the asset's (never Skipped)
            assert {
                (c["executionForLatestMaterialization"] or {}).get("status") for c in checks
            } == {"SUCCEEDED"}, asset
        portfolio = graphql(port, PARTITIONS_QUERY, {"path": ["portfolio"]})["assetNodeOrError"]
        latest = {
            c["name"]: (c["executionForLatestMaterialization"] or {}).get("status")
            for c in portfolio["assetChecksOrError"]["checks"]
        }
        assert latest == {
            "portfolio_contract": "SUCCEEDED",
            "portfolio_consistent_with_evaluations": "SUCCEEDED",
            "portfolio_solver_status": "SUCCEEDED",
        }

        launched = graphql(
            port,
            BACKFILL_MUTATION,
            {
                "params": {
                    "assetSelection": [{"path": ["pilot_measurement"]}, {"path": ["evaluation"]}],
                    "partitionNames": ["init-2"],
                }
            },
        )["launchPartitionBackfill"]
        assert launched["__typename"] == "LaunchBackfillSuccess", launched
        backfill_id = launched["backfillId"]

        def finished():
            status = graphql(port, BACKFILL_QUERY, {"id": backfill_id})["partitionBackfillOrError"]
            return status["status"] if status["status"] not in ("REQUESTED",) else None

        status = wait_for(finished, 300, "the backfill")
        assert status == "COMPLETED_SUCCESS", (tmp_path / "daemon.log").read_text()[-3000:]

        # init-2's data goes missing: the whole pipeline again
        (manifest.parent / "measure" / "init-2.yaml").write_text("fail: data file missing\n")
        run_id = client.submit_job_execution("impact_pipeline")
        wait_for(
            lambda: client.get_run_status(run_id).value in ("SUCCESS", "FAILURE", "CANCELED"),
            300,
            "the run with a failing initiative",
        )
        assert client.get_run_status(run_id).value == "FAILURE"
        for asset, check in (
            ("pilot_measurement", "pilot_measurement_contract"),
            ("evaluation", "evaluation_contract"),
        ):
            [execution] = graphql(port, CHECK_EXECUTIONS_QUERY, {"path": [asset], "check": check})[
                "assetCheckExecutions"
            ]
            assert execution["runId"] == run_id and execution["status"] == "FAILED", execution
            evaluation = execution["evaluation"]
            assert evaluation["severity"] == "WARN"
            assert "init-2" in evaluation["description"]
            assert "RuntimeError: data file missing" in evaluation["description"]
        events = graphql(port, RUN_FAILURES_QUERY, {"runId": run_id})["logsForRun"]["events"]
        failures = [e for e in events if e["__typename"] == "ExecutionStepFailureEvent"]
        assert [f["stepKey"] for f in failures] == ["portfolio"]
        message = failures[0]["error"]["message"]
        assert "refusing to allocate over a subset" in message and "init-2" in message
    finally:
        stop(daemon)
        stop(web)
