"""``pilot_measurement[i]`` and ``scale_measurement[i]``: MEASURE at pilot and at full scale.

Both call the same MEASURE component through ``impact_assets.steps``; SCALE is not a fourth
component (design). Initiatives that the allocation did not select get an explicit
``not_selected`` record at scale, so every initiative has a complete trail.
"""

from typing import Any

import dagster as dg

from impact_assets import steps
from impact_assets.assets import records
from impact_assets.assets.manifest import GraphSpec
from impact_assets.assets.resources import MeasureResource
from impact_assets.assets.results import (
    contract_check_result,
    partitioned_result,
    stage_asset,
)
from impact_assets.contracts import MeasureResult


def _summary(record: dict[str, Any]) -> dict[str, Any]:
    if record.get("status") != records.OK:
        return {"reason": record.get("reason")} if record.get("reason") else {}
    return {
        "model_type": record.get("model_type"),
        "effect_estimate": record.get("effect_estimate"),
        "ci_lower": record.get("ci_lower"),
        "ci_upper": record.get("ci_upper"),
        "p_value": record.get("p_value"),
        "sample_size": record.get("sample_size"),
        "true_effect": record.get("true_effect"),
    }


def _describe(record: dict[str, Any]) -> str:
    if record.get("status") == records.OK:
        return str(record.get("model_type"))
    return str(record.get("status"))


def _measure_all(
    context: dg.AssetExecutionContext, spec: GraphSpec, component, keys: list[str], phase: str
) -> dict[str, dict[str, Any]]:
    """MEASURE every key in ``phase``, in worker processes when the manifest's parallelism says so."""
    sample_size = spec.config.scale_sample_size if phase == steps.SCALE else None
    return records.run_partitions(
        context,
        phase,
        keys,
        records.measure_record,
        spec.config.max_workers,
        _describe,
        payloads=[(component, spec.initiative(key), phase, sample_size) for key in keys],
        parallelism=spec.config.parallelism,
    )


def verify_measurements(values: dict[str, dict[str, Any]], phase: str) -> dict[str, tuple]:
    """Contract verdict per initiative for stored measurement records."""

    def check(key: str, record: dict[str, Any]) -> records.Verdict:
        result = MeasureResult.from_dict(record)
        if result.initiative_id != key or result.phase != phase:
            return (
                False,
                f"record for {key!r} has initiative_id={result.initiative_id!r}, "
                f"phase={result.phase!r}",
            )
        return (True, "MeasureResult valid")

    return records.verdicts(values, check, (records.FAILED, records.NOT_SELECTED))


def build(spec: GraphSpec) -> list:
    partitions = spec.partitions

    @dg.asset(
        **stage_asset(
            "pilot_measurement",
            (
                "MEASURE at pilot scale for one initiative: the causal effect estimate with its "
                "confidence interval and p-value (None where the method has none)."
            ),
            spec,
        )
    )
    def pilot_measurement(
        context: dg.AssetExecutionContext, measure: MeasureResource
    ) -> dg.MaterializeResult:
        values = _measure_all(
            context, spec, measure.build(), list(context.partition_keys), steps.PILOT
        )
        return partitioned_result(context, values, measure.describe(), _summary)

    @dg.asset(
        **stage_asset(
            "scale_measurement",
            (
                "MEASURE again at scale_sample_size for initiatives the portfolio selected; an "
                "explicit not_selected record (no measurement) for the others."
            ),
            spec,
        )
    )
    def scale_measurement(
        context: dg.AssetExecutionContext,
        measure: MeasureResource,
        allocation: dict[str, dict[str, Any]],
    ) -> dg.MaterializeResult:
        keys = list(context.partition_keys)
        selected = [key for key in keys if allocation[key].get("selected")]
        measured = (
            _measure_all(context, spec, measure.build(), selected, steps.SCALE) if selected else {}
        )
        values = {
            key: measured[key]
            if key in measured
            else {
                "initiative_id": key,
                "status": records.NOT_SELECTED,
                "reason": allocation[key].get("reason", "not selected"),
            }
            for key in keys
        }
        context.log.info(f"scale: measured {len(selected)} selected of {len(keys)} initiatives")
        return partitioned_result(context, values, measure.describe(), _summary)

    @dg.asset_check(
        asset=pilot_measurement,
        name="pilot_measurement_contract",
        blocking=True,
        partitions_def=partitions,
        description="MeasureResult contract: ci_lower <= estimate <= ci_upper, n >= 30, "
        "p in [0, 1] or None, finite numbers, phase 'pilot'.",
    )
    def pilot_measurement_contract(pilot_measurement: dict) -> dg.AssetCheckResult:
        return contract_check_result(
            "pilot_measurement_contract",
            pilot_measurement,
            verify_measurements(pilot_measurement, steps.PILOT),
        )

    @dg.asset_check(
        asset=scale_measurement,
        name="scale_measurement_contract",
        blocking=True,
        partitions_def=partitions,
        description="MeasureResult contract for scaled initiatives (phase 'scale'); "
        "not_selected records for the others.",
    )
    def scale_measurement_contract(scale_measurement: dict) -> dg.AssetCheckResult:
        return contract_check_result(
            "scale_measurement_contract",
            scale_measurement,
            verify_measurements(scale_measurement, steps.SCALE),
        )

    return [
        pilot_measurement,
        scale_measurement,
        pilot_measurement_contract,
        scale_measurement_contract,
    ]
