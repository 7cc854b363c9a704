"""The guarded fan-out of a stage step over its initiatives, and the contract verdicts on them.

A stage step runs one guarded stage call per initiative of its run
(:func:`impact_assets.steps.guarded`): an initiative that fails is stored as a ``failed`` record
and logged, the others go on. When every initiative of the run failed the step itself fails, so a
one-initiative refresh that fails is red and stores nothing.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import dagster as dg

from impact_assets import steps
from impact_assets.contracts import ContractError
from impact_assets.parallel import WorkerPool, submit_all

#: A contract check's verdict on one initiative: passed, and why. ``WARN`` verdicts fail the check
#: with severity WARN (a stage that failed for that initiative); the others fail it with ERROR.
Verdict = tuple[bool, str]

#: Progress lines per stage on runs over more initiatives than this.
PROGRESS_LINES = 10


def verdicts(
    values: Mapping[str, Mapping[str, Any]],
    check_ok: Callable[[str, Mapping[str, Any]], Verdict],
    explained: tuple[str, ...] = (),
) -> dict[str, Verdict]:
    """The contract check's verdict for every initiative's stored record.

    ``ok`` records go through ``check_ok`` (a :class:`ContractError` fails them); a
    ``contract_violation`` fails; ``failed`` records fail (the check reports them with severity
    WARN, :func:`impact_assets.assets.results.contract_check_result`); the ``explained``
    statuses (``not_selected``, ``not_scaled``) pass when they carry their reason; anything else
    fails.
    """
    out: dict[str, Verdict] = {}
    for key, record in values.items():
        status = record.get("status")
        if status == steps.OK:
            try:
                out[key] = check_ok(key, record)
            except ContractError as exc:
                out[key] = (False, str(exc))
        elif status in (steps.CONTRACT_VIOLATION, steps.FAILED):
            out[key] = (False, f"{status}: {record.get('error')}")
        elif status in explained:
            detail = record.get("error") or record.get("reason")
            out[key] = (bool(detail), f"{status}: {detail}")
        else:
            out[key] = (False, f"unknown record status {status!r}")
    return out


def _timed(call: tuple[Callable[[Any], dict[str, Any]], Any]) -> tuple[dict[str, Any], float]:
    fn, payload = call
    start = time.perf_counter()
    record = fn(payload)
    return record, time.perf_counter() - start


def run_partitions(
    context: dg.AssetExecutionContext,
    label: str,
    keys: Sequence[str],
    work: Callable[[Any], dict[str, Any]],
    max_workers: int,
    describe: Callable[[dict[str, Any]], str] = lambda r: r.get("status", ""),
    *,
    payloads: Sequence[Any] | None = None,
    parallelism: str = "threads",
    pool: WorkerPool | None = None,
) -> dict[str, dict[str, Any]]:
    """Run ``work`` for every partition key in parallel; log progress; keep key order.

    ``work`` gets ``payloads[i]`` (default: the key). In worker processes (``parallelism``
    ``processes``, or ``auto`` on many keys; ``pool``'s workers) ``work`` and its payloads must
    pickle. If every key failed the step raises; otherwise failures are stored as records.
    """
    items = list(payloads) if payloads is not None else list(keys)
    results: dict[str, dict[str, Any]] = {}
    total = len(keys)
    calls = [(work, item) for item in items]
    # Every log line is an event in the instance's storage: one line per initiative on small
    # runs, about PROGRESS_LINES lines on large ones; failures are always logged one by one.
    every = max(1, math.ceil(total / PROGRESS_LINES))
    since_start = time.perf_counter()
    for count, (index, future) in enumerate(
        submit_all(_timed, calls, max_workers, parallelism, pool), start=1
    ):
        key = keys[index]
        record, seconds = future.result()
        results[key] = record
        if record.get("status") in (steps.FAILED, steps.CONTRACT_VIOLATION):
            context.log.error(
                f"{label} {count}/{total} {key}: {record['status']}: {record.get('error')}"
            )
        elif every == 1:
            context.log.info(f"{label} {count}/{total} {key}: {describe(record)}, {seconds:.2f} s")
        elif count % every == 0 or count == total:
            context.log.info(
                f"{label} {count}/{total} done, {time.perf_counter() - since_start:.1f} s"
            )
    bad = [k for k in keys if results[k].get("status") == steps.FAILED]
    if keys and len(bad) == len(keys):
        raise dg.Failure(
            description=f"{label}: every initiative in this run failed: "
            + "; ".join(f"{k}: {results[k].get('error')}" for k in keys),
            metadata={"failed": bad},
        )
    return {key: results[key] for key in keys}
