"""``portfolio`` (the fan-in: ALLOCATE once over every evaluation) and ``allocation[i]`` (each
initiative's decision read from it, without N optimisations)."""

import math
from typing import Any

import dagster as dg

from impact_assets import steps
from impact_assets.assets import lineage, records, tables
from impact_assets.assets.manifest import GraphSpec
from impact_assets.assets.resources import AllocateResource
from impact_assets.assets.results import (
    ContractCheck,
    checked_asset,
    contract_check,
    data_version_for,
    materialize_and_check,
    partitioned_result,
)
from impact_assets.assets.storage import content_hash
from impact_assets.contracts import AllocateResult, ContractError, json_safe

EXPLAINED_STATUSES = ("infeasible", "no_eligible_initiatives", "time_limit")


def _evaluation_pointers(instance: dg.DagsterInstance, evaluation: dict) -> dict[str, Any]:
    pointers = lineage.latest_materializations(instance, "evaluation", sorted(evaluation))
    return {
        key: {
            "storage_id": (pointers.get(key) or {}).get("storage_id"),
            "content_sha256": content_hash(value),
        }
        for key, value in sorted(evaluation.items())
    }


def allocate_portfolio(spec: GraphSpec, component, evaluation: dict[str, dict]) -> dict[str, Any]:
    """Refuse on missing or failed evaluations (unless ``allow_partial``), then ALLOCATE once."""
    ids = spec.config.initiative_ids
    missing = [key for key in ids if key not in evaluation]
    if missing:
        raise dg.Failure(
            description=(
                f"portfolio: refusing to allocate: evaluation has not been materialized for "
                f"{len(missing)} initiative(s): {', '.join(missing)}. Materialize evaluation for "
                "them first."
            ),
            metadata={"missing": missing},
        )
    failed = {key: evaluation[key] for key in ids if not steps.is_ok(evaluation[key])}
    if failed and not spec.config.allow_partial:
        raise dg.Failure(
            description=(
                f"portfolio: refusing to allocate over a subset: evaluation failed for "
                f"{len(failed)} initiative(s): "
                + "; ".join(f"{key}: {rec.get('error')}" for key, rec in failed.items())
                + ". Fix them, or set 'allow_partial: true' in the manifest."
            ),
            metadata={"failed": list(failed)},
        )
    candidates = [
        {k: v for k, v in evaluation[key].items() if k != "status"}
        for key in ids
        if key not in failed
    ]
    try:
        raw = component.execute(steps.allocate_event(candidates, spec.config.budget))
    except Exception as exc:
        raise dg.Failure(
            description=f"portfolio: ALLOCATE failed: {type(exc).__name__}: {exc}"
        ) from exc
    try:
        record = steps.validate_allocation(
            raw, [c["initiative_id"] for c in candidates], spec.config.budget
        )
    except ContractError as exc:
        # Stored as-is so that the blocking portfolio_contract check fails and names it.
        record = {"contract_violation": str(exc), "raw": json_safe(raw)}
    record.pop("initiative_id", None)
    record["budget"] = spec.config.budget
    record["candidates"] = [c["initiative_id"] for c in candidates]
    record["excluded_failed"] = {key: rec.get("error") for key, rec in failed.items()}
    record["allow_partial"] = spec.config.allow_partial
    record["frontier"] = steps.run_frontier(component, candidates, spec.config.budget)
    return record


