"""Per-partition metadata for a step over many partitions, added in one update.

A stage step materializes every initiative of its run, and each initiative's materialization
carries its own metadata (status, content hash, headline numbers, lineage). Dagster's public way
to attach it is ``context.add_asset_metadata(metadata, partition_key=key)`` once per partition,
and in Dagster 1.13 each such call is linear in the partitions of the step: it lists the step's
partition range again to check the key, then copies and type-checks the whole accumulated
metadata of the step to add one entry. Over a step of N partitions that is quadratic: 2.3 s of
the run's own process at N = 1,000 (0.18 s at N = 200), spent while the MEASURE workers idle
between steps (docs/performance.md, session 6).

:func:`add_partition_metadata` does what those N calls do, with one check of the keys and one
copy: it builds the step's metadata accumulator, the object the calls would have built one
entry at a time, in a single update. Where that accumulator is not where Dagster 1.13 keeps it
(another Dagster version), it falls back to the public calls, so the result is the same either
way, only slower; ``tests/pipeline_assets/test_partition_metadata.py`` fails if the fast path
is no longer taken, and checks that both give the same materialization events.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster._core.execution.context.metadata_logging import (
    AssetMetadataHandle,
    OutputMetadataAccumulator,
)


def _accumulator_holder(context: dg.AssetExecutionContext) -> Any | None:
    """The step context holding the metadata accumulator, where Dagster 1.13 keeps it."""
    step = getattr(context, "_step_execution_context", None)
    if isinstance(getattr(step, "_metadata_accumulator", None), OutputMetadataAccumulator):
        return step
    return None


def add_partition_metadata(
    context: dg.AssetExecutionContext, metadata_by_key: Mapping[str, Mapping[str, Any]]
) -> None:
    """``context.add_asset_metadata(metadata, partition_key=key)`` for every ``key, metadata``
    of ``metadata_by_key``, as one update (see the module docstring).

    Metadata added earlier for the same partition is kept and updated, as with the public
    call. A key that is not among the step's partitions raises Dagster's own error for it (the
    step then fails).
    """
    holder = _accumulator_holder(context)
    if holder is None or len(metadata_by_key) < 2:
        for key, metadata in metadata_by_key.items():
            context.add_asset_metadata(metadata, partition_key=key)
        return
    asset_key = context.asset_key  # one asset per step, as add_asset_metadata requires
    targeted = set(context.partition_keys)
    for key in metadata_by_key:
        if key not in targeted:
            raise dg.DagsterInvariantViolationError(
                f"Attempted to add metadata for partition key '{key}' that is not being targeted."
            )
    merged = dict(holder._metadata_accumulator.per_output_metadata)
    for key, metadata in metadata_by_key.items():
        handle = AssetMetadataHandle(asset_key=asset_key, partition_key=key)
        merged[handle] = {**merged.get(handle, {}), **metadata}
    holder._metadata_accumulator = OutputMetadataAccumulator(per_output_metadata=merged)
