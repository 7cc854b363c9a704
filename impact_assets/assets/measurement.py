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
from impact_assets.assets.resources import MeasureResource, WorkerPoolResource
from impact_assets.assets.results import (
    checked_asset,
    contract_check,
    materialize_and_check,
    partitioned_result,
)
from impact_assets.contracts import MeasureResult


def _summary(record: dict[str, Any]) -> dict[str, Any]:
    if record.get("status") != steps.OK:
        return {"reason": record.get("reason")} if record.get("reason") else {}
    return {
        "model_type": record.get("model_type"),
        "effect_estimate": record.get("effect_estimate"),
        "ci_lower": record.get("ci_lower"),
        "ci_upper": record.get("ci_upper"),
        "p_value": record.get("p_value"),
        "sample_size": record.get("sample_size"),
        "min_sample_size": record.get("min_sample_size"),
        "true_effect": record.get("true_effect"),
    }


def _describe(record: dict[str, Any]) -> str:
    if record.get("status") == steps.OK:
        return str(record.get("model_type"))
    return str(record.get("status"))


def _measure_all(
    context: dg.AssetExecutionContext,
    spec: GraphSpec,
    component,
    workers: WorkerPoolResource,
    keys: list[str],
    phase: str,
) -> dict[str, dict[str, Any]]:
    """MEASURE every key in ``phase``, in the run's worker processes when the manifest's
    parallelism says so."""
    sample_size = spec.config.scale_sample_size if phase == steps.SCALE else None
    return records.run_partitions(
        context,
        phase,
        keys,
        steps.measure_record,
        spec.config.max_workers,
        _describe,
        payloads=[(component, spec.initiative(key), phase, sample_size) for key in keys],
        parallelism=spec.config.parallelism,
        pool=workers.pool,
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

    return records.verdicts(values, check, (steps.NOT_SELECTED,))


def build(spec: GraphSpec) -> list:
    pilot_checks = [
        contract_check(
            "pilot_measurement_contract",
            "MeasureResult contract: ci_lower <= estimate <= ci_upper, n >= 30, "
            "p in [0, 1] or None, finite numbers, phase 'pilot'.",
            lambda values: verify_measurements(values, steps.PILOT),
        )
    ]
    scale_checks = [
        contract_check(
            "scale_measurement_contract",
            "MeasureResult contract for scaled initiatives (phase 'scale'); "
            "not_selected records for the others.",
            lambda values: verify_measurements(values, steps.SCALE),
        )
    ]

    @dg.multi_asset(
        **checked_asset(
            "pilot_measurement",
            (
                "MEASURE at pilot scale for one initiative: the causal effect estimate with its "
                "confidence interval and p-value (None where the method has none)."
            ),
            pilot_checks,
            spec,
        )
    )
    def pilot_measurement(
        context: dg.AssetExecutionContext,
        measure: MeasureResource,
        measure_workers: WorkerPoolResource,
    ):
        def materialize() -> dg.MaterializeResult:
            keys = list(context.partition_keys)
            values = _measure_all(
                context, spec, measure.build(), measure_workers, keys, steps.PILOT
            )
            return partitioned_result(context, values, measure.describe(), _summary)

        yield from materialize_and_check(
            context, "pilot_measurement", pilot_checks, materialize, spec
        )

    @dg.multi_asset(
        **checked_asset(
            "scale_measurement",
            (
                "MEASURE again at scale_sample_size for initiatives the portfolio selected; an "
                "explicit not_selected record (no measurement) for the others."
            ),
            scale_checks,
            spec,
        )
    )
    def scale_measurement(
        context: dg.AssetExecutionContext,
        measure: MeasureResource,
        measure_workers: WorkerPoolResource,
        allocation: dict[str, dict[str, Any]],
    ):
        def materialize() -> dg.MaterializeResult:
            keys = list(context.partition_keys)
            selected = [key for key in keys if allocation[key].get("selected")]
            measured = (
                _measure_all(context, spec, measure.build(), measure_workers, selected, steps.SCALE)
                if selected
                else {}
            )
            values = {
                key: measured[key]
                if key in measured
                else {
                    "initiative_id": key,
                    "status": steps.NOT_SELECTED,
                    "reason": allocation[key].get("reason", "not selected"),
                }
                for key in keys
            }
            context.log.info(f"scale: measured {len(selected)} selected of {len(keys)} initiatives")
            return partitioned_result(context, values, measure.describe(), _summary)

        yield from materialize_and_check(
            context, "scale_measurement", scale_checks, materialize, spec
        )

    return [pilot_measurement, scale_measurement]
