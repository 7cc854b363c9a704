"""Process start and exit of a run-executing process (impact_assets/assets/warm_start.py)."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from impact_assets import parallel
from impact_assets.assets import warm_start
from impact_assets.config import load_config
from tests.support import write_manifest

DAGSTER = str(Path(sys.executable).parent / "dagster")
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([DAGSTER, "job", "execute", "-m", "impact_assets.definitions"], True),
        (["dagster", "asset", "materialize", "--select", "*"], True),
        (["/x/site-packages/dagster/__main__.py", "api", "execute_run", "{}"], True),
        (["/x/site-packages/dagster/__main__.py", "api", "execute_step", "{}"], True),
        (["dagster", "api", "grpc", "--module-name", "impact_assets.definitions"], False),
        (["dagster", "code-server", "start", "-m", "impact_assets.definitions"], False),
        (["dagster", "dev"], False),
        (["dagster-webserver", "-h", "127.0.0.1"], False),
        (["dagster", "definitions", "validate"], False),
        (["dg", "launch", "--assets", "*"], False),
        (["/usr/bin/python", "-m", "pytest"], False),
        (["/x/job/execute.py", "job", "execute"], False),
        ([], False),
    ],
)
def test_only_processes_that_execute_runs_count(argv, expected):
    assert warm_start.executes_runs(argv) is expected


def _config(tmp_path: Path, n: int, parallelism: str = "auto"):
    initiatives = [{"initiative_id": f"i-{k:03d}", "cost_to_scale": 10.0} for k in range(n)]
    return load_config(
        write_manifest(tmp_path / "p", initiatives, max_workers=1, parallelism=parallelism)
    )


def test_workers_start_only_where_the_pilot_stage_would_use_them(tmp_path, monkeypatch, no_pools):
    executing = ["dagster", "job", "execute"]
    big = _config(tmp_path / "big", parallel.AUTO_MIN_ITEMS)
    monkeypatch.delenv(warm_start.PRESTART_ENV, raising=False)
    assert not warm_start.prestart_for_manifest(big.path, ["dagster", "api", "grpc"])
    assert not warm_start.prestart_for_manifest(
        _config(tmp_path / "small", parallel.AUTO_MIN_ITEMS - 1).path, executing
    )
    assert not warm_start.prestart_for_manifest(
        _config(tmp_path / "threads", 40, "threads").path, executing
    )
    monkeypatch.setenv("IMPACT_BACKFILL_BATCH_SIZE", str(parallel.AUTO_MIN_ITEMS - 1))
    assert not warm_start.prestart_for_manifest(big.path, executing)  # runs measure in threads
    monkeypatch.delenv("IMPACT_BACKFILL_BATCH_SIZE")
    monkeypatch.setenv(warm_start.PRESTART_ENV, "0")
    assert not warm_start.prestart_for_manifest(big.path, executing)
    assert parallel._POOLS == {}

    monkeypatch.setenv(warm_start.PRESTART_ENV, "1")  # any process, e.g. this test's
    if (os.cpu_count() or 1) < 2:
        pytest.skip("auto parallelism needs more than one CPU")
    assert warm_start.prestart_for_manifest(big.path, ["pytest"])  # returns at once
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not getattr(parallel._POOLS.get(1), "_processes", 0):
        time.sleep(0.05)
    pool = parallel._POOLS[1]
    assert len(pool._processes) == 1  # started before any task was submitted
    # the pilot stage reuses the started workers, which have imported the MEASURE libraries
    # and frozen them (gc.get_freeze_count is a builtin, so it runs in the worker as is)
    assert parallel.process_pool(1) is pool
    (frozen,) = parallel.map_ordered(_freeze_count, [None], 1, "processes")
    assert frozen > 10_000


def _freeze_count(_):
    return gc.get_freeze_count()


def _started_pool(workers: int):
    parallel.prestart_process_pool(workers).join()
    pool = parallel._POOLS[workers]
    deadline = time.monotonic() + 60
    while len(pool._processes) < workers and time.monotonic() < deadline:
        time.sleep(0.05)
    return pool, list(pool._processes.values())


def test_workers_started_ahead_and_never_used_are_terminated_at_exit(no_pools):
    """A prestarted pool that never got a task is not waited for at exit (its workers may still
    be importing); a pool that ran tasks is shut down normally."""
    _, unused = _started_pool(1)
    parallel.shutdown_pools()
    assert [p.exitcode for p in unused] == [-15]  # SIGTERM

    _, used = _started_pool(1)
    assert parallel.map_ordered(abs, [-3], 1, "processes") == [3]
    parallel.shutdown_pools()
    assert [p.exitcode for p in used] == [0]


def test_a_bad_prestart_setting_names_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv(warm_start.PRESTART_ENV, "yes")
    with pytest.raises(
        ValueError, match=r"IMPACT_PRESTART_WORKERS must be auto, 0 or 1, got 'yes'"
    ):
        warm_start.prestart_for_manifest(_config(tmp_path, 2).path, ["dagster", "job", "execute"])


def test_worker_imports_leave_dagster_out():
    """What every worker imports as it starts: the MEASURE path and its lazy libraries, and not
    Dagster (about a second more per worker)."""
    code = (
        "import sys\n"
        f"for name in {parallel.WORKER_IMPORTS!r}:\n"
        "    __import__(name)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'dagster'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_loaded_objects_are_frozen_once_the_definitions_load(tmp_path):
    """Loading the code location freezes what it loaded (fewer objects for every full
    collection to scan, and none for the collection at exit), and the process still exits
    cleanly with its output flushed."""
    code = (
        "import gc, atexit\n"
        "before = gc.get_freeze_count()\n"
        "import impact_assets.definitions\n"
        "print(before, gc.get_freeze_count() > 100_000, flush=True)\n"
        "atexit.register(lambda: print('exit handler ran'))\n"
    )
    env = {**os.environ, "IMPACT_MANIFEST": str(ROOT / "configs" / "pipeline.yaml")}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.splitlines() == ["0 True", "exit handler ran"]


def test_workers_run_at_a_lower_cpu_priority(monkeypatch, no_pools):
    """The run's main process (the critical path) wins the CPU over MEASURE workers on a busy
    machine: workers are WORKER_NICE nicer, or IMPACT_WORKER_NICE."""
    if not hasattr(os, "nice"):
        pytest.skip("no process priorities on this platform")
    own = os.nice(0)
    monkeypatch.delenv(parallel.NICE_ENV, raising=False)
    assert parallel.map_ordered(os.nice, [0], 1, "processes") == [min(19, own + 10)]
    parallel.shutdown_pools()
    monkeypatch.setenv(parallel.NICE_ENV, "0")
    assert parallel.map_ordered(os.nice, [0], 1, "processes") == [own]


@pytest.mark.parametrize("bad", ["-5", "20", "high"])
def test_a_bad_worker_nice_names_the_variable(bad, tmp_path, monkeypatch):
    monkeypatch.setenv(parallel.NICE_ENV, bad)
    message = f"IMPACT_WORKER_NICE must be a whole number from 0 to 19, got '{bad}'"
    with pytest.raises(ValueError, match=message):
        warm_start.prestart_for_manifest(_config(tmp_path, 2).path, ["dagster", "job", "execute"])


def _measure_in_a_child() -> None:
    print(parallel.map_ordered(abs, [-1, -2], 1, "processes"), flush=True)


def test_a_multiprocessing_child_that_used_the_pool_still_exits(no_pools):
    """Dagster's code server runs each run in a multiprocessing child, which at its end joins its
    own non-daemon children (the pool's workers) before anything else: the pool is shut down by
    a multiprocessing finalizer first, so the child exits instead of waiting forever."""
    import multiprocessing

    child = multiprocessing.get_context("spawn").Process(target=_measure_in_a_child)
    child.start()
    child.join(timeout=120)
    alive = child.is_alive()
    if alive:
        child.kill()
    assert not alive
    assert child.exitcode == 0


def test_a_manifest_the_first_look_cannot_read_starts_nothing(tmp_path, monkeypatch, no_pools):
    """prestart_for_manifest reads only the manifest file (the decisions on readable manifests
    are above); a manifest it cannot read starts nothing and raises nothing (the full load
    reports the problem), and max_workers comes from the file."""
    executing = ["dagster", "job", "execute"]
    monkeypatch.delenv(warm_start.PRESTART_ENV, raising=False)
    monkeypatch.delenv("IMPACT_BACKFILL_BATCH_SIZE", raising=False)
    big = _config(tmp_path / "big", parallel.AUTO_MIN_ITEMS)
    bad = tmp_path / "bad"
    bad.mkdir()
    for name, text in {
        "missing.yaml": None,
        "list.yaml": "- a\n- b\n",
        "broken.yaml": "initiatives: [unclosed\n",
        "no_initiatives.yaml": "budget: 1\n",
        "bad_parallelism.yaml": "parallelism: fork\ninitiatives: []\n",
        "bad_workers.yaml": "max_workers: two\ninitiatives: []\n",
    }.items():
        if text is not None:
            (bad / name).write_text(text)
        assert not warm_start.prestart_for_manifest(bad / name, executing), name
    assert parallel._POOLS == {}
    if (os.cpu_count() or 1) < 2:
        pytest.skip("auto parallelism needs more than one CPU")
    assert warm_start.prestart_for_manifest(big.path, executing)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not getattr(parallel._POOLS.get(1), "_processes", 0):
        time.sleep(0.05)
    assert len(parallel._POOLS[1]._processes) == 1  # max_workers: 1, read from the file


def test_a_bad_environment_setting_fails_the_first_look_too(tmp_path, monkeypatch):
    monkeypatch.setenv(parallel.NICE_ENV, "20")
    with pytest.raises(ValueError, match=r"IMPACT_WORKER_NICE must be a whole number from 0 to 19"):
        warm_start.prestart_for_manifest(_config(tmp_path, 2).path, ["dagster", "job", "execute"])
