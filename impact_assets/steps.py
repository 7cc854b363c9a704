"""One implementation of each pipeline step, shared by the plain ``Orchestrator`` and the Dagster
assets.

Each function either builds a stage input with exactly the design's enrichment, or runs one stage
call and validates its output against the stage contract (raising :class:`ContractError` that names
the stage and the initiative). The guarded form (:func:`guarded`, :func:`measure_record`) turns
one initiative's outcome into the record the Dagster assets store, whatever happened; MEASURE
worker processes run :func:`measure_record`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from impact_assets.component import PipelineComponent
from impact_assets.config import InitiativeConfig, PipelineConfig
from impact_assets.contracts import (
    MIN_SAMPLE_SIZE,
    AllocateResult,
    ContractError,
    EvaluateResult,
    MeasureResult,
    OutcomeReport,
    json_safe,
)

PILOT = "pilot"
SCALE = "scale"

# --------------------------------------------------------------------------- stored records
# Every partition of every stage asset holds a record with a ``status``:
#
# ``ok``                 the stage result (a contract dict) plus ``status``.
# ``failed``             the stage raised for this initiative (bad data, a missing file, ...);
#                        the error is kept, the other initiatives go on, the stage's contract
#                        check fails with severity WARN naming it, and ``portfolio`` refuses to
#                        allocate over a silent subset.
# ``contract_violation`` the component returned something that breaks the stage contract; the
#                        raw output and the error are kept and the blocking check stops
#                        everything downstream.
# ``not_selected`` / ``not_scaled``  explicit "nothing to do" records for initiatives the
#                        allocation did not fund, so every initiative has a complete trail.

OK = "ok"
FAILED = "failed"
CONTRACT_VIOLATION = "contract_violation"
NOT_SELECTED = "not_selected"
NOT_SCALED = "not_scaled"


def is_ok(record: Mapping[str, Any] | None) -> bool:
    return bool(record) and record.get("status") == OK


def failure(stage: str, initiative_id: str, error: str, **extra: Any) -> dict[str, Any]:
    """The record of a stage that failed for one initiative."""
    return {
        "initiative_id": initiative_id,
        "status": FAILED,
        "stage": stage,
        "error": error,
        **extra,
    }


def guarded(
    stage: str,
    initiative_id: str,
    produce: Callable[[], Mapping[str, Any]],
    validate: Callable[[Mapping[str, Any]], dict[str, Any]],
) -> dict[str, Any]:
    """Run one stage call for one initiative and turn the outcome into a record."""
    try:
        raw = produce()
    except Exception as exc:  # one initiative's failure must not hide the others' results
        return failure(stage, initiative_id, f"{type(exc).__name__}: {exc}")
    try:
        return {**validate(raw), "status": OK}
    except ContractError as exc:
        return {
            "initiative_id": initiative_id,
            "status": CONTRACT_VIOLATION,
            "stage": stage,
            "error": str(exc),
            "raw": json_safe(raw),
        }


def measure_record(task: tuple) -> dict[str, Any]:
    """One guarded MEASURE call on ``(component, initiative, phase, sample_size)``: the task the
    MEASURE worker processes run (a top-level function, so that it pickles)."""
    component, initiative, phase, sample_size = task
    key = initiative.initiative_id
    return guarded(
        f"{phase}_measurement",
        key,
        lambda: component.execute(measure_event(initiative, phase, sample_size)),
        lambda raw: validate_measure(raw, key, phase),
    )


# --------------------------------------------------------------------------- stage inputs


def measure_event(
    initiative: InitiativeConfig, phase: str = PILOT, sample_size: int | None = None
) -> dict[str, Any]:
    """MEASURE input: the initiative's measure config (and, at scale, the sample size).

    When the manifest loader already parsed the measure config, the event also carries it as
    ``measure_config_parsed`` (``((st_mtime_ns, st_size), mapping)``); the built-in ``Measure``
    uses it instead of parsing the file again while the file's stat is unchanged.
    """
    if phase not in (PILOT, SCALE):
        raise ValueError(f"phase must be {PILOT!r} or {SCALE!r}, got {phase!r}")
    event: dict[str, Any] = {
        "initiative_id": initiative.initiative_id,
        "measure_config": str(initiative.measure_config),
        "phase": phase,
    }
    if initiative.parsed_measure_config is not None:
        event["measure_config_parsed"] = initiative.parsed_measure_config
    if initiative.min_sample_size is not None:
        event["min_sample_size"] = initiative.min_sample_size
    if phase == SCALE:
        if sample_size is None:
            raise ValueError("the scale phase needs a sample_size")
        event["sample_size"] = int(sample_size)
    return event


def evaluate_event(measurement: Mapping[str, Any], initiative: InitiativeConfig) -> dict[str, Any]:
    """EVALUATE input: the MeasureResult dict enriched with ``cost_to_scale``.

    ``value_per_unit`` is added only when the manifest sets it.
    """
    _same_initiative("EVALUATE input", measurement, initiative.initiative_id)
    event = {**measurement, "cost_to_scale": initiative.cost_to_scale}
    if initiative.value_per_unit is not None:
        event["value_per_unit"] = initiative.value_per_unit
    return event


def allocate_event(evaluations: Iterable[Mapping[str, Any]], budget: float) -> dict[str, Any]:
    """ALLOCATE input: every evaluation in one batch, plus the budget."""
    return {"initiatives": [dict(e) for e in evaluations], "budget": budget}


# --------------------------------------------------------------------------- stage calls


def _same_initiative(what: str, result: Mapping[str, Any], initiative_id: str) -> None:
    got = result.get("initiative_id")
    if got != initiative_id:
        raise ContractError(
            f"{what} for initiative {initiative_id!r}: field 'initiative_id': "
            f"expected {initiative_id!r}, got {got!r}"
        )


def run_measure(
    component: PipelineComponent, initiative: InitiativeConfig, phase: str, sample_size=None
) -> dict[str, Any]:
    """Run MEASURE for one initiative and phase; return the validated MeasureResult dict."""
    event = measure_event(initiative, phase, sample_size)
    raw = component.execute(event)
    return validate_measure(raw, initiative.initiative_id, phase)


def measure_task(
    task: tuple[PipelineComponent, InitiativeConfig, str, int | None],
) -> dict[str, Any]:
    """``run_measure`` on one ``(component, initiative, phase, sample_size)`` tuple: a top-level
    function, so that worker processes can run it."""
    component, initiative, phase, sample_size = task
    return run_measure(component, initiative, phase, sample_size)


def validate_measure(raw: Mapping[str, Any], initiative_id: str, phase: str) -> dict[str, Any]:
    """Validate a MEASURE output dict against :class:`MeasureResult`, keeping extra keys."""
    if not isinstance(raw, Mapping):
        raise ContractError(
            f"MEASURE output for initiative {initiative_id!r} must be a dict, got {raw!r}"
        )
    _same_initiative("MEASURE output", raw, initiative_id)
    result = MeasureResult.from_dict({**raw, "phase": raw.get("phase", phase)})
    if result.phase != phase:
        raise ContractError(
            f"MEASURE output for initiative {initiative_id!r}: field 'phase': "
            f"expected {phase!r}, got {result.phase!r}"
        )
    return {**raw, **result.to_dict()}


def run_evaluate(
    component: PipelineComponent, measurement: Mapping[str, Any], initiative: InitiativeConfig
) -> dict[str, Any]:
    """Run EVALUATE for one initiative; return the validated EvaluateResult dict."""
    raw = component.execute(evaluate_event(measurement, initiative))
    return validate_evaluation(raw, initiative.initiative_id)


def validate_evaluation(raw: Mapping[str, Any], initiative_id: str) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise ContractError(
            f"EVALUATE output for initiative {initiative_id!r} must be a dict, got {raw!r}"
        )
    _same_initiative("EVALUATE output", raw, initiative_id)
    return {**raw, **EvaluateResult.from_dict(raw).to_dict()}


def run_allocate(
    component: PipelineComponent, evaluations: list[Mapping[str, Any]], budget: float
) -> dict[str, Any]:
    """Run ALLOCATE once over every evaluation; return the validated AllocateResult dict."""
    raw = component.execute(allocate_event(evaluations, budget))
    return validate_allocation(raw, [e["initiative_id"] for e in evaluations], budget)


def validate_allocation(
    raw: Mapping[str, Any], candidate_ids: list[str], budget: float
) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise ContractError(f"ALLOCATE output must be a dict, got {raw!r}")
    result = AllocateResult.from_dict({**raw, "budget": raw.get("budget", budget)})
    unknown = sorted(set(result.selected_initiatives) - set(candidate_ids))
    if unknown:
        raise ContractError(
            "AllocateResult contract violated: field 'selected_initiatives': "
            f"ids not among the evaluated initiatives: {unknown}"
        )
    return {**raw, **result.to_dict()}


def run_frontier(
    component: PipelineComponent, evaluations: list[Mapping[str, Any]], budget: float
) -> dict[str, Any]:
    """The budget frontier of the ALLOCATE component over every evaluation
    (``impact_assets.allocate.frontier``), the chosen budget marked."""
    from impact_assets.allocate.frontier import budget_frontier

    return budget_frontier(component, evaluations, budget=budget)


# --------------------------------------------------------------------------- the report


def prediction_detail(allocation: Mapping[str, Any], initiative_id: str) -> dict[str, Any]:
    """What ALLOCATE recorded about one selected initiative's prediction: the raw pilot return,
    the posterior interval and the reliability (``EmpiricalBayesAllocate``; ``None`` for rules
    that do not shrink)."""
    detail = allocation.get("detail") or {}
    raw = (detail.get("predicted_return_raw") or {}).get(initiative_id)
    interval = (detail.get("predicted_return_interval") or {}).get(initiative_id)
    shrinkage = ((detail.get("shrinkage") or {}).get("initiatives") or {}).get(initiative_id) or {}
    return {
        "predicted_return_raw": raw,
        "predicted_interval": None if interval is None else [float(v) for v in interval],
        "reliability": shrinkage.get("reliability"),
        "se_source": shrinkage.get("se_source"),
    }


def build_outcome_report(
    pilot: Mapping[str, Any],
    evaluation: Mapping[str, Any],
    allocation: Mapping[str, Any],
    scale: Mapping[str, Any],
) -> dict[str, Any]:
    """Predicted (from ALLOCATE) against actual (the scale MEASURE) for one initiative.

    EVALUATE multiplies returns by the initiative's ``value_per_unit``; the scale estimate and both
    CIs are multiplied by the same factor so that predicted and actual are in one unit.
    """
    initiative_id = scale["initiative_id"]
    for what, item in (("pilot", pilot), ("evaluation", evaluation)):
        _same_initiative(f"OutcomeReport input {what}", item, initiative_id)
    if initiative_id not in allocation["selected_initiatives"]:
        raise ContractError(
            f"OutcomeReport for initiative {initiative_id!r}: field 'selected_initiatives': "
            "the initiative was not selected by ALLOCATE"
        )
    predicted = float(allocation["predicted_returns"][initiative_id])
    value_per_unit = float(evaluation.get("value_per_unit", 1.0))

    def scaled(value: Any) -> float | None:
        return None if value is None else float(value) * value_per_unit

    actual = float(scale["effect_estimate"]) * value_per_unit
    budget = float(allocation["budget_allocated"][initiative_id])
    pilot_true = scaled(pilot.get("true_effect"))
    scale_true = scaled(scale.get("true_effect"))
    prediction = prediction_detail(allocation, initiative_id)
    pilot_estimate = scaled(pilot["effect_estimate"])
    raw = prediction["predicted_return_raw"]
    raw = pilot_estimate if raw is None else float(raw)
    details: dict[str, Any] = {
        "value_per_unit": value_per_unit,
        "pilot_estimate": pilot_estimate,
        # the raw pilot return, the prediction after shrinkage and its interval, side by side
        "predicted_return_raw": raw,
        "shrinkage": predicted - raw,
        "predicted_interval": prediction["predicted_interval"],
        "reliability": prediction["reliability"],
        "se_source": prediction["se_source"],
        "pilot_p_value": pilot.get("p_value"),
        "scale_p_value": scale.get("p_value"),
        # Errors of each estimate against the simulated truth (None for real data).
        "pilot_estimate_error": _difference(scaled(pilot["effect_estimate"]), pilot_true),
        "scale_estimate_error": _difference(actual, scale_true),
        # Return on investment, (return - budget) / budget: meaningful when value_per_unit turns
        # the measured effect into money over the funding horizon (docs/reports.md).
        "roi_predicted": _roi(predicted, budget),
        "roi_actual": _roi(actual, budget),
    }
    warnings = measurement_warnings(pilot, scale)
    if warnings:
        # MEASURE's warnings (poor covariate balance, units dropped by a caliper or outside
        # common support), so the report shows what the numbers rest on
        details["warnings"] = warnings
    report = OutcomeReport(
        initiative_id=initiative_id,
        predicted_return=predicted,
        actual_return=actual,
        prediction_error=actual - predicted,
        sample_size_pilot=pilot["sample_size"],
        sample_size_scale=scale["sample_size"],
        budget_allocated=budget,
        confidence_score=evaluation["confidence"],
        model_type=pilot["model_type"],
        pilot_ci_lower=scaled(pilot.get("ci_lower")),
        pilot_ci_upper=scaled(pilot.get("ci_upper")),
        scale_ci_lower=scaled(scale.get("ci_lower")),
        scale_ci_upper=scaled(scale.get("ci_upper")),
        true_effect_pilot=pilot_true,
        true_effect_scale=scale_true,
        details=details,
        min_sample_size=min(
            int(pilot.get("min_sample_size", MIN_SAMPLE_SIZE)),
            int(scale.get("min_sample_size", MIN_SAMPLE_SIZE)),
        ),
    )
    return {**report.to_dict(), "actual_in_pilot_ci": report.actual_in_pilot_ci}


def measurement_warnings(pilot: Mapping[str, Any], scale: Mapping[str, Any]) -> list[str]:
    """The ``diagnostics["warnings"]`` of the pilot and scale measurements, prefixed by phase."""
    out = []
    for phase, record in (("pilot", pilot), ("scale", scale)):
        diagnostics = record.get("diagnostics") or {}
        for text in diagnostics.get("warnings") or []:
            out.append(f"{phase}: {text}")
    return out


def _difference(estimate: float | None, truth: float | None) -> float | None:
    return None if estimate is None or truth is None else estimate - truth


def _roi(value: float, budget: float) -> float | None:
    return (value - budget) / budget if budget > 0 else None


def initiatives_in_order(config: PipelineConfig, ids: Iterable[str]) -> list[InitiativeConfig]:
    """The manifest entries for ``ids``, in manifest order."""
    wanted = set(ids)
    return [i for i in config.initiatives if i.initiative_id in wanted]
