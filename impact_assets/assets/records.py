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

import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from impact_assets.contracts import ContractError
from impact_assets.parallel import submit_all

if TYPE_CHECKING:
    import dagster as dg

# Dagster is imported where it is used, not here: MEASURE worker processes import this module for
# measure_record and should not pay for importing Dagster.

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


Verdict = tuple[bool, str]


def verdicts(
    values: Mapping[str, Mapping[str, Any]],
    check_ok: Callable[[str, Mapping[str, Any]], Verdict],
    explained: tuple[str, ...] = (FAILED,),
) -> dict[str, Verdict]:
    """The contract check's verdict for every initiative's stored record.

    ``ok`` records go through ``check_ok`` (a :class:`ContractError` fails them); a
    ``contract_violation`` fails; the ``explained`` statuses pass when they carry their error or
    reason; anything else fails.
    """
    out: dict[str, Verdict] = {}
    for key, record in values.items():
        status = record.get("status")
        if status == OK:
            try:
                out[key] = check_ok(key, record)
            except ContractError as exc:
                out[key] = (False, str(exc))
        elif status == CONTRACT_VIOLATION:
            out[key] = (False, str(record.get("error")))
        elif status in explained:
            detail = record.get("error") or record.get("reason")
            out[key] = (bool(detail), f"{status}: {detail}")
        else:
            out[key] = (False, f"unknown record status {status!r}")
    return out


def json_safe(value: Any) -> Any:
    """A strict-JSON copy of a component's raw output, for the record: enums and numpy scalars as
    plain values, NaN and infinities as their text (``"nan"``), anything else as its ``repr``."""
    from impact_assets.contracts import _json_safe as convert

    def clean(item: Any) -> Any:
        if isinstance(item, dict):
            return {str(k): clean(v) for k, v in item.items()}
        if isinstance(item, list):
            return [clean(v) for v in item]
        if isinstance(item, float) and not math.isfinite(item):
            return repr(item)
        if item is None or isinstance(item, str | int | float | bool):
            return item
        return repr(item)

    try:
        return clean(convert(value))
    except Exception:
        return repr(value)


def measure_record(task: tuple) -> dict[str, Any]:
    """One guarded MEASURE call, ``(component, initiative, phase, sample_size)``: a top-level
    function so that worker processes can run it."""
    from impact_assets import steps

    component, initiative, phase, sample_size = task
    key = initiative.initiative_id
    return guarded(
        f"{phase}_measurement",
        key,
        lambda: component.execute(steps.measure_event(initiative, phase, sample_size)),
        lambda raw: steps.validate_measure(raw, key, phase),
    )


#: Progress lines per stage on runs over more initiatives than this.
PROGRESS_LINES = 10


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
) -> dict[str, dict[str, Any]]:
    """Run ``work`` for every partition key in parallel; log progress; keep key order.

    ``work`` gets ``payloads[i]`` (default: the key). With ``parallelism`` ``processes`` (or
    ``auto`` on many keys) ``work`` and its payloads must be picklable (top-level functions).
    If every key failed the step raises, so a one-initiative run that fails is red and stores
    nothing; otherwise failures are stored as records.
    """
    items = list(payloads) if payloads is not None else list(keys)
    results: dict[str, dict[str, Any]] = {}
    total = len(keys)
    calls = [(work, item) for item in items]
    # Every event is a database write: one line per initiative on small runs, and on large ones
    # about PROGRESS_LINES progress lines; failures are always logged one by one.
    every = max(1, math.ceil(total / PROGRESS_LINES))
    since_start = time.perf_counter()
    for count, (index, future) in enumerate(
        submit_all(_timed, calls, max_workers, parallelism), start=1
    ):
        key = keys[index]
        record, seconds = future.result()
        results[key] = record
        if record.get("status") in (FAILED, CONTRACT_VIOLATION):
            context.log.error(
                f"{label} {count}/{total} {key}: {record['status']}: {record.get('error')}"
            )
        elif every == 1:
            context.log.info(f"{label} {count}/{total} {key}: {describe(record)}, {seconds:.2f} s")
        elif count % every == 0 or count == total:
            context.log.info(
                f"{label} {count}/{total} done, {time.perf_counter() - since_start:.1f} s"
            )
    bad = [k for k in keys if results[k].get("status") == FAILED]
    if keys and len(bad) == len(keys):
        import dagster as dg

        raise dg.Failure(
            description=f"{label}: every initiative in this run failed: "
            + "; ".join(f"{k}: {results[k].get('error')}" for k in keys),
            metadata={"failed": bad},
        )
    return {key: results[key] for key in keys}
