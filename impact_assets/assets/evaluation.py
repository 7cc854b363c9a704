"""``evaluation[i]``: EVALUATE one pilot measurement, enriched with the manifest's cost_to_scale."""

from typing import Any

import dagster as dg

from impact_assets import steps
from impact_assets.assets import records
from impact_assets.assets.manifest import GraphSpec
from impact_assets.assets.resources import EvaluateResource
from impact_assets.assets.results import (
    CODE_VERSION,
    contract_check_result,
    partitioned_result,
)
from impact_assets.contracts import ContractError, EvaluateResult


def _summary(record: dict[str, Any]) -> dict[str, Any]:
    if record.get("status") != records.OK:
        return {}
    return {
        "confidence": record.get("confidence"),
        "cost": record.get("cost"),
        "return_worst": record.get("return_worst"),
        "return_median": record.get("return_median"),
        "return_best": record.get("return_best"),
        "model_type": record.get("model_type"),
    }


def verify_evaluations(spec: GraphSpec, values: dict[str, dict[str, Any]]) -> dict[str, tuple]:
    verdicts: dict[str, tuple[bool, str]] = {}
    for key, record in values.items():
        status = record.get("status")
        if status == records.OK:
            try:
                result = EvaluateResult.from_dict(record)
            except ContractError as exc:
                verdicts[key] = (False, str(exc))
                continue
            expected_cost = spec.initiative(key).cost_to_scale
            if result.initiative_id != key:
                verdicts[key] = (False, f"record carries initiative_id={result.initiative_id!r}")
            elif result.cost != expected_cost:
                verdicts[key] = (
                    False,
                    f"cost={result.cost!r} differs from the manifest cost_to_scale={expected_cost!r}",
                )
            else:
                verdicts[key] = (True, "EvaluateResult valid")
        elif status == records.CONTRACT_VIOLATION:
            verdicts[key] = (False, str(record.get("error")))
        elif status == records.FAILED:
            verdicts[key] = (True, f"failed: {record.get('error')}")
        else:
            verdicts[key] = (False, f"unknown record status {status!r}")
    return verdicts


def build(spec: GraphSpec) -> list:
    @dg.asset(
        name="evaluation",
        group_name="impact",
        partitions_def=spec.partitions,
        backfill_policy=spec.backfill_policy,
        code_version=CODE_VERSION,
        kinds={"python"},
        description=(
            "EVALUATE: how far to trust the pilot measurement (confidence) and the worst, median "
            "and best return, with the manifest's cost_to_scale (and value_per_unit)."
        ),
    )
    def evaluation(
        context: dg.AssetExecutionContext,
        evaluate: EvaluateResource,
        pilot_measurement: dict[str, dict[str, Any]],
    ) -> dg.MaterializeResult:
        component = evaluate.build()

        def work(key: str) -> dict[str, Any]:
            pilot = pilot_measurement[key]
            if not records.is_ok(pilot):
                return records.failure(
                    "evaluation",
                    key,
                    f"pilot_measurement is {pilot.get('status')}: {pilot.get('error')}",
                    upstream="pilot_measurement",
                )
            initiative = spec.initiative(key)
            measured = {k: v for k, v in pilot.items() if k != "status"}
            return records.guarded(
                "evaluation",
                key,
                lambda: component.execute(steps.evaluate_event(measured, initiative)),
                lambda raw: steps.validate_evaluation(raw, key),
            )

        values = records.run_partitions(
            context,
            "evaluate",
            list(context.partition_keys),
            work,
            spec.config.max_workers,
            lambda r: f"confidence {r['confidence']:.3f}" if records.is_ok(r) else r["status"],
        )
        return partitioned_result(context, values, evaluate.describe(), _summary)

    @dg.asset_check(
        asset=evaluation,
        name="evaluation_contract",
        blocking=True,
        partitions_def=spec.partitions,
        description="EvaluateResult contract: worst <= median <= best, 0 <= confidence <= 1, "
        "cost > 0 and equal to the manifest's cost_to_scale.",
    )
    def evaluation_contract(evaluation: dict) -> dg.AssetCheckResult:
        return contract_check_result(
            "evaluation_contract", evaluation, verify_evaluations(spec, evaluation)
        )

    return [evaluation, evaluation_contract]
