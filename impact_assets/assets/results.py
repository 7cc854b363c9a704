"""The shape of a stage asset: its definition (with its contract checks in the same step), its
``MaterializeResult`` (a little metadata per partition and a content version) and its check
results.

A contract check fails with severity ERROR (blocking: nothing downstream runs) when a record
breaks its stage contract, and with severity WARN when the stage failed for an initiative (the
record keeps the error; the other initiatives go on; ``portfolio`` refuses to allocate over a
subset). Either way the check's description names the initiatives and their errors.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import dagster as dg

from impact_assets import steps
from impact_assets.assets.lineage import latest_materializations
from impact_assets.assets.storage import content_hash
from impact_assets.assets.tables import significant
from impact_assets.contracts import json_safe

#: The code version every stage asset carries; bump it when stage wiring changes what is stored.
CODE_VERSION = "1"


_GROUP = {"group_name": "impact", "code_version": CODE_VERSION, "kinds": {"python"}}


def _partitioning(spec) -> dict[str, Any]:
    """By initiative under the manifest's backfill policy with ``spec``; else unpartitioned."""
    if spec is None:
        return {"backfill_policy": dg.BackfillPolicy.single_run()}
    return {"partitions_def": spec.partitions, "backfill_policy": spec.backfill_policy}


def stage_asset(name: str, description: str, spec=None, **extra: Any) -> dict[str, Any]:
    """``@dg.asset`` keyword arguments of an asset of the ``impact`` group without checks.

    With ``spec`` the asset is partitioned by initiative under the manifest's backfill policy;
    without it, unpartitioned and single-run.
    """
    return {"name": name, **_GROUP, "description": description, **_partitioning(spec), **extra}


@dataclass(frozen=True)
class ContractCheck:
    """A blocking check of a stage asset: its name, what it verifies, and how.

    ``evaluate`` takes the asset's value (``{initiative: record}`` when partitioned) and returns
    the verdict; the check's name and asset are filled in by :func:`materialize_and_check`.
    """

    name: str
    description: str
    evaluate: Callable[[Any], dg.AssetCheckResult]


def contract_check(
    name: str,
    description: str,
    verdicts: Callable[[Mapping[str, Mapping[str, Any]]], Mapping[str, tuple[bool, str]]],
) -> ContractCheck:
    """A check with one verdict per initiative of the run (:func:`contract_check_result`)."""
    return ContractCheck(
        name, description, lambda values: contract_check_result(name, values, verdicts(values))
    )


def checked_asset(
    name: str,
    description: str,
    checks: Sequence[ContractCheck],
    spec=None,
    **extra: Any,
) -> dict[str, Any]:
    """``@dg.multi_asset`` keyword arguments of one asset of the ``impact`` group whose blocking
    contract checks run in the asset's own step (as ``check_specs``).

    The step is subsettable, so a check can still run alone (the UI's "Execute" on a check, or
    a selection of checks): it then checks the stored value without materializing again
    (:func:`materialize_and_check`). A failing check fails the step after the materialization
    is stored, so nothing downstream runs on it, as with a separate blocking check.
    """
    partitioning = _partitioning(spec)
    return {
        "name": name,
        "outs": {name: dg.AssetOut(**_GROUP, description=description, is_required=False)},
        "check_specs": [
            dg.AssetCheckSpec(
                check.name,
                asset=name,
                blocking=True,
                description=check.description,
            )
            for check in checks
        ],
        "can_subset": True,
        **partitioning,
        **extra,
    }


