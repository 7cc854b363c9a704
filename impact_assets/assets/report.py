"""``outcome_report[i]`` (predicted against actual, with lineage) and ``portfolio_report`` (the
REPORT fan-in over every initiative)."""

import base64
import hashlib
from pathlib import Path
from typing import Any

import dagster as dg

from impact_assets import reporting, steps
from impact_assets.allocate.frontier import entries_markdown
from impact_assets.assets import lineage, records, tables
from impact_assets.assets.manifest import GraphSpec
from impact_assets.assets.results import (
    checked_asset,
    contract_check,
    data_version_for,
    materialize_and_check,
    partitioned_result,
    stage_asset,
)
from impact_assets.assets.storage import content_hash
from impact_assets.contracts import ContractError, OutcomeReport
from impact_assets.reporting import fmt

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
        "value_per_unit": evaluation.get("value_per_unit", 1.0),
        "returns": {
            name: evaluation.get(name) for name in ("return_worst", "return_median", "return_best")
        },
    }
    if not decision.get("selected"):
        return {**base, "status": steps.NOT_SCALED, "reason": decision.get("reason")}
    if not steps.is_ok(scale):
        return {
            **base,
            "status": steps.FAILED,
            "error": f"scale_measurement is {scale.get('status')}: {scale.get('error')}",
        }
    allocation_view = {
        "selected_initiatives": [key],
        "predicted_returns": {key: decision["predicted_return"]},
        "budget_allocated": {key: decision["budget_allocated"]},
        "detail": {  # the prediction's raw value, interval and reliability (decision_for)
            "predicted_return_raw": {key: decision.get("predicted_return_raw")},
            "predicted_return_interval": {key: decision.get("predicted_interval")},
            "shrinkage": {
                "initiatives": {
                    key: {
                        "reliability": decision.get("reliability"),
                        "se_source": decision.get("se_source"),
                    }
                }
            },
        },
    }
    try:
        report = steps.build_outcome_report(pilot, evaluation, allocation_view, scale)
    except ContractError as exc:  # e.g. scale_sample_size below the pilot's sample size
        return {**base, "status": steps.FAILED, "error": str(exc)}
    return {**base, **report, "status": steps.OK, "outcome": SCALED}


def verify_reports(values: dict[str, dict[str, Any]]) -> dict[str, tuple[bool, str]]:
    """Contract verdict per initiative: OutcomeReport valid and lineage consistent."""

    def check(key: str, record: dict[str, Any]) -> records.Verdict:
        OutcomeReport.from_dict(record)
        inputs = record.get("lineage", {}).get("inputs", {})
        if all(pointer.get("consistent", False) for pointer in inputs.values()):
            return (True, "OutcomeReport valid")
        return (False, "lineage does not match the values the report consumed")

    return records.verdicts(values, check, (steps.NOT_SCALED,))


