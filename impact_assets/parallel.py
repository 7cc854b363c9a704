"""Fan-out over initiatives: threads, or worker processes for CPU-bound stages.

MEASURE fits models in Python and numpy, which holds the GIL for much of the work, so threads do
not use a second core. :func:`map_ordered` runs a picklable top-level function over the items in
a process pool (``spawn`` start method: safe beside the threads Dagster runs) when
``parallelism`` is ``processes``, or ``auto`` with at least :data:`AUTO_MIN_ITEMS` items and more
than one CPU. Results always come back in input order, and the first exception (in input order)
propagates.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from typing import TypeVar

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


def _executor(processes: bool, workers: int) -> Executor:
    if processes:
        return ProcessPoolExecutor(
            max_workers=workers, mp_context=multiprocessing.get_context("spawn")
        )
    return ThreadPoolExecutor(max_workers=workers)


def submit_all(
    fn: Callable[[T], R], items: Sequence[T], max_workers: int, parallelism: str = "threads"
) -> Iterator[tuple[int, Future]]:
    """Yield ``(index, future)`` as futures complete; the pool shuts down afterwards."""
    from concurrent.futures import as_completed

    if not items:
        return
    processes = use_processes(parallelism, len(items))
    workers = max(1, min(max_workers, len(items)))
    with _executor(processes, workers) as pool:
        futures = {pool.submit(fn, item): index for index, item in enumerate(items)}
        try:
            for future in as_completed(futures):
                yield futures[future], future
        except BaseException:
            for future in futures:
                future.cancel()
            raise


def map_ordered(
    fn: Callable[[T], R], items: Sequence[T], max_workers: int, parallelism: str = "threads"
) -> list[R]:
    """``[fn(item) for item in items]`` in parallel, in input order; the first error propagates."""
    results: dict[int, Future] = dict(submit_all(fn, items, max_workers, parallelism))
    return [results[i].result() for i in range(len(items))]
