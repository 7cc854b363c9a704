"""Materialization lineage, read for the exact partition.

Dagster's own input pointers are not partition-aware (dagster-notes §6), so every report records,
for each input it consumed, the storage id, run id, partition, data version, code version,
content hash and resolved component config of that partition's latest materialization, and checks
that the content hash equals the hash of the value it actually loaded.
"""

from __future__ import annotations

from typing import Any

import dagster as dg
from dagster._core.definitions.data_version import DATA_VERSION_TAG

from impact_assets.assets.storage import content_hash

CODE_VERSION_TAG = "dagster/code_version"


def _metadata_value(entry: Any) -> Any:
    return getattr(entry, "value", entry)


def latest_materialization(
    instance: dg.DagsterInstance, asset: str, partition: str | None
) -> dict[str, Any] | None:
    """Pointer to the latest materialization of ``asset`` (for ``partition``), or ``None``."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=dg.AssetKey(asset),
            asset_partitions=[partition] if partition is not None else None,
        ),
        limit=1,
    ).records
    return _pointer(records[0], asset, partition) if records else None


def _pointer(record: Any, asset: str, partition: str | None) -> dict[str, Any]:
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


def pointer_for_value(
    instance: dg.DagsterInstance, asset: str, partition: str | None, value: Any
) -> dict[str, Any]:
    """The latest materialization pointer plus whether it matches the value that was loaded."""
    return with_consistency(
        latest_materialization(instance, asset, partition), asset, partition, value
    )


def latest_materializations(
    instance: dg.DagsterInstance, asset: str, partitions: list[str]
) -> dict[str, dict[str, Any]]:
    """Latest materialization pointers for many partitions of one asset, in two queries."""
    key = dg.AssetKey(asset)
    by_partition = instance.get_latest_storage_id_by_partition(
        key, dg.DagsterEventType.ASSET_MATERIALIZATION
    )
    wanted = {by_partition[p]: p for p in partitions if p in by_partition}
    pointers: dict[str, dict[str, Any]] = {}
    if not wanted:
        return pointers
    fetched = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, storage_ids=list(wanted)), limit=len(wanted)
    ).records
    for record in fetched:
        partition = wanted[record.storage_id]
        pointers[partition] = _pointer(record, asset, partition)
    return pointers


def with_consistency(pointer: dict[str, Any] | None, asset: str, partition, value: Any) -> dict:
    """Add the hash of the loaded value and whether it matches the recorded materialization."""
    pointer = dict(pointer or {"asset": asset, "partition": partition, "storage_id": None})
    loaded = content_hash(value)
    pointer["loaded_sha256"] = loaded
    pointer["consistent"] = pointer.get("content_sha256") == loaded
    return pointer
