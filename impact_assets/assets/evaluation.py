"""``evaluation[i]``: EVALUATE one pilot measurement, enriched with the manifest's cost_to_scale."""

from typing import Any

import dagster as dg

from impact_assets import steps
from impact_assets.assets import records
from impact_assets.assets.manifest import GraphSpec
from impact_assets.assets.resources import EvaluateResource
from impact_assets.assets.results import (
    checked_asset,
    contract_check,
    materialize_and_check,
    partitioned_result,
)
from impact_assets.contracts import EvaluateResult


def _summary(record: dict[str, Any]) -> dict[str, Any]:
    if record.get("status") != steps.OK:
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
    """Contract verdict per initiative: EvaluateResult valid and the manifest's cost."""

    def check(key: str, record: dict[str, Any]) -> records.Verdict:
        result = EvaluateResult.from_dict(record)
        expected_cost = spec.initiative(key).cost_to_scale
        if result.initiative_id != key:
            return (False, f"record carries initiative_id={result.initiative_id!r}")
        if result.cost != expected_cost:
            return (
                False,
                f"cost={result.cost!r} differs from the manifest cost_to_scale={expected_cost!r}",
            )
        return (True, "EvaluateResult valid")

    return records.verdicts(values, check)


def build(spec: GraphSpec) -> list:
    checks = [
        contract_check(
            "evaluation_contract",
            "EvaluateResult contract: worst <= median <= best, 0 <= confidence <= 1, "
            "cost > 0 and equal to the manifest's cost_to_scale.",
            lambda values: verify_evaluations(spec, values),
        )
    ]

    @dg.multi_asset(
        **checked_asset(
            "evaluation",
            (
                "EVALUATE: how far to trust the pilot measurement (confidence) and the worst, median "
                "and best return, with the manifest's cost_to_scale (and value_per_unit)."
            ),
            checks,
            spec,
        )
    )
    def evaluation(
        context: dg.AssetExecutionContext,
        evaluate: EvaluateResource,
        pilot_measurement: dict[str, dict[str, Any]],
    ):
        def materialize() -> dg.MaterializeResult:
            component = evaluate.build()

            def work(key: str) -> dict[str, Any]:
                pilot = pilot_measurement[key]
                if not steps.is_ok(pilot):
                    return steps.failure(
                        "evaluation",
                        key,
                        f"pilot_measurement is {pilot.get('status')}: {pilot.get('error')}",
                        upstream="pilot_measurement",
                    )
                initiative = spec.initiative(key)
                measured = {k: v for k, v in pilot.items() if k != "status"}
                return steps.guarded(
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
                lambda r: f"confidence {r['confidence']:.3f}" if steps.is_ok(r) else r["status"],
            )
            return partitioned_result(context, values, evaluate.describe(), _summary)

        yield from materialize_and_check(context, "evaluation", checks, materialize, spec)

    return [evaluation]
