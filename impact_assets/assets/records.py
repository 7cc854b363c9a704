"""Per-initiative records stored by the partitioned assets, and the guarded fan-out that makes them.

Every partition of every stage asset holds a record with a ``status``:

``ok``
    the stage result (a contract dict) plus ``status``.
``failed``
    the stage raised for this initiative (bad data, a missing file, ...). The error is kept; the
    other initiatives go on; downstream stages carry the failure forward and ``portfolio`` refuses
    to allocate over a silent subset.
``contract_violation``
    the component returned something that breaks the stage contract. The raw output and the
    error are kept; the blocking contract check fails and stops everything downstream.
``not_selected`` / ``not_scaled``
    explicit "nothing to do" records for initiatives the allocation did not fund, so every
    initiative has a complete trail and backfills end green.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

import dagster as dg

from impact_assets.contracts import ContractError

OK = "ok"
FAILED = "failed"
CONTRACT_VIOLATION = "contract_violation"
NOT_SELECTED = "not_selected"
NOT_SCALED = "not_scaled"


def is_ok(record: Mapping[str, Any] | None) -> bool:
    return bool(record) and record.get("status") == OK


def failure(stage: str, initiative_id: str, error: str, **extra: Any) -> dict[str, Any]:
    return {
        "initiative_id": initiative_id,
        "status": FAILED,
        "stage": stage,
        "error": error,
        **extra,
    }


def guarded(
    stage: str,
    initiative_id: str,
    produce: Callable[[], Mapping[str, Any]],
    validate: Callable[[Mapping[str, Any]], dict[str, Any]],
) -> dict[str, Any]:
    """Run one stage call for one initiative and turn the outcome into a record."""
    try:
        raw = produce()
    except Exception as exc:  # one initiative's failure must not hide the others' results
        return failure(stage, initiative_id, f"{type(exc).__name__}: {exc}")
    try:
        return {**validate(raw), "status": OK}
    except ContractError as exc:
        return {
            "initiative_id": initiative_id,
            "status": CONTRACT_VIOLATION,
            "stage": stage,
            "error": str(exc),
            "raw": json_safe(raw),
        }


def json_safe(value: Any) -> Any:
    """Best-effort JSON-safe copy of a component's raw output, for the record."""
    from impact_assets.contracts import _json_safe as convert

    try:
        return convert(value)
    except Exception:
        return repr(value)


def run_partitions(
    context: dg.AssetExecutionContext,
    label: str,
    keys: Sequence[str],
    work: Callable[[str], dict[str, Any]],
    max_workers: int,
    describe: Callable[[dict[str, Any]], str] = lambda r: r.get("status", ""),
) -> dict[str, dict[str, Any]]:
    """Run ``work`` for every partition key in parallel; log progress; keep key order.

    If every key failed the step raises, so a one-initiative run that fails is red and stores
    nothing; otherwise failures are stored as records.
    """
    results: dict[str, dict[str, Any]] = {}
    total = len(keys)
    lock = threading.Lock()
    done = [0]

    def timed(key: str) -> tuple[str, dict[str, Any], float]:
        start = time.perf_counter()
        record = work(key)
        return key, record, time.perf_counter() - start

    with ThreadPoolExecutor(max_workers=max(1, min(max_workers, total or 1))) as pool:
        futures = [pool.submit(timed, key) for key in keys]
        for future in as_completed(futures):
            key, record, seconds = future.result()
            with lock:
                done[0] += 1
                count = done[0]
            results[key] = record
            if record.get("status") in (FAILED, CONTRACT_VIOLATION):
                context.log.error(
                    f"{label} {count}/{total} {key}: {record['status']}: {record.get('error')}"
                )
            else:
                context.log.info(
                    f"{label} {count}/{total} {key}: {describe(record)}, {seconds:.2f} s"
                )
    bad = [k for k in keys if results[k].get("status") == FAILED]
    if keys and len(bad) == len(keys):
        raise dg.Failure(
            description=f"{label}: every initiative in this run failed: "
            + "; ".join(f"{k}: {results[k].get('error')}" for k in keys),
            metadata={"failed": bad},
        )
    return {key: results[key] for key in keys}
