"""Fan-out over initiatives: a thread pool, or a pool of worker processes for CPU-bound stages.

MEASURE fits models in Python and numpy, which holds the GIL for much of the work, so threads do
not use a second core. :func:`use_processes` decides: worker processes when ``parallelism`` is
``processes``, or ``auto`` (the default) with at least :data:`AUTO_MIN_ITEMS` items and more than
one CPU; threads otherwise.

Worker processes live in a :class:`WorkerPool`: a plain :class:`ProcessPoolExecutor` with the
``spawn`` start method (safe beside the threads Dagster runs), started on first use (or ahead,
with :meth:`WorkerPool.start`), reused by every stage of its owner (pilot and scale) and shut
down by :meth:`WorkerPool.close` (or leaving its ``with`` block). The Dagster layer owns one per
executing run through a resource (:class:`impact_assets.assets.resources.WorkerPoolResource`);
the plain ``Orchestrator`` owns one per ``run()``. Each worker imports :data:`WORKER_IMPORTS`
as it starts and runs :data:`WORKER_NICE` nicer than its parent (the parent stores results and
plans the next step; the workers wait on it).

Results come back in input order, and the first exception (in input order) propagates. A worker
that dies (killed, out of memory) raises :class:`BrokenProcessPool` with :data:`WORKER_DIED`; the
pool starts new workers for the next call.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import (
    Executor,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    as_completed,
)
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

PARALLELISM = ("auto", "threads", "processes")
#: Below this many items, starting worker processes costs more than it saves.
AUTO_MIN_ITEMS = 16


def use_processes(parallelism: str, n_items: int) -> bool:
    """Whether ``n_items`` items under ``parallelism`` run in worker processes."""
    if parallelism not in PARALLELISM:
        raise ValueError(
            f"parallelism must be one of {', '.join(PARALLELISM)}, got {parallelism!r}"
        )
    if parallelism == "processes":
        return True
    return parallelism == "auto" and n_items >= AUTO_MIN_ITEMS and (os.cpu_count() or 1) > 1


WORKER_DIED = (
    "a MEASURE worker process died before returning (killed, out of memory, or it could not "
    "start). Set `parallelism: threads` in the manifest to run without worker processes."
)

#: Imported by every worker process as it starts: the MEASURE code path and the libraries its
#: models import lazily (statsmodels, ``scipy.stats``, Parquet), so no task pays for them.
WORKER_IMPORTS = (
    "impact_assets.steps",
    "impact_assets.measure.component",
    "impact_assets.measure.models",
    "pyarrow.parquet",
    "scipy.stats",
    "statsmodels.regression.linear_model",
    "statsmodels.discrete.discrete_model",
)

#: Workers run this much nicer than the process that starts them (``$IMPACT_WORKER_NICE``).
WORKER_NICE = 10
NICE_ENV = "IMPACT_WORKER_NICE"


def worker_nice() -> int:
    """How much lower the workers' CPU priority is than their parent's: ``$IMPACT_WORKER_NICE``,
    else :data:`WORKER_NICE`."""
    raw = os.environ.get(NICE_ENV, "").strip()
    if not raw:
        return WORKER_NICE
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if not 0 <= value <= 19:
        raise ValueError(f"{NICE_ENV} must be a whole number from 0 to 19, got {raw!r}")
    return value


def _start_worker(modules: Sequence[str], nice: int) -> None:
    """Initializer of each worker process: lower its own CPU priority, import ``modules``."""
    if nice and hasattr(os, "nice"):
        os.nice(nice)
    for name in modules:
        importlib.import_module(name)


def _ready() -> bool:
    return True


class WorkerPool:
    """A process pool of ``max_workers`` workers owned by one caller (a run, an ``Orchestrator``
    run): started on first use or by :meth:`start`, stopped by :meth:`close`."""

    def __init__(self, max_workers: int) -> None:
        self.max_workers = max(1, int(max_workers))
        self._lock = threading.Lock()
        self._executor: ProcessPoolExecutor | None = None

    def executor(self) -> ProcessPoolExecutor:
        """The pool's executor, started now if it is not running."""
        with self._lock:
            if self._executor is None:
                self._executor = ProcessPoolExecutor(
                    max_workers=self.max_workers,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_start_worker,
                    initargs=(WORKER_IMPORTS, worker_nice()),
                )
            return self._executor

    @property
    def running(self) -> bool:
        return self._executor is not None

    def start(self) -> None:
        """Start every worker now (they import in the background) instead of at the first tasks."""
        executor = self.executor()
        for _ in range(self.max_workers):
            executor.submit(_ready)

    def discard_broken(self) -> None:
        """Forget an executor whose worker died; the next call starts a new one."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        """Stop the workers (waiting for running tasks; queued ones are cancelled)."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def submit_all(
    fn: Callable[[T], R],
    items: Sequence[T],
    max_workers: int,
    parallelism: str = "threads",
    pool: WorkerPool | None = None,
) -> Iterator[tuple[int, Future]]:
    """Yield ``(index, future)`` as futures complete.

    Threads: a thread pool lives for this call. Processes: ``pool``'s workers, or a
    :class:`WorkerPool` for this call only when there is no ``pool``. If the caller stops early
    or an exception escapes, the futures not yet started are cancelled.
    """
    if not items:
        return
    if use_processes(parallelism, len(items)):
        if pool is None:
            with WorkerPool(max_workers) as own:
                yield from _drain_processes(own, fn, items)
        else:
            yield from _drain_processes(pool, fn, items)
    else:
        workers = max(1, min(max_workers, len(items)))
        with ThreadPoolExecutor(max_workers=workers) as threads:
            yield from _drain(threads, fn, items)


def _drain_processes(
    pool: WorkerPool, fn: Callable[[T], R], items: Sequence[T]
) -> Iterator[tuple[int, Future]]:
    try:
        yield from _drain(pool.executor(), fn, items)
    except BrokenProcessPool:
        pool.discard_broken()
        raise


def _drain(
    executor: Executor, fn: Callable[[T], R], items: Sequence[T]
) -> Iterator[tuple[int, Future]]:
    futures = {executor.submit(fn, item): index for index, item in enumerate(items)}
    try:
        for future in as_completed(futures):
            if not future.cancelled() and isinstance(future.exception(), BrokenProcessPool):
                raise BrokenProcessPool(WORKER_DIED) from future.exception()
            yield futures[future], future
    finally:
        for future in futures:
            future.cancel()


def map_ordered(
    fn: Callable[[T], R],
    items: Sequence[T],
    max_workers: int,
    parallelism: str = "threads",
    pool: WorkerPool | None = None,
) -> list[R]:
    """``[fn(item) for item in items]`` in parallel, in input order; the first error propagates."""
    results: dict[int, Future] = dict(submit_all(fn, items, max_workers, parallelism, pool))
    return [results[i].result() for i in range(len(items))]