def materialize_and_check(
    context: dg.AssetExecutionContext,
    asset: str,
    checks: Sequence[ContractCheck],
    materialize: Callable[[], dg.MaterializeResult],
    spec=None,
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    """The step of a :func:`checked_asset`: materialize the asset (its IO manager stores the
    value as it is yielded), then check that value. In a run that selects only the checks, the
    value stored before is loaded through the asset's IO manager (whichever it is) for the run's
    partitions, and checked."""
    if dg.AssetKey(asset) in context.selected_asset_keys:
        result = materialize()
        yield result
        value = result.value
    else:
        value = _load_stored(context, asset, spec.partitions if spec is not None else None)
    selected = {key.name for key in context.selected_asset_check_keys}
    for check in checks:
        if check.name in selected:
            verdict = check.evaluate(value)
            yield dg.AssetCheckResult(
                check_name=check.name,
                asset_key=asset,
                passed=verdict.passed,
                severity=verdict.severity,
                description=verdict.description,
                metadata=verdict.metadata,
            )


def _load_stored(
    context: dg.AssetExecutionContext, asset: str, partitions_def: dg.PartitionsDefinition | None
) -> Any:
    """The stored value of ``asset`` for the run's partitions (every partition when the run has
    none), through its IO manager's public ``load_input``."""
    key_range = None
    if partitions_def is not None:
        if context.has_partition_key_range:
            key_range = context.partition_key_range
        else:
            # A checks-only run launched without a partition (the UI's "Execute" on an
            # asset-level check): check every initiative of the manifest.
            keys = partitions_def.get_partition_keys()
            key_range = dg.PartitionKeyRange(keys[0], keys[-1])
    input_context = dg.build_input_context(
        asset_key=dg.AssetKey(asset),
        instance=context.instance,
        asset_partitions_def=partitions_def,
        asset_partition_key_range=key_range,
    )
    value = context.resources.io_manager.load_input(input_context)
    if partitions_def is None:
        return value
    # in manifest order, whatever order the IO manager returns them in
    order = partitions_def.get_partition_keys()
    return {key: value[key] for key in order if key in value}


def data_version_for(values: Mapping[str, Any]) -> dg.DataVersion:
    """Content hash of the stored value: of the record itself for a one-initiative run, of the
    ``{initiative: record}`` mapping for a multi-initiative run (Dagster has one data version per
    output, not per partition, in a range run)."""
    if len(values) == 1:
        return dg.DataVersion(content_hash(next(iter(values.values()))))
    return dg.DataVersion(content_hash(dict(values)))


def partition_data_version(
    context: dg.AssetExecutionContext, values: Mapping[str, Any]
) -> dg.DataVersion:
    """The data version of a partitioned run's output: it changes for a partition exactly when
    that partition's content changes.

    Dagster 1.13 stamps one data version on every partition of a range run (a ``DataVersion`` is
    per output, ``DataVersionsByPartition`` only exists for observable source assets), and it
    decides whether ``evaluation[i]`` is stale by comparing the data versions of
    ``pilot_measurement[i]``'s materializations before and after the one it read. So when every
    partition of the run has the content its latest materialization recorded
    (``content_sha256``) and those materializations share one data version, that version is kept:
    a no-op refresh leaves every dependent in sync. Otherwise a one-initiative run gets its
    record's own content hash and a multi-initiative run the hash of its
    ``{initiative: record}`` mapping (:func:`data_version_for`), so a real change marks the
    dependents of exactly the partitions the run materialized.
    """
    previous = latest_materializations(context.instance, context.asset_key.path[-1], list(values))
    unchanged = all(
        key in previous and previous[key].get("content_sha256") == content_hash(record)
        for key, record in values.items()
    )
    versions = {pointer.get("data_version") for pointer in previous.values()}
    if values and unchanged and len(versions) == 1 and None not in versions:
        return dg.DataVersion(versions.pop())
    return data_version_for(values)


def partitioned_result(
    context: dg.AssetExecutionContext,
    values: dict[str, dict[str, Any]],
    component: Mapping[str, Any] | None,
    summary: Callable[[dict[str, Any]], Mapping[str, Any]] = lambda record: {},
    extra_metadata: Mapping[str, Any] | None = None,
) -> dg.MaterializeResult:
    """A stage asset's result: per partition its status, content hash, error and headline
    numbers (``summary``, floats shown to six significant digits); for the run, the resolved component and ``extra_metadata``. The full
    record stays in the stored value."""
    for key, record in values.items():
        metadata: dict[str, Any] = {
            "status": record.get("status", ""),
            "content_sha256": content_hash(record),
        }
        if record.get("error"):
            metadata["error"] = dg.MetadataValue.text(str(record["error"]))
        for name, value in summary(record).items():
            if value is not None:
                metadata[name] = (
                    value if isinstance(value, dg.MetadataValue) else significant(json_safe(value))
                )
        context.add_asset_metadata(metadata, partition_key=key)
    # Dagster merges asset-level metadata into every partition's event, so only what is true
    # for each partition goes here.
    metadata: dict[str, Any] = {}
    if component is not None:
        metadata["component"] = dg.MetadataValue.json(dict(component))
    metadata.update(extra_metadata or {})
    return dg.MaterializeResult(
        value=values, metadata=metadata, data_version=partition_data_version(context, values)
    )


def contract_check_result(
    name: str,
    values: Mapping[str, Mapping[str, Any]],
    verdicts: Mapping[str, tuple[bool, str]],
) -> dg.AssetCheckResult:
    """One check result for every initiative in the run: a table keyed by initiative, and the
    failing initiatives named in the description."""
    failing = [key for key, (ok, _) in verdicts.items() if not ok]
    # Only initiatives whose stage failed (kept as failed records): a warning, not a stop.
    warn_only = bool(failing) and all(values[key].get("status") == steps.FAILED for key in failing)
    rows = [
        dg.TableRecord(
            {
                "initiative": key,
                "status": str(values[key].get("status", "")),
                "passed": ok,
                "detail": detail,
            }
        )
        for key, (ok, detail) in verdicts.items()
    ]
    table = dg.MetadataValue.table(
        rows,
        schema=dg.TableSchema(
            columns=[
                dg.TableColumn("initiative", "string"),
                dg.TableColumn("status", "string"),
                dg.TableColumn("passed", "bool"),
                dg.TableColumn("detail", "string"),
            ]
        ),
    )
    if warn_only:
        description = f"{name}: stage failed for {', '.join(failing)}: " + "; ".join(
            f"{key}: {verdicts[key][1]}" for key in failing
        )
    elif failing:
        description = f"{name}: contract violated for {', '.join(failing)}: " + "; ".join(
            f"{key}: {verdicts[key][1]}" for key in failing
        )
    else:
        description = f"{name}: contract holds for all {len(verdicts)} initiative(s)"
    return dg.AssetCheckResult(
        passed=not failing,
        severity=dg.AssetCheckSeverity.WARN if warn_only else dg.AssetCheckSeverity.ERROR,
        description=description[:2000],
        metadata={"initiatives": table, "failing": dg.MetadataValue.json(failing)},
    )
