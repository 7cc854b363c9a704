"""Fan-out over initiatives: threads, or worker processes for CPU-bound stages.

MEASURE fits models in Python and numpy, which holds the GIL for much of the work, so threads do
not use a second core. :func:`map_ordered` runs a picklable top-level function over the items in
a process pool (``spawn`` start method: safe beside the threads Dagster runs) when
``parallelism`` is ``processes``, or ``auto`` (the default) with at least :data:`AUTO_MIN_ITEMS`
items and more than one CPU. Starting a worker imports numpy, pandas, scipy and statsmodels (about
2 s, :data:`WORKER_IMPORTS`), so the process pool is kept for the life of the process and reused
by every stage (pilot and scale); it is rebuilt if a worker dies and shut down at exit. (Workers
forked from a ``forkserver`` that imports once were measured 8-12% slower per task: 200 pilot
tasks took 5.7 s against 5.0 s, more than the second import saves.)
A process that knows it will measure can start the workers early (:func:`prestart_process_pool`).
Workers run :data:`WORKER_NICE` nicer than the process that starts them.
Workers do not run the parent's main script again (``spawn`` would), and once they have measured
they also take other work off the run's process (:func:`run_in_worker`, :func:`preload_in_workers`).
Results always come back in input order, and the first exception (in input order) propagates.
"""

from __future__ import annotations

import atexit
import gc
import importlib
import multiprocessing
import multiprocessing.context
import multiprocessing.spawn
import multiprocessing.util
import os
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import (
    Executor,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    as_completed,
)
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

PARALLELISM = ("auto", "threads", "processes")
#: Below this many items, starting worker processes costs more than it saves.
AUTO_MIN_ITEMS = 16


def use_processes(parallelism: str, n_items: int) -> bool:
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

# -- worker processes that do not run the parent's main script ---------------------------------
# A process started with ``spawn`` normally runs its parent's main script again (as
# ``__mp_main__``) before its first task, so that functions defined there can be unpickled. The
# workers here only ever run functions of importable modules, and the parent's main script is
# often a console script such as ``dagster``, whose top level imports the whole Dagster CLI:
# about 1.4 s of CPU and 40 MB for every worker, for nothing. So the workers of this module are
# started without the parent's main module (and a script that starts them needs no
# ``if __name__ == "__main__":`` guard).
_SPAWNING = threading.local()
_parent_preparation_data = multiprocessing.spawn.get_preparation_data


def _preparation_data(name: str) -> dict:
    """What a spawned process gets from its parent to prepare itself; without the parent's main
    module when one of the workers below is starting (in this thread)."""
    data = _parent_preparation_data(name)
    if getattr(_SPAWNING, "without_main", False):
        data.pop("init_main_from_path", None)
        data.pop("init_main_from_name", None)
    return data


multiprocessing.spawn.get_preparation_data = _preparation_data


class _WorkerProcess(multiprocessing.context.SpawnProcess):
    """A spawned worker process started without its parent's main module (see above)."""

    def start(self) -> None:
        _SPAWNING.without_main = True
        try:
            super().start()
        finally:
            _SPAWNING.without_main = False


class _WorkerContext(multiprocessing.context.SpawnContext):
    Process = _WorkerProcess


_WORKER_CONTEXT = _WorkerContext()

#: Imported by every worker process as it starts: the MEASURE code path and the libraries its
#: models import lazily (statsmodels, ``scipy.stats``, Parquet), so no task pays for them.
WORKER_IMPORTS = (
    "impact_assets.assets.records",
    "impact_assets.steps",
    "impact_assets.measure.component",
    "impact_assets.measure.models",
    "pyarrow.parquet",
    "scipy.stats",
    "statsmodels.regression.linear_model",
    "statsmodels.discrete.discrete_model",
)

#: Workers run this much nicer than the process that starts them. They are throughput; the
#: starting process (Dagster planning the run, storing each step's events) is the critical path
#: they all wait on, so on a busy or small machine it should win the CPU. Where nothing else
#: runs, the workers get every idle core as before.
WORKER_NICE = 10
NICE_ENV = "IMPACT_WORKER_NICE"

_POOLS: dict[int, ProcessPoolExecutor] = {}
_POOLS_LOCK = threading.Lock()
#: Pools that have run at least one task; the others were only started ahead of time.
_USED: weakref.WeakSet[ProcessPoolExecutor] = weakref.WeakSet()
#: What :func:`preload_in_workers` has had each pool's workers load already.
_PRELOADED: weakref.WeakKeyDictionary[ProcessPoolExecutor, set] = weakref.WeakKeyDictionary()


