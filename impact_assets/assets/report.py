"""``outcome_report[i]`` (predicted against actual, with lineage) and ``portfolio_report`` (the
REPORT fan-in over every initiative)."""

import hashlib
import math
from typing import Any

import dagster as dg

from impact_assets import steps
from impact_assets.assets import lineage, records
from impact_assets.assets.manifest import GraphSpec
from impact_assets.assets.results import (
    CODE_VERSION,
    contract_check_result,
    data_version_for,
    partitioned_result,
)
from impact_assets.assets.storage import content_hash
from impact_assets.contracts import ContractError, OutcomeReport

INPUTS = ("pilot_measurement", "evaluation", "allocation", "scale_measurement")
SCALED = "scaled"


def _file_sha256(path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _pilot_summary(pilot: dict[str, Any]) -> dict[str, Any]:
    keys = ("effect_estimate", "ci_lower", "ci_upper", "p_value", "sample_size", "model_type")
    summary = {k: pilot.get(k) for k in keys}
    summary["true_effect"] = pilot.get("true_effect")
    summary["status"] = pilot.get("status")
    return summary


def outcome_for(spec: GraphSpec, key: str, inputs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The report record for one initiative, from the four records it consumed."""
    pilot, evaluation, decision, scale = (inputs[name] for name in INPUTS)
    base: dict[str, Any] = {
        "initiative_id": key,
        "pilot": _pilot_summary(pilot),
        "confidence": evaluation.get("confidence"),
        "cost": spec.initiative(key).cost_to_scale,
        "selected": bool(decision.get("selected")),
    }
    if not decision.get("selected"):
        return {**base, "status": records.NOT_SCALED, "reason": decision.get("reason")}
    if not records.is_ok(scale):
        return {
            **base,
            "status": records.FAILED,
            "error": f"scale_measurement is {scale.get('status')}: {scale.get('error')}",
        }
    allocation_view = {
        "selected_initiatives": [key],
        "predicted_returns": {key: decision["predicted_return"]},
        "budget_allocated": {key: decision["budget_allocated"]},
    }
    report = steps.build_outcome_report(pilot, evaluation, allocation_view, scale)
    return {**base, **report, "status": records.OK, "outcome": SCALED}


def verify_reports(values: dict[str, dict[str, Any]]) -> dict[str, tuple[bool, str]]:
    verdicts: dict[str, tuple[bool, str]] = {}
    for key, record in values.items():
        status = record.get("status")
        if status == records.OK:
            try:
                OutcomeReport.from_dict(record)
            except ContractError as exc:
                verdicts[key] = (False, str(exc))
                continue
            consistent = all(
                pointer.get("consistent", False)
                for name, pointer in record.get("lineage", {}).get("inputs", {}).items()
            )
            verdicts[key] = (
                (True, "OutcomeReport valid")
                if consistent
                else (False, "lineage does not match the values the report consumed")
            )
        elif status == records.NOT_SCALED:
            verdicts[key] = (bool(record.get("reason")), str(record.get("reason")))
        elif status == records.FAILED:
            verdicts[key] = (True, f"failed: {record.get('error')}")
        else:
            verdicts[key] = (False, f"unknown record status {status!r}")
    return verdicts


def build(spec: GraphSpec) -> list:
    @dg.asset(
        name="outcome_report",
        group_name="impact",
        partitions_def=spec.partitions,
        backfill_policy=spec.backfill_policy,
        code_version=CODE_VERSION,
        kinds={"python"},
        description=(
            "Predicted against actual for a scaled initiative (prediction error, sample sizes, "
            "budget, confidence, model type), or a not_scaled report with the reason; with the "
            "lineage of every input it consumed."
        ),
    )
    def outcome_report(
        context: dg.AssetExecutionContext,
        pilot_measurement: dict[str, dict[str, Any]],
        evaluation: dict[str, dict[str, Any]],
        allocation: dict[str, dict[str, Any]],
        scale_measurement: dict[str, dict[str, Any]],
    ) -> dg.MaterializeResult:
        loaded = {
            "pilot_measurement": pilot_measurement,
            "evaluation": evaluation,
            "allocation": allocation,
            "scale_measurement": scale_measurement,
        }
        keys = list(context.partition_keys)
        pointers = {
            name: lineage.latest_materializations(context.instance, name, keys) for name in INPUTS
        }
        values: dict[str, dict[str, Any]] = {}
        for key in keys:
            inputs = {name: loaded[name][key] for name in INPUTS}
            record = outcome_for(spec, key, inputs)
            initiative = spec.initiative(key)
            input_lineage = {
                name: lineage.with_consistency(pointers[name].get(key), name, key, inputs[name])
                for name in INPUTS
            }
            portfolio_pointer = (inputs["allocation"].get("lineage") or {}).get("portfolio")
            if portfolio_pointer is not None:
                input_lineage["portfolio"] = portfolio_pointer
            record["lineage"] = {
                "inputs": input_lineage,
                "measure_config": {
                    "path": str(initiative.measure_config),
                    "sha256": _file_sha256(initiative.measure_config),
                },
                "manifest": {
                    "path": str(spec.config.path),
                    "sha256": _file_sha256(spec.config.path),
                },
            }
            values[key] = record
            if record["status"] == records.OK:
                context.log.info(
                    f"report {key}: predicted {record['predicted_return']:.4g}, "
                    f"actual {record['actual_return']:.4g}, error {record['prediction_error']:.4g}"
                )
        for key, record in values.items():
            context.add_asset_metadata(
                {
                    "lineage_table": dg.MetadataValue.md(lineage_markdown(record["lineage"])),
                    "lineage": dg.MetadataValue.json(record["lineage"]),
                },
                partition_key=key,
            )
        return partitioned_result(
            context,
            values,
            None,
            lambda r: {
                "predicted_return": r.get("predicted_return"),
                "actual_return": r.get("actual_return"),
                "prediction_error": r.get("prediction_error"),
                "reason": r.get("reason"),
            },
        )

    @dg.asset_check(
        asset=outcome_report,
        name="outcome_report_contract",
        blocking=True,
        partitions_def=spec.partitions,
        description="OutcomeReport contract (prediction_error == actual - predicted, "
        "n_scale >= n_pilot >= 30) and lineage consistent with the consumed values.",
    )
    def outcome_report_contract(outcome_report: dict) -> dg.AssetCheckResult:
        return contract_check_result(
            "outcome_report_contract", outcome_report, verify_reports(outcome_report)
        )

    @dg.asset(
        name="portfolio_report",
        group_name="impact",
        backfill_policy=dg.BackfillPolicy.single_run(),
        code_version=CODE_VERSION,
        kinds={"python"},
        ins={
            "outcome_report": dg.AssetIn(
                partition_mapping=dg.AllPartitionMapping(),
                metadata={"allow_missing_partitions": True},
            )
        },
        description="Every initiative's outcome in one table, with portfolio figures.",
    )
    def portfolio_report(
        context: dg.AssetExecutionContext, outcome_report: dict[str, dict[str, Any]]
    ) -> dg.MaterializeResult:
        report = summarize(spec, outcome_report)
        context.log.info("portfolio report\n" + report["text"])
        return dg.MaterializeResult(
            value=report,
            metadata={
                "report": dg.MetadataValue.md(report["markdown"]),
                "n_selected": report["figures"]["n_selected"],
                "budget_used": report["figures"]["budget_used"],
                "predicted_return": report["figures"]["predicted_return"],
                "realised_return": report["figures"]["realised_return"],
                "content_sha256": content_hash(report),
            },
            data_version=data_version_for({"portfolio_report": report}),
        )

    return [outcome_report, outcome_report_contract, portfolio_report]


def lineage_markdown(record_lineage: dict[str, Any]) -> str:
    """A small markdown table: where each input of the report came from."""
    lines = [
        "| input | partition | storage id | run | data version | code version | consistent |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, pointer in record_lineage.get("inputs", {}).items():
        run_id = pointer.get("run_id") or ""
        version = pointer.get("data_version") or ""
        lines.append(
            f"| {name} | {_fmt(pointer.get('partition'))} | {_fmt(pointer.get('storage_id'))} | "
            f"{run_id[:8]} | {version[:12]} | {_fmt(pointer.get('code_version'))} | "
            f"{_fmt(pointer.get('consistent'))} |"
        )
    config = record_lineage.get("measure_config") or {}
    lines += [
        "",
        f"measure config `{config.get('path')}` sha256 `{(config.get('sha256') or '')[:16]}`",
    ]
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def summarize(spec: GraphSpec, reports: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The portfolio table and figures over every initiative in manifest order."""
    rows = []
    for key in spec.config.initiative_ids:
        record = reports.get(key)
        if record is None:
            rows.append({"initiative": key, "status": "missing"})
            continue
        pilot = record.get("pilot") or {}
        rows.append(
            {
                "initiative": key,
                "method": pilot.get("model_type"),
                "pilot_estimate": pilot.get("effect_estimate"),
                "pilot_ci_lower": pilot.get("ci_lower"),
                "pilot_ci_upper": pilot.get("ci_upper"),
                "confidence": record.get("confidence"),
                "cost": record.get("cost"),
                "selected": record.get("selected"),
                "reason": record.get("reason"),
                "predicted": record.get("predicted_return"),
                "actual": record.get("actual_return"),
                "error": record.get("prediction_error"),
                "inside_pilot_ci": _inside(record),
                "status": record.get("status"),
            }
        )
    scaled = [r for r in rows if r.get("status") == records.OK]
    inside = [r["inside_pilot_ci"] for r in scaled if r["inside_pilot_ci"] is not None]
    budget_used = math.fsum(r["cost"] for r in rows if r.get("selected"))
    figures = {
        "n_initiatives": len(rows),
        "n_selected": sum(1 for r in rows if r.get("selected")),
        "n_scaled": len(scaled),
        "budget": spec.config.budget,
        "budget_used": budget_used,
        "budget_left": spec.config.budget - budget_used,
        "predicted_return": math.fsum(r["predicted"] for r in scaled),
        "realised_return": math.fsum(r["actual"] for r in scaled),
        "calibration": (sum(inside) / len(inside)) if inside else None,
        "mean_absolute_error": (
            math.fsum(abs(r["error"]) for r in scaled) / len(scaled) if scaled else None
        ),
    }
    columns = [
        "initiative",
        "method",
        "pilot_estimate",
        "pilot_ci_lower",
        "pilot_ci_upper",
        "confidence",
        "cost",
        "selected",
        "actual",
        "error",
        "inside_pilot_ci",
        "reason",
    ]
    table = [[_fmt(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in table)) for i, c in enumerate(columns)]
    text_lines = [
        "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)),
        *("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in table),
    ]
    markdown = "\n".join(
        [
            "| " + " | ".join(columns) + " |",
            "|" + "---|" * len(columns),
            *("| " + " | ".join(row) + " |" for row in table),
            "",
            "| figure | value |",
            "|---|---|",
            *(f"| {k} | {_fmt(v)} |" for k, v in figures.items()),
        ]
    )
    return {
        "rows": rows,
        "figures": figures,
        "text": "\n".join(text_lines),
        "markdown": markdown,
    }


def _inside(record: dict[str, Any]) -> bool | None:
    lo, hi, actual = (
        record.get("pilot_ci_lower"),
        record.get("pilot_ci_upper"),
        record.get("actual_return"),
    )
    if lo is None or hi is None or actual is None:
        return None
    return lo <= actual <= hi