def decision_for(portfolio: dict[str, Any], key: str) -> dict[str, Any]:
    """One initiative's decision as recorded by the portfolio."""
    selected = key in portfolio.get("selected_initiatives", [])
    record: dict[str, Any] = {
        "initiative_id": key,
        "status": steps.OK,
        "selected": selected,
        "rule": portfolio.get("rule"),
        "allocation_status": portfolio.get("status"),
    }
    if selected:
        record["budget_allocated"] = portfolio["budget_allocated"][key]
        record["predicted_return"] = portfolio["predicted_returns"][key]
        effective = (portfolio.get("detail") or {}).get("predicted_return_effective") or {}
        if key in effective:
            record["predicted_return_effective"] = effective[key]
        record.update(steps.prediction_detail(portfolio, key))
        return record
    detail = portfolio.get("detail") or {}
    excluded = detail.get("excluded") or {}
    status = portfolio.get("status")
    if key in portfolio.get("excluded_failed", {}):
        reason = f"evaluation failed: {portfolio['excluded_failed'][key]}"
    elif status in EXPLAINED_STATUSES and status != "time_limit":
        why = detail.get("status_reason") or detail.get("reason")
        reason = f"allocation status {status}" + (f": {why}" if why else "")
    elif key in excluded:
        reason = str(excluded[key])
    else:
        reason = "not chosen by the allocation rule"
    record["budget_allocated"] = 0.0
    record["reason"] = reason
    return record


