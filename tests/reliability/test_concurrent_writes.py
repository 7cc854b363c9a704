"""Two runs writing at once never corrupt the JSON store (nor MEASURE's job directories)."""

from __future__ import annotations

import json
import multiprocessing
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from impact_assets.assets.storage import write_json_atomic
from tests.pipeline_assets.test_cli import ROOT, cli_env, fake_manifest

BIN = Path(sys.executable).parent


def test_concurrent_single_initiative_refreshes(tmp_path):
    """Three ``dagster asset materialize`` processes at once: two on init-2, one on init-1."""
    env = cli_env(tmp_path / "home", fake_manifest(tmp_path / "project"))
    # cli_env creates the instance first: several processes creating a fresh SQLite instance
    # at once race in Dagster's schema migration (docs/reliability.md).
    command = [str(BIN / "dagster"), "asset", "materialize", "-m", "impact_assets.definitions"]
    command += ["--select", "pilot_measurement,evaluation", "--partition"]
    procs = [
        subprocess.Popen(
            [*command, key],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for key in ("init-2", "init-2", "init-1")
    ]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    for proc, output in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, output[-3000:]
    storage = tmp_path / "home" / "storage" / "impact_assets"
    for asset in ("pilot_measurement", "evaluation"):
        names = sorted(p.name for p in (storage / asset).iterdir())
        assert names == ["init-1.json", "init-2.json"], names  # no stray temp files
        for key in ("init-1", "init-2"):
            record = json.loads((storage / asset / f"{key}.json").read_text())
            assert record["initiative_id"] == key and record["status"] == "ok"
    with dg.DagsterInstance.from_config(str(tmp_path / "home")) as instance:
        runs = instance.get_runs()
        assert len(runs) == 3 and all(r.is_success for r in runs)
        assert instance.get_materialized_partitions(dg.AssetKey("evaluation")) == {
            "init-1",
            "init-2",
        }


def _writer(path: str, tag: int, rounds: int) -> None:
    for i in range(rounds):
        write_json_atomic(Path(path), {"writer": tag, "round": i, "payload": [tag] * 20_000})


def test_atomic_json_writes_from_two_processes_are_never_seen_half_written(tmp_path):
    target = tmp_path / "evaluation" / "init-1.json"
    write_json_atomic(target, {"writer": -1, "round": -1, "payload": []})
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=_writer, args=(str(target), k, 60)) for k in (1, 2)]
    for writer in writers:
        writer.start()
    reads = 0
    while any(w.is_alive() for w in writers) or reads < 50:
        value = json.loads(target.read_text(encoding="utf-8"))  # never partial
        assert value["payload"] == [value["writer"]] * len(value["payload"])
        reads += 1
    for writer in writers:
        writer.join(timeout=60)
        assert writer.exitcode == 0
    assert json.loads(target.read_text())["round"] == 59
    assert [p.name for p in target.parent.iterdir()] == ["init-1.json"]


def _measure_same_initiative(config: str, store: str, rounds: int) -> None:
    from impact_assets.measure.component import Measure

    measure = Measure(storage_url=store)
    for _ in range(rounds):
        measure.execute({"initiative_id": "same-1", "measure_config": config})


def test_two_processes_measuring_the_same_initiative_leave_one_complete_job_dir(tmp_path):
    from impact_assets.synthetic_portfolio import measure_config

    config = tmp_path / "same.yaml"
    config.write_text(json.dumps(measure_config("experiment", 3, 0.2, 40)))
    store = tmp_path / "store"
    context = multiprocessing.get_context("spawn")
    procs = [
        context.Process(target=_measure_same_initiative, args=(str(config), str(store), 4))
        for _ in range(2)
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=240)
        assert proc.exitcode == 0
    job = store / "same-1" / "pilot"
    manifest = json.loads((job / "manifest.json").read_text())
    for entry in manifest["files"].values():
        assert (job / entry["path"]).is_file()
    assert sorted(p.name for p in (store / "same-1").iterdir()) == ["pilot"]


def test_many_files_are_written_whole_or_not_at_all(tmp_path, monkeypatch):
    """write_files_atomic (the IO manager's partitioned outputs): all files land, or, when the
    flush to disk fails, none is replaced and no temp file is left."""
    import os

    from impact_assets.atomic import write_files_atomic

    paths = [tmp_path / "asset" / f"init-{i}.json" for i in range(5)]
    write_files_atomic({p: f"old {p.name}".encode() for p in paths})
    assert [p.read_text() for p in paths] == [f"old {p.name}" for p in paths]

    real_fsync, calls = os.fsync, []

    def failing_fsync(fd):  # the third file's flush fails
        calls.append(fd)
        if len(calls) == 3:
            raise OSError("disk full")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="^disk full$"):
        write_files_atomic({p: b"new" for p in paths})
    assert [p.read_text() for p in paths] == [f"old {p.name}" for p in paths]
    assert sorted(x.name for x in (tmp_path / "asset").iterdir()) == sorted(p.name for p in paths)
    monkeypatch.undo()
    write_files_atomic({p: b"new" for p in paths})
    assert {p.read_text() for p in paths} == {"new"}


def test_temp_names_skip_leftovers_and_threads_never_collide(tmp_path):
    """Temp files are named by pid and a counter: a leftover with the next name (a crashed
    process that had the same pid) is skipped, not overwritten, and threads writing the same
    file at once each get their own temp file."""
    import os
    import threading

    from impact_assets import atomic

    target = tmp_path / "a.json"
    following = next(atomic._TEMP_NUMBERS) + 1
    leftover = tmp_path / f".a.json.{os.getpid()}-{following}.tmp"
    leftover.write_text("left by a crash")
    atomic.write_bytes_atomic(target, b"new")
    assert target.read_bytes() == b"new"
    assert leftover.read_text() == "left by a crash"

    errors: list[BaseException] = []

    def write(tag: int) -> None:
        try:
            for _ in range(40):
                atomic.write_files_atomic({target: b"%d" % tag, tmp_path / "b.json": b"%d" % tag})
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["a.json", "b.json", leftover.name])
    assert target.read_bytes() in {b"0", b"1", b"2", b"3"}


def test_the_io_manager_flushes_its_own_files_unless_told_not_to(tmp_path, monkeypatch):
    """Each stored file is fsync'ed before it replaces the old one (the JSON IO manager's
    ``fsync`` field, default on); with ``fsync: false`` nothing is flushed. The rename that makes
    every write atomic is there either way."""
    import os

    from impact_assets.assets.storage import JsonIOManager

    flushes: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: flushes.append(fd) or real_fsync(fd))
    ids = ["init-1", "init-2", "init-3"]
    value = {key: {"initiative_id": key, "status": "ok"} for key in ids}
    for fsync, expected in ((False, 0), (True, 3)):
        flushes.clear()
        manager = JsonIOManager(base_dir=str(tmp_path / str(fsync)), fsync=fsync)
        context = dg.build_output_context(
            asset_key=dg.AssetKey("evaluation"),
            partition_key=None,
            asset_partitions_def=dg.StaticPartitionsDefinition(ids),
            asset_partition_key_range=dg.PartitionKeyRange("init-1", "init-3"),
        )
        manager.handle_output(context, value)
        assert len(flushes) == expected
        folder = tmp_path / str(fsync) / "evaluation"
        assert sorted(p.name for p in folder.iterdir()) == [f"{key}.json" for key in ids]
