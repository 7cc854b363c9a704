"""Build the ``MaterializeResult`` of a stage asset: per-partition metadata and a content version."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import dagster as dg

from impact_assets.assets.storage import content_hash

#: The code version every stage asset carries; bump it when stage wiring changes what is stored.
CODE_VERSION = "1"


def stage_asset(name: str, description: str, spec=None, **extra: Any) -> dict[str, Any]:
    """Keyword arguments shared by every asset of the ``impact`` group.

    With ``spec`` the asset is partitioned by initiative under the manifest's backfill policy;
    without it, unpartitioned and single-run.
    """
    kwargs: dict[str, Any] = {
        "name": name,
        "group_name": "impact",
        "code_version": CODE_VERSION,
        "kinds": {"python"},
        "description": description,
        **extra,
    }
    if spec is None:
        kwargs["backfill_policy"] = dg.BackfillPolicy.single_run()
    else:
        kwargs["partitions_def"] = spec.partitions
        kwargs["backfill_policy"] = spec.backfill_policy
    return kwargs


def data_version_for(values: Mapping[str, Any]) -> dg.DataVersion:
    """Content hash of the stored value: of the record itself for a one-initiative run, of the
    ``{initiative: record}`` mapping for a multi-initiative run (Dagster has one data version per
    output, not per partition, in a range run)."""
    if len(values) == 1:
        return dg.DataVersion(content_hash(next(iter(values.values()))))
    return dg.DataVersion(content_hash(dict(values)))


def partitioned_result(
    context: dg.AssetExecutionContext,
    values: dict[str, dict[str, Any]],
    component: Mapping[str, Any] | None,
    summary: Callable[[dict[str, Any]], Mapping[str, Any]] = lambda record: {},
    extra_metadata: Mapping[str, Any] | None = None,
) -> dg.MaterializeResult:
    """Attach per-partition metadata (status, content hash, headline numbers) and return."""
    for key, record in values.items():
        metadata: dict[str, Any] = {
            "status": record.get("status", ""),
            "content_sha256": content_hash(record),
        }
        if record.get("error"):
            metadata["error"] = dg.MetadataValue.text(str(record["error"]))
        for name, value in summary(record).items():
            if value is not None:
                metadata[name] = value
        context.add_asset_metadata(metadata, partition_key=key)
    # Dagster merges asset-level metadata into every partition's event, so only what is true
    # for each partition goes here.
    metadata: dict[str, Any] = {}
    if component is not None:
        metadata["component"] = dg.MetadataValue.json(dict(component))
    metadata.update(extra_metadata or {})
    return dg.MaterializeResult(
        value=values, metadata=metadata, data_version=data_version_for(values)
    )


def contract_check_result(
    name: str,
    values: Mapping[str, Mapping[str, Any]],
    verdicts: Mapping[str, tuple[bool, str]],
) -> dg.AssetCheckResult:
    """One check result for every initiative in the run: a table keyed by initiative, and the
    failing initiatives named in the description."""
    failing = [key for key, (ok, _) in verdicts.items() if not ok]
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
    if failing:
        description = f"{name}: contract violated for {', '.join(failing)}: " + "; ".join(
            verdicts[key][1] for key in failing
        )
    else:
        description = f"{name}: contract holds for all {len(verdicts)} initiative(s)"
    return dg.AssetCheckResult(
        passed=not failing,
        description=description[:2000],
        metadata={"initiatives": table, "failing": dg.MetadataValue.json(failing)},
    )