def build(spec: GraphSpec) -> list:
    def portfolio_contract(portfolio: dict) -> dg.AssetCheckResult:
        if portfolio.get("contract_violation"):
            return dg.AssetCheckResult(passed=False, description=portfolio["contract_violation"])
        try:
            result = AllocateResult.from_dict({**portfolio, "budget": spec.config.budget})
        except ContractError as exc:
            return dg.AssetCheckResult(passed=False, description=str(exc))
        return dg.AssetCheckResult(
            passed=True,
            description=f"budget used {result.budget_used:g} of {spec.config.budget:g}",
            metadata={"budget_used": result.budget_used, "budget": spec.config.budget},
        )

    def portfolio_consistent(portfolio: dict) -> dg.AssetCheckResult:
        ids = set(spec.config.initiative_ids)
        candidates = set(portfolio.get("candidates", []))
        failed = set(portfolio.get("excluded_failed", {}))
        selected = set(portfolio.get("selected_initiatives", []))
        problems = []
        if selected - candidates:
            problems.append(f"selected but not a candidate: {sorted(selected - candidates)}")
        if ids - candidates - failed:
            problems.append(f"neither candidate nor excluded: {sorted(ids - candidates - failed)}")
        if (candidates | failed) - ids:
            problems.append(f"not in the manifest: {sorted((candidates | failed) - ids)}")
        return dg.AssetCheckResult(
            passed=not problems,
            description="; ".join(problems) or f"{len(selected)} selected of {len(ids)}",
        )

    def portfolio_solver_status(portfolio: dict) -> dg.AssetCheckResult:
        status = portfolio.get("status")
        detail = portfolio.get("detail") or {}
        reason = detail.get("reason") or detail.get("status_reason")
        if status == "time_limit":
            # A small certified gap warns; no gap (no feasible answer) or a large one fails.
            gap = (detail.get("solver") or {}).get("certified_gap_relative")
            return dg.AssetCheckResult(
                passed=False,
                severity=dg.AssetCheckSeverity.WARN
                if gap is not None and gap <= 1e-2
                else dg.AssetCheckSeverity.ERROR,
                description=f"time_limit: certified relative gap {gap}; {reason}",
            )
        if status == "optimal":
            return dg.AssetCheckResult(passed=True, description="optimal")
        if status in EXPLAINED_STATUSES and reason:
            return dg.AssetCheckResult(passed=True, description=f"{status}: {reason}")
        return dg.AssetCheckResult(
            passed=False,
            description=f"allocation status {status!r} without an explanation in detail.reason",
        )

    def allocation_verdicts(allocation: dict) -> dict[str, records.Verdict]:
        verdicts = {}
        for key, record in allocation.items():
            if record.get("selected"):
                ok = (
                    isinstance(record.get("budget_allocated"), int | float)
                    and record["budget_allocated"] >= 0
                    and isinstance(record.get("predicted_return"), int | float)
                )
                verdicts[key] = (ok, "selected" if ok else f"incomplete decision: {record}")
            else:
                ok = bool(record.get("reason"))
                verdicts[key] = (ok, record.get("reason") or "excluded without a reason")
        return verdicts

    portfolio_checks = [
        ContractCheck(
            "portfolio_contract",
            "AllocateResult contract and budget: selected ids unique and consistent across "
            "dicts, sum(budget_allocated) <= budget.",
            portfolio_contract,
        ),
        ContractCheck(
            "portfolio_consistent_with_evaluations",
            "Every selected id was evaluated successfully; every manifest initiative is either "
            "a candidate or explicitly excluded as failed.",
            portfolio_consistent,
        ),
        ContractCheck(
            "portfolio_solver_status",
            "The allocation is optimal, or its non-optimal status is explained.",
            portfolio_solver_status,
        ),
    ]
    allocation_checks = [
        contract_check(
            "allocation_contract",
            "Each decision is complete: selected ones carry a budget and a predicted return, "
            "excluded ones a reason.",
            allocation_verdicts,
        )
    ]

    @dg.multi_asset(
        **checked_asset(
            "portfolio",
            (
                "ALLOCATE once over every initiative's evaluation: the portfolio the budget can fund. "
                "Refuses, naming them, when evaluations are missing or failed."
            ),
            portfolio_checks,
            ins={
                "evaluation": dg.AssetIn(
                    partition_mapping=dg.AllPartitionMapping(),
                    metadata={"allow_missing_partitions": True},
                )
            },
        )
    )
    def portfolio(
        context: dg.AssetExecutionContext,
        allocate: AllocateResource,
        evaluation: dict[str, dict[str, Any]],
    ):
        def materialize() -> dg.MaterializeResult:
            record = allocate_portfolio(spec, allocate.build(), evaluation)
            record["lineage"] = {
                "evaluation": _evaluation_pointers(context.instance, evaluation),
                "component": allocate.describe(),
            }
            selected = record.get("selected_initiatives", [])
            allocated = record.get("budget_allocated", {})
            used = math.fsum(allocated.values()) if isinstance(allocated, dict) else None
            context.log.info(
                f"allocate: {record.get('rule')} selected {len(selected)} of "
                f"{len(record['candidates'])}: {', '.join(selected) or '(none)'}"
            )
            return dg.MaterializeResult(
                value=record,
                metadata={
                    "status": str(record.get("status")),
                    "rule": str(record.get("rule")),
                    "selected": dg.MetadataValue.json(selected),
                    "n_selected": len(selected),
                    "budget": spec.config.budget,
                    "budget_used": tables.rounded(used, 2),
                    "budget_left": None if used is None else round(spec.config.budget - used, 2),
                    "content_sha256": content_hash(record),
                    "component": dg.MetadataValue.json(allocate.describe()),
                },
                data_version=data_version_for({"portfolio": record}),
            )

        yield from materialize_and_check(context, "portfolio", portfolio_checks, materialize)

    @dg.multi_asset(
        **checked_asset(
            "allocation",
            (
                "One initiative's decision read from the portfolio: selected or not, budget "
                "allocated, predicted return, the reason when excluded, and the portfolio "
                "materialization it came from."
            ),
            allocation_checks,
            spec,
        )
    )
    def allocation(context: dg.AssetExecutionContext, portfolio: dict[str, Any]):
        def materialize() -> dg.MaterializeResult:
            pointer = lineage.pointer_for_value(context.instance, "portfolio", portfolio)
            values = {}
            for key in context.partition_keys:
                record = decision_for(portfolio, key)
                record["lineage"] = {"portfolio": pointer}
                values[key] = record
            return partitioned_result(
                context,
                values,
                None,
                lambda r: {
                    "selected": r["selected"],
                    "budget_allocated_money": tables.rounded(r.get("budget_allocated"), 2),
                    "predicted_return_money": tables.rounded(r.get("predicted_return"), 2),
                    "reason": r.get("reason"),
                },
                {
                    "portfolio": tables.asset_link("portfolio"),
                    **(
                        {"portfolio_run": tables.run_link(pointer["run_id"])}
                        if pointer.get("run_id")
                        else {}
                    ),
                    # an id, not a quantity: text, so the UI does not plot it
                    "portfolio_storage_id": dg.MetadataValue.text(str(pointer.get("storage_id"))),
                },
            )

        yield from materialize_and_check(
            context, "allocation", allocation_checks, materialize, spec
        )

    return [portfolio, allocation]
