"""Work handed to the kept MEASURE worker processes besides MEASURE itself: the report chart,
drawn on the other core, and imports done ahead while the workers idle (impact_assets.parallel)."""

from __future__ import annotations

import os
import sys

import pytest

from impact_assets import parallel, reporting


def _pid() -> int:
    return os.getpid()


def _loaded(name: str) -> bool:
    return name in sys.modules


def _fail(message: str) -> None:
    raise ValueError(message)


def _rows() -> list[dict]:
    return [
        {
            "initiative": f"i-{k}",
            "selected": k % 2 == 0,
            "pilot_estimate": 10.0 * k - 5,
            "pilot_ci_lower": 10.0 * k - 25 if k != 2 else None,
            "pilot_ci_upper": 10.0 * k + 15 if k != 2 else None,
            "actual": 9.0 * k - 4 if k % 2 == 0 else None,
            "true_effect": 10.0 * k - 4.5,
        }
        for k in range(6)
    ]


def test_without_worker_processes_the_work_is_done_here(no_pools):
    assert not parallel.preload_in_workers(reporting.preload_plotting)
    assert parallel.run_in_worker(_pid).result() == os.getpid()
    failed = parallel.run_in_worker(_fail, "no chart")
    with pytest.raises(ValueError, match="no chart"):
        failed.result()


def test_a_pool_that_has_measured_draws_the_same_chart(tmp_path, no_pools):
    """Once this process has worker processes (a stage measured in them), the chart is drawn in
    one, after the workers imported matplotlib ahead; the PNG is byte for byte the one drawn here."""
    inline = reporting.plot(_rows(), tmp_path / "inline.png").read_bytes()
    parallel.map_ordered(abs, [-1], 1, "processes")  # a stage that ran in worker processes
    assert parallel.preload_in_workers(reporting.preload_plotting)
    assert parallel.run_in_worker(_loaded, "matplotlib.pyplot").result()
    assert parallel.run_in_worker(_pid).result() != os.getpid()
    drawn = parallel.run_in_worker(reporting.plot, _rows(), tmp_path / "worker.png").result()
    assert drawn == tmp_path / "worker.png"
    assert drawn.read_bytes() == inline
    with pytest.raises(ValueError, match="no chart"):
        parallel.run_in_worker(_fail, "no chart").result()


def test_the_same_preload_is_queued_once_per_pool(monkeypatch, no_pools):
    parallel.map_ordered(abs, [-1, -2], 2, "processes")
    pool = parallel._POOLS[2]
    submitted = []
    submit = pool.submit
    monkeypatch.setattr(
        pool, "submit", lambda fn, *args: submitted.append(args) or submit(fn, *args)
    )
    assert parallel.preload_in_workers(reporting.preload_plotting)
    assert parallel.preload_in_workers(reporting.preload_plotting)
    assert submitted == [(reporting.preload_plotting,)] * 2  # one per worker, asked twice
    assert parallel.preload_in_workers(reporting.load_plotting)  # another load is queued
    assert len(submitted) == 4
    assert parallel.run_in_worker(_loaded, "matplotlib.pyplot").result()


def test_a_broken_pool_is_not_given_work(no_pools):
    parallel.map_ordered(abs, [-1], 1, "processes")
    pool = parallel._POOLS[1]
    pool._broken = "a worker died"  # what ProcessPoolExecutor sets when a worker is killed
    assert not parallel.preload_in_workers(reporting.preload_plotting)
    assert parallel.run_in_worker(_pid).result() == os.getpid()
