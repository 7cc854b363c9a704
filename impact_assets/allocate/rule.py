"""The frame shared by the optimising rules: validate, filter, optimise, explain, build the result.

A concrete rule implements :meth:`OptimisingAllocate._optimise` on the prepared (eligible,
canonically ordered) initiatives and returns a :class:`RuleOutcome`. Everything else (input and
config validation, the confidence filter, the empty and infeasible cases, the reasons for every
exclusion, the budget summary, the v1 ``AllocateResult``) lives here, so the rules agree.
"""

from __future__ import annotations

import logging
import time
from abc import abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from impact_assets.allocate.inputs import (
    AllocationInputError,
    build_result,
    check_floor,
    check_threshold,
    check_time_limit,
    parse_event,
)
from impact_assets.allocate.outcome import (
    NO_ELIGIBLE,
    OPTIMAL,
    UPSTREAM_STATUS,
    budget_fields,
    excluded_reasons,
)
from impact_assets.allocate.preprocess import SCENARIOS, Prepared, prepare
from impact_assets.allocate.solver import (
    DEFAULT_CORE_SIZE,
    DEFAULT_NODE_LIMIT,
    DEFAULT_TIME_LIMIT,
    BinaryProgram,
    ProgramSolution,
    SolverError,
    solve_program,
)
from impact_assets.component import PipelineComponent

logger = logging.getLogger(__name__)

#: The lexicographic tie-break, as recorded in every result (spec Part D item 6).
TIE_BREAK = (
    "1) the rule's objective; 2) maximise the sum of effective median returns; "
    "3) minimise total cost; 4) among interchangeable initiatives (identical cost and returns) "
    "the smaller ids; any remaining tie is resolved by HiGHS on a model built in id order, so "
    "the input order never matters"
)


class AllocationSolverError(RuntimeError):
    """The solver failed; the message names the rule."""


@dataclass
class RuleOutcome:
    """What a rule decided for the prepared initiatives."""

    status: str
    selected: np.ndarray
    objective_value: float | None
    detail: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None


