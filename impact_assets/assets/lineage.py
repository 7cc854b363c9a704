"""Materialization lineage, read for the exact partition.

Dagster's own input pointers are not partition-aware (dagster-notes §6), so every report records,
for each input it consumed, the storage id, run id, partition, data version, code version and
content hash and resolved component of that partition's latest materialization, and checks that the content hash equals
the hash of the value it actually loaded. :func:`latest_materializations` is the one way the
project reads materialization pointers (``DagsterInstance.fetch_materializations``).
"""

from __future__ import annotations

from typing import Any

import dagster as dg

from impact_assets.assets.storage import content_hash

#: The tags Dagster writes on every materialization event for its data and code versions (shown
#: as "Data version" and "Code version" in the UI).
DATA_VERSION_TAG = "dagster/data_version"
CODE_VERSION_TAG = "dagster/code_version"


def _metadata_value(entry: Any) -> Any:
    return getattr(entry, "value", entry)


def _pointer(record: dg.EventLogRecord, asset: str, partition: str | None) -> dict[str, Any]:
    """What lineage keeps of one materialization record."""
    event = record.asset_materialization
    metadata = event.metadata if event is not None else {}
    tags = (event.tags if event is not None else None) or {}
    return {
        "asset": asset,
        "partition": partition,
        "storage_id": record.storage_id,
        "run_id": record.run_id,
        "timestamp": record.timestamp,
        "data_version": tags.get(DATA_VERSION_TAG),
        "code_version": tags.get(CODE_VERSION_TAG),
        "content_sha256": _metadata_value(metadata.get("content_sha256")),
        "component": _metadata_value(metadata.get("component")),
    }


def latest_materializations(
    instance: dg.DagsterInstance, asset: str, partitions: list[str] | None
) -> dict[str | None, dict[str, Any]]:
    """Pointers to the latest materialization of each of ``partitions`` of ``asset`` (keyed by
    partition; ``partitions=None``: the unpartitioned asset's, keyed by ``None``). Partitions
    never materialized are left out.

    Reads the newest materializations of those partitions page by page until each has been seen
    (one page after a run that materialized them all).
    """
    key = dg.AssetKey(asset)
    if partitions is None:
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key), limit=1
        ).records
        return {None: _pointer(records[0], asset, None)} if records else {}
    wanted = set(partitions)
    pointers: dict[str | None, dict[str, Any]] = {}
    cursor = None
    while wanted - pointers.keys():
        result = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, asset_partitions=sorted(wanted - pointers.keys())),
            limit=max(len(wanted), 100),
            cursor=cursor,
        )
        for record in result.records:
            partition = record.partition_key
            if partition in wanted and partition not in pointers:
                pointers[partition] = _pointer(record, asset, partition)
        if not result.has_more:
            break
        cursor = result.cursor
    return pointers


def pointer_for_value(instance: dg.DagsterInstance, asset: str, value: Any) -> dict[str, Any]:
    """The latest materialization pointer of the unpartitioned ``asset``, plus whether it
    matches the value that was loaded."""
    pointer = latest_materializations(instance, asset, None).get(None)
    return with_consistency(pointer, asset, None, value)


def with_consistency(pointer: dict[str, Any] | None, asset: str, partition, value: Any) -> dict:
    """Add the hash of the loaded value and whether it matches the recorded materialization."""
    pointer = dict(pointer or {"asset": asset, "partition": partition, "storage_id": None})
    loaded = content_hash(value)
    pointer["loaded_sha256"] = loaded
    pointer["consistent"] = pointer.get("content_sha256") == loaded
    return pointer