def worker_nice() -> int:
    """How much lower the workers' CPU priority is than this process's: ``$IMPACT_WORKER_NICE``,
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
    """Initializer of each worker process: lower its CPU priority by ``nice``, import
    ``modules``, then ``gc.freeze()`` what they loaded, so that the collector does not scan the
    imported libraries again at every full collection (they live as long as the process)."""
    if nice and hasattr(os, "nice"):
        os.nice(nice)
    for name in modules:
        importlib.import_module(name)
    gc.freeze()


def _ready() -> bool:
    return True


def process_pool(workers: int, warm: bool = False) -> ProcessPoolExecutor:
    """The process pool with ``workers`` workers, started once per process and then reused.

    With ``warm``, all ``workers`` processes are started now, in the background (each imports
    :data:`WORKER_IMPORTS`), instead of one by one as the first tasks arrive.
    """
    with _POOLS_LOCK:
        pool = _POOLS.get(workers)
        if pool is None or getattr(pool, "_broken", False):
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)
            pool = ProcessPoolExecutor(
                max_workers=workers,
                mp_context=_WORKER_CONTEXT,
                initializer=_start_worker,
                initargs=(WORKER_IMPORTS, worker_nice()),
            )
            _POOLS[workers] = pool
            if warm:
                # the pool starts a worker per submitted task while fewer than max_workers run
                # (no fork: it starts them on demand); these no-op tasks make it start them all
                # without waiting for them
                for _ in range(workers):
                    pool.submit(_ready)
        return pool


def _kept_pool() -> ProcessPoolExecutor | None:
    """A process pool this process already runs and has used, if it is still usable."""
    with _POOLS_LOCK:
        for pool in _POOLS.values():
            if pool in _USED and not getattr(pool, "_broken", False):
                return pool
    return None


def _load_and_freeze(load: Callable[[], Any]) -> None:
    load()
    gc.freeze()  # as at the worker's start: what ``load`` imported lives as long as the worker


def preload_in_workers(load: Callable[[], Any]) -> bool:
    """Run ``load`` (a top-level function that imports what later work needs) once in each kept
    worker process, in the background, while the workers would idle; return whether there were
    workers. :func:`run_in_worker` then finds the imports done. Asking again for the same
    ``load`` on the same workers queues nothing more."""
    pool = _kept_pool()
    if pool is None:
        return False
    with _POOLS_LOCK:
        asked = _PRELOADED.setdefault(pool, set())
        if load in asked:
            return True
        asked.add(load)
    try:
        for _ in range(pool._max_workers):
            pool.submit(_load_and_freeze, load)
    except (BrokenProcessPool, RuntimeError):
        with _POOLS_LOCK:
            asked.discard(load)
        return False
    return True


def run_in_worker(fn: Callable[..., R], *args: Any) -> Future:
    """``fn(*args)`` in a kept worker process when this process has one (the other core, while
    this one goes on), else here; either way a future. ``fn`` and ``args`` must pickle."""
    pool = _kept_pool()
    if pool is not None:
        try:
            return pool.submit(fn, *args)
        except (BrokenProcessPool, RuntimeError):
            pass  # broken or shut down: do it here
    future: Future = Future()
    try:
        future.set_result(fn(*args))
    except Exception as exc:
        future.set_exception(exc)
    return future


def prestart_process_pool(workers: int) -> threading.Thread:
    """Start the ``workers`` worker processes now, in the background, so that they are ready
    while this process does other work (Dagster loading and planning a run); :func:`submit_all`
    reuses them. A thread starts them (a few tens of ms each), and the caller goes on at once."""
    thread = threading.Thread(
        target=process_pool, args=(max(1, workers),), kwargs={"warm": True}, daemon=True
    )
    thread.start()
    return thread


def shutdown_pools() -> None:
    """Stop every kept worker process (registered to run at exit).

    Workers of a pool that was started ahead of time and never given a task (a run that turned
    out to measure too few initiatives for processes) are terminated rather than waited for:
    they may still be importing.
    """
    with _POOLS_LOCK:
        pools = list(_POOLS.values())
        _POOLS.clear()
    for pool in pools:
        if pool not in _USED:
            for process in list((getattr(pool, "_processes", None) or {}).values()):
                process.terminate()
        pool.shutdown(wait=True, cancel_futures=True)


# At exit of a normal process (atexit), and at exit of a process that is itself a multiprocessing
# child, such as the subprocess a Dagster code server starts for each run: there the interpreter
# ends with os._exit after joining the process's non-daemon children, which include the pool's
# workers, so without this finalizer that join would wait for them forever.
atexit.register(shutdown_pools)
multiprocessing.util.Finalize(None, shutdown_pools, exitpriority=100)


def submit_all(
    fn: Callable[[T], R], items: Sequence[T], max_workers: int, parallelism: str = "threads"
) -> Iterator[tuple[int, Future]]:
    """Yield ``(index, future)`` as futures complete.

    A thread pool lives for this call; a process pool is shared (:func:`process_pool`). If the
    caller stops early or an exception escapes, the futures not yet started are cancelled.
    """
    if not items:
        return
    workers = max(1, min(max_workers, len(items)))
    if use_processes(parallelism, len(items)):
        # One pool size per process (max_workers), whatever the number of items.
        pool = process_pool(max(1, max_workers))
        _USED.add(pool)
        yield from _drain(pool, fn, items)
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            yield from _drain(pool, fn, items)


def _drain(
    pool: Executor, fn: Callable[[T], R], items: Sequence[T]
) -> Iterator[tuple[int, Future]]:
    futures = {pool.submit(fn, item): index for index, item in enumerate(items)}
    try:
        for future in as_completed(futures):
            if not future.cancelled() and isinstance(future.exception(), BrokenProcessPool):
                raise BrokenProcessPool(WORKER_DIED) from future.exception()
            yield futures[future], future
    finally:
        for future in futures:
            future.cancel()


def map_ordered(
    fn: Callable[[T], R], items: Sequence[T], max_workers: int, parallelism: str = "threads"
) -> list[R]:
    """``[fn(item) for item in items]`` in parallel, in input order; the first error propagates."""
    results: dict[int, Future] = dict(submit_all(fn, items, max_workers, parallelism))
    return [results[i].result() for i in range(len(items))]