class OptimisingAllocate(PipelineComponent):
    """Base of :class:`MinimaxRegretAllocate` and :class:`BayesianAllocate`.

    Parameters
    ----------
    min_confidence_threshold:
        Initiatives with ``confidence < threshold`` are dropped before optimising (spec §B2).
    min_portfolio_worst_return:
        Floor on the sum of the selected raw ``return_worst``; ``None`` switches it off.
        The default 0.0 is the upstream one.
    time_limit:
        Seconds for the optimisation (V* and the main solve; validation and input handling are
        not counted), default :data:`~impact_assets.allocate.solver.DEFAULT_TIME_LIMIT`. When it
        is reached the best portfolio found is returned with ``status="time_limit"`` and its
        certified gap. ``None`` solves to proven optimality however long that takes.
    core_size:
        Size of the first core searched for an incumbent; a performance knob only.
    search_node_limit:
        Nodes of the dedicated branch-and-bound before HiGHS takes over; a performance knob
        (0 forces the HiGHS path).
    """

    RULE: ClassVar[str]

    def __init__(
        self,
        min_confidence_threshold: float = 0.0,
        min_portfolio_worst_return: float | None = 0.0,
        time_limit: float | None = DEFAULT_TIME_LIMIT,
        core_size: int = DEFAULT_CORE_SIZE,
        search_node_limit: int = DEFAULT_NODE_LIMIT,
    ) -> None:
        self.min_confidence_threshold = check_threshold(min_confidence_threshold)
        self.min_portfolio_worst_return = check_floor(min_portfolio_worst_return)
        self.time_limit = check_time_limit(time_limit)
        for name, value in (("core_size", core_size), ("search_node_limit", search_node_limit)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise AllocationInputError(
                    f"ALLOCATE config: field {name!r}: must be an integer >= 0, got {value!r}"
                )
        self.core_size = core_size
        self.search_node_limit = search_node_limit
        self._started: float | None = None

    def params(self) -> dict[str, Any]:
        return {
            "min_confidence_threshold": self.min_confidence_threshold,
            "min_portfolio_worst_return": self.min_portfolio_worst_return,
            "time_limit": self.time_limit,
            "core_size": self.core_size,
            "search_node_limit": self.search_node_limit,
        }

    def _deadline(self) -> float | None:
        """``time.perf_counter()`` value at which the current ``execute`` call must stop."""
        if self.time_limit is None:
            return None
        start = time.perf_counter() if self._started is None else self._started
        return start + self.time_limit

    def _solve(self, program: BinaryProgram) -> ProgramSolution:
        deadline = self._deadline()
        return solve_program(
            program,
            time_limit=None if deadline is None else max(0.0, deadline - time.perf_counter()),
            core_size=self.core_size,
            node_limit=self.search_node_limit,
        )

    @abstractmethod
    def _optimise(self, prepared: Prepared, budget: float) -> RuleOutcome:
        """Choose among ``prepared.eligible`` (canonical order)."""

    def execute(self, event: dict[str, Any]) -> dict[str, Any]:
        candidates, budget = parse_event(event)
        prepared = prepare(candidates, self.min_confidence_threshold)
        self._started = time.perf_counter()
        below = [c.initiative_id for c in prepared.below_threshold]
        if not prepared.eligible:
            outcome = RuleOutcome(
                NO_ELIGIBLE,
                np.zeros(0, dtype=bool),
                None,
                reason=(
                    "no initiatives given"
                    if not candidates
                    else f"every initiative has confidence below min_confidence_threshold="
                    f"{self.min_confidence_threshold!r}"
                ),
            )
        else:
            try:
                outcome = self._optimise(prepared, budget)
            except SolverError as exc:
                raise AllocationSolverError(f"{self.RULE}: solver failure: {exc}") from exc
        chosen = [
            c.initiative_id
            for c, take in zip(prepared.eligible, outcome.selected, strict=True)
            if take
        ]
        chosen_set = set(chosen)
        selected_eligible = [c for c in prepared.eligible if c.initiative_id in chosen_set]
        row_of = {c.initiative_id: i for i, c in enumerate(prepared.eligible)}
        if outcome.status != OPTIMAL:
            logger.warning(
                "%s: non-optimal status %r: %s", self.RULE, outcome.status, outcome.reason
            )
        else:
            logger.info(
                "%s: selected %d of %d initiatives", self.RULE, len(chosen), len(candidates)
            )
        detail: dict[str, Any] = {
            "rule": self.RULE,
            "status": outcome.status,
            "upstream_status": UPSTREAM_STATUS[outcome.status],
            "status_reason": outcome.reason,
            "objective_value": outcome.objective_value,
            **outcome.detail,
            "total_actual_returns": {
                s: float(
                    np.sum(prepared.effective[[row_of[i] for i in chosen], k]) if chosen else 0.0
                )
                for k, s in enumerate(SCENARIOS)
            },
            "total_raw_worst": sum(c.return_worst for c in selected_eligible),
            "predicted_return_raw": {c.initiative_id: c.return_median for c in selected_eligible},
            "predicted_return_effective": {
                i: float(prepared.effective[row_of[i], 1]) for i in chosen
            },
            "predicted_return_choice": "raw median (v1 contract); effective value in detail",
            **budget_fields(candidates, chosen_set, budget),
            "excluded": excluded_reasons(candidates, chosen_set, budget, below),
            "min_confidence_threshold": self.min_confidence_threshold,
            "min_portfolio_worst_return": self.min_portfolio_worst_return,
            "tie_break": TIE_BREAK,
        }
        return build_result(
            candidates, chosen_set, budget, rule=self.RULE, status=outcome.status, detail=detail
        )


def smallest_ids_among_twins(prepared: Prepared, selected: np.ndarray) -> np.ndarray:
    """Among initiatives identical in cost and returns, give the selection to the smaller ids.

    Twins are interchangeable in every constraint and objective, so this keeps optimality and
    makes the tie-break exact for them (``prepared.eligible`` is sorted by id).
    """
    selected = np.asarray(selected, dtype=bool).copy()
    groups: dict[tuple[float, ...], list[int]] = {}
    for row, c in enumerate(prepared.eligible):
        key = (c.cost, c.return_worst, *prepared.effective[row].tolist())
        groups.setdefault(key, []).append(row)
    for rows in groups.values():
        if len(rows) > 1:
            count = int(selected[rows].sum())
            selected[rows] = False
            selected[rows[:count]] = True
    return selected