def build(spec: GraphSpec) -> list:
    checks = [
        contract_check(
            "outcome_report_contract",
            "OutcomeReport contract (prediction_error == actual - predicted, "
            "n_scale >= n_pilot >= min_sample_size, 30 by default) and lineage consistent with the consumed values.",
            verify_reports,
        )
    ]

    @dg.multi_asset(
        **checked_asset(
            "outcome_report",
            (
                "Predicted against actual for a scaled initiative (prediction error, sample sizes, "
                "budget, confidence, model type), or a not_scaled report with the reason; with the "
                "lineage of every input it consumed. Metadata: outcome (a one-row table; "
                "_effect_units columns are in the measured outcome's units, _money columns are "
                "effects x value_per_unit), report (the narrative and the lineage table), "
                "<input>_run (the run that materialized each input) and links to the input assets."
            ),
            checks,
            spec,
        )
    )
    def outcome_report(
        context: dg.AssetExecutionContext,
        pilot_measurement: dict[str, dict[str, Any]],
        evaluation: dict[str, dict[str, Any]],
        allocation: dict[str, dict[str, Any]],
        scale_measurement: dict[str, dict[str, Any]],
    ):
        def materialize() -> dg.MaterializeResult:
            loaded = {
                "pilot_measurement": pilot_measurement,
                "evaluation": evaluation,
                "allocation": allocation,
                "scale_measurement": scale_measurement,
            }
            keys = list(context.partition_keys)
            pointers = {
                name: lineage.latest_materializations(context.instance, name, keys)
                for name in INPUTS
            }
            manifest = {"path": str(spec.config.path), "sha256": _file_sha256(spec.config.path)}
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
                    "manifest": manifest,
                }
                values[key] = record
                if record["status"] == steps.OK and len(keys) <= records.PROGRESS_LINES:
                    context.log.info(
                        f"report {key}: predicted {record['predicted_return']:.4g}, "
                        f"actual {record['actual_return']:.4g}, error {record['prediction_error']:.4g}"
                    )
            return partitioned_result(
                context,
                values,
                None,
                lambda r: {
                    # the outcome as a typed one-row table (units in the column names)
                    "outcome": tables.outcome_table(r),
                    # the narrative: the report and where each of its inputs came from
                    "report": dg.MetadataValue.md(
                        reporting.outcome_markdown(r) + "\n\n" + lineage_markdown(r["lineage"])
                    ),
                    **{
                        f"{name}_run": tables.run_link(pointer.get("run_id"))
                        for name, pointer in r["lineage"]["inputs"].items()
                        if pointer.get("run_id")
                    },
                },
                {name: tables.asset_link(name) for name in (*INPUTS, "portfolio")},
            )

        yield from materialize_and_check(context, "outcome_report", checks, materialize, spec)

    @dg.asset(
        **stage_asset(
            "portfolio_report",
            (
                "Every initiative's outcome in five narrow tables (decisions: selected, cost, "
                "predicted return; outcomes: actual at scale, error; pilots: estimate, confidence, "
                "true effect; pilot_intervals: method and CI; reasons: status, why not selected), portfolio figures, a "
                "chart, and CSV and Parquet exports. Columns ending in _money are money (effects x "
                "value_per_unit, rounded to cents). Figures: "
                + "; ".join(f"`{key}`: {meaning}" for key, meaning in tables.FIGURES.items())
                + "."
            ),
            ins={
                "outcome_report": dg.AssetIn(
                    partition_mapping=dg.AllPartitionMapping(),
                    metadata={"allow_missing_partitions": True},
                ),
                "portfolio": dg.AssetIn(),
            },
        )
    )
    def portfolio_report(
        context: dg.AssetExecutionContext,
        outcome_report: dict[str, dict[str, Any]],
        portfolio: dict[str, Any],
    ) -> dg.MaterializeResult:
        report = summarize(spec, outcome_report, portfolio)
        context.log.info("portfolio report\n" + report["text"])
        directory = Path(context.instance.storage_directory()) / "impact_assets" / "exports"
        exports = reporting.write_exports(report["rows"], directory)
        chart = reporting.plot(report["rows"], directory / "portfolio_report.png")
        image = base64.b64encode(chart.read_bytes()).decode("ascii")
        frontier_metadata = {}
        if portfolio.get("frontier"):
            frontier_png = reporting.plot_frontier(
                portfolio["frontier"], directory / "budget_frontier.png"
            )
            frontier_image = base64.b64encode(frontier_png.read_bytes()).decode("ascii")
            frontier_metadata = {
                "frontier_chart": dg.MetadataValue.md(
                    f"![budget frontier](data:image/png;base64,{frontier_image})"
                ),
                "frontier_chart_path": dg.MetadataValue.path(str(frontier_png)),
                "frontier_entries": dg.MetadataValue.md(entries_markdown(portfolio["frontier"])),
            }
        portfolio_pointer = lineage.latest_materializations(
            context.instance, "portfolio", None
        ).get(None)
        return dg.MaterializeResult(
            value=report,
            metadata={
                **tables.portfolio_tables(report["rows"]),
                **tables.figure_metadata(report["figures"]),
                "portfolio": tables.asset_link("portfolio"),
                "outcome_report": tables.asset_link("outcome_report"),
                **(
                    {"portfolio_run": tables.run_link(portfolio_pointer["run_id"])}
                    if portfolio_pointer
                    else {}
                ),
                "chart": dg.MetadataValue.md(f"![portfolio chart](data:image/png;base64,{image})"),
                "chart_path": dg.MetadataValue.path(str(chart)),
                "csv": dg.MetadataValue.path(str(exports["csv"])),
                "parquet": dg.MetadataValue.path(str(exports["parquet"])),
                **frontier_metadata,
                "content_sha256": content_hash(report),
            },
            data_version=data_version_for({"portfolio_report": report}),
        )

    return [outcome_report, portfolio_report]


def summarize(
    spec: GraphSpec, reports: dict[str, dict[str, Any]], portfolio: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The portfolio table and figures over every initiative, in manifest order."""
    rows = reporting.table_rows(spec.config.initiative_ids, reports)
    values = reporting.figures(rows, spec.config.budget, portfolio)
    return {
        "rows": rows,
        "figures": values,
        "text": reporting.text_table(rows),
        "markdown": reporting.markdown_table(rows) + "\n\n" + reporting.markdown_figures(values),
    }


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
            f"| {name} | {fmt(pointer.get('partition'))} | {fmt(pointer.get('storage_id'))} | "
            f"{run_id[:8]} | {version[:12]} | {fmt(pointer.get('code_version'))} | "
            f"{fmt(pointer.get('consistent'))} |"
        )
    config = record_lineage.get("measure_config") or {}
    lines += [
        "",
        f"measure config `{config.get('path')}` sha256 `{(config.get('sha256') or '')[:16]}`",
    ]
    return "\n".join(lines)
