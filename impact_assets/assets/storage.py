"""A JSON IO manager: one file per asset partition, atomic writes, no pickle.

Partitioned values are always ``{partition_key: value}``, for one partition, for a range and for a
fan-in over every partition (so a one-initiative manifest never changes an input's shape).
Files live under ``<base_dir>/<asset key path>/<partition>.json`` (unpartitioned:
``<base_dir>/<asset key path>.json``); ``base_dir`` defaults to the instance's storage directory.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field

from impact_assets.atomic import write_bytes_atomic, write_files_atomic
from impact_assets.config import INITIATIVE_ID_PATTERN


def canonical_json(value: Any) -> str:
    """Deterministic strict JSON: sorted keys, no NaN/Infinity."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


#: Records keep where their inputs came from under this key; it is not part of their content.
LINEAGE_KEY = "lineage"


def content_hash(value: Any) -> str:
    """SHA-256 of the canonical JSON of ``value``, ignoring a top-level ``lineage`` entry.

    Lineage (storage ids, run ids) changes on every run even when the content does not; leaving
    it out makes data versions content hashes, so unchanged inputs do not look stale.
    """
    if isinstance(value, dict) and LINEAGE_KEY in value:
        value = {k: v for k, v in value.items() if k != LINEAGE_KEY}
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()


#: One encoder for every stored file (``json.dumps`` with options builds a new one each call).
_ENCODER = json.JSONEncoder(sort_keys=True, allow_nan=False)


def json_bytes(value: Any) -> bytes:
    """``value`` as the stored file: strict JSON with sorted keys, one top-level entry a line.

    A record reads field by field (``"status": "ok"``, ``"ci_lower": 1.5``, ...) with nested
    values on their field's line; each value is encoded compactly by ``json``'s C encoder (an
    ``indent`` would switch it to the pure-Python one, docs/performance.md).
    """
    encode = _ENCODER.encode
    if isinstance(value, dict) and value and all(isinstance(key, str) for key in value):
        entries = (f"{encode(key)}: {encode(value[key])}" for key in sorted(value))
        return ("{\n  " + ",\n  ".join(entries) + "\n}\n").encode("utf-8")
    return (encode(value) + "\n").encode("utf-8")


def write_json_atomic(path: Path, value: Any, *, sync: bool = True) -> None:
    """Write ``value`` as strict JSON (:func:`json_bytes`) through a temp file and an atomic
    rename."""
    write_bytes_atomic(path, json_bytes(value), sync=sync)


class MissingPartitionsError(dg.Failure):
    """Upstream partitions have not been materialized."""


class JsonIOManager(dg.ConfigurableIOManager):
    """Stores asset values as JSON files, one per partition.

    With ``fsync`` (the default) each file is flushed to disk before it replaces the old one, so
    a stored value survives an operating-system crash as well as a killed process; without it,
    only the latter (the temp-file rename). Only the IO manager's own files are flushed.
    """

    base_dir: str | None = Field(
        default=None, description="Where files go; default: <instance storage>/impact_assets."
    )
    fsync: bool = Field(
        default=True, description="Flush each stored file to disk before it replaces the old one."
    )

    def _root(self, instance: dg.DagsterInstance | None) -> Path:
        if self.base_dir:
            return Path(self.base_dir)
        if instance is None:
            instance = dg.DagsterInstance.get()
        return Path(instance.storage_directory()) / "impact_assets"

    def _path(self, root: Path, asset_key: dg.AssetKey, partition: str | None) -> Path:
        parts = list(asset_key.path)
        if partition is None:
            return root.joinpath(*parts[:-1], f"{parts[-1]}.json")
        if not INITIATIVE_ID_PATTERN.fullmatch(partition):
            raise ValueError(
                f"refusing to store partition {partition!r}: not a valid initiative id"
            )
        return root.joinpath(*parts, f"{partition}.json")

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        if obj is None:
            return
        root = self._root(None if self.base_dir else context.step_context.instance)
        sync = self.fsync
        key = context.asset_key
        if context.has_asset_partitions:
            expected = list(context.asset_partition_keys)
            if not isinstance(obj, dict) or set(obj) != set(expected):
                got = sorted(obj) if isinstance(obj, dict) else type(obj).__name__
                raise ValueError(
                    f"asset {key.to_user_string()}: a partitioned value must be a dict keyed by "
                    f"the run's partitions {sorted(expected)}, got {got}"
                )
            files = {self._path(root, key, p): json_bytes(obj[p]) for p in expected}
            write_files_atomic(files, sync=sync)
        else:
            write_json_atomic(self._path(root, key, None), obj, sync=sync)

    def load_input(self, context: dg.InputContext) -> Any:
        partitions = list(context.asset_partition_keys) if context.has_asset_partitions else None
        allow_missing = bool((context.definition_metadata or {}).get("allow_missing_partitions"))
        return self.read(context.instance, context.asset_key, partitions, allow_missing)

    def read(
        self,
        instance: dg.DagsterInstance | None,
        key: dg.AssetKey,
        partitions: list[str] | None,
        allow_missing: bool = False,
    ) -> Any:
        """The stored value of ``key``: ``{partition: value}`` for ``partitions``, or the one
        value of an unpartitioned asset; missing files raise :class:`MissingPartitionsError`
        naming them, unless ``allow_missing`` (then they are left out)."""
        root = self._root(instance)
        if partitions is None:
            path = self._path(root, key, None)
            if not path.exists():
                raise MissingPartitionsError(
                    description=f"{key.to_user_string()} has not been materialized (no {path})"
                )
            return json.loads(path.read_text(encoding="utf-8"))
        values: dict[str, Any] = {}
        missing: list[str] = []
        for partition in partitions:
            path = self._path(root, key, partition)
            try:
                values[partition] = json.loads(path.read_text(encoding="utf-8"))
            except FileNotFoundError:
                missing.append(partition)
        if missing and not allow_missing:
            raise MissingPartitionsError(
                description=(
                    f"{key.to_user_string()} has not been materialized for "
                    f"{len(missing)} initiative(s): {', '.join(missing)}"
                ),
                metadata={"missing": missing},
            )
        return values
