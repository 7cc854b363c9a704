"""``BayesianAllocate``: the weighted-scenario (Bayesian) rule of spec §B4, solved exactly.

For each eligible initiative ``w̄_i = Σ_j w_j R̃_ij``; the rule solves::

    maximise    Σ_i x_i w̄_i
    subject to  Σ_i x_i cost_i <= B,   Σ_i x_i R_worst,i >= F (when F is not None),   x binary

with the same exact engine and lexicographic tie-break as minimax regret. Equal weights give
the Laplace criterion.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from impact_assets.allocate.inputs import WEIGHT_KEYS, check_weights
from impact_assets.allocate.minimax import _infeasible_reason, _solver_detail
from impact_assets.allocate.outcome import INFEASIBLE, OPTIMAL
from impact_assets.allocate.preprocess import Prepared
from impact_assets.allocate.rule import (
    OptimisingAllocate,
    RuleOutcome,
    smallest_ids_among_twins,
)
from impact_assets.allocate.solver import BinaryProgram

#: Default weights: equal (the Laplace criterion).
LAPLACE = {k: 1.0 / 3.0 for k in WEIGHT_KEYS}


class BayesianAllocate(OptimisingAllocate):
    """Maximise the weighted expected effective return (spec §B4).

    Constructor kwargs: ``weights`` (``{"best", "med", "worst"}`` -> non-negative, summing to 1;
    default equal weights), plus those of :class:`OptimisingAllocate`.
    """

    RULE = "bayesian"

    def __init__(self, weights: dict[str, float] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.weights = check_weights(LAPLACE if weights is None else weights)

    def params(self) -> dict[str, Any]:
        return {"weights": dict(self.weights), **super().params()}

    def _optimise(self, prepared: Prepared, budget: float) -> RuleOutcome:
        floor = self.min_portfolio_worst_return
        w = np.array([self.weights[k] for k in WEIGHT_KEYS])
        weighted = prepared.effective @ w
        n = len(prepared.eligible)
        selected = np.zeros(n, dtype=bool)
        # Dominated: no expected value, no median and no worst-case help; never part of the
        # lexicographic optimum, so left out of the model.
        useful = (weighted > 0) | (prepared.effective[:, 1] > 0) | (prepared.raw_worst > 0)
        fits = np.flatnonzero((prepared.cost <= budget) & useful)
        scale = float(np.max(np.abs(prepared.effective[fits]))) if fits.size else 0.0
        scale = scale if scale > 0 else 1.0
        detail: dict[str, Any] = {"weights": dict(self.weights)}
        if fits.size == 0:
            status = OPTIMAL if floor is None or floor <= 0 else INFEASIBLE
            solver: dict[str, Any] = {"engine": "none (no affordable initiative can add value)"}
        else:
            sol = self._solve(_program(prepared, fits, budget, weighted, floor, scale))
            status = sol.status
            selected[fits] = sol.x
            selected = smallest_ids_among_twins(prepared, selected)
            solver = _solver_detail(sol, scale)
            solver["lp_bound"] = None if sol.lp_bound is None else -sol.lp_bound * scale
        detail["solver"] = solver
        if status == INFEASIBLE:
            detail["weighted_returns"] = {}
            return RuleOutcome(
                INFEASIBLE,
                np.zeros(n, dtype=bool),
                None,
                detail=detail,
                reason=_infeasible_reason(prepared, budget, floor),
            )
        detail["weighted_returns"] = {
            c.initiative_id: float(weighted[row])
            for row, c in enumerate(prepared.eligible)
            if selected[row]
        }
        objective = float(np.sum(weighted[selected]))
        if solver.get("certified_gap") is not None:
            # Relative to the portfolio's expected return (at least one initiative's return), the
            # usual MIP convention; minimax regret divides by V*, the same order of size.
            solver["certified_gap_relative"] = solver["certified_gap"] / max(scale, abs(objective))
        return RuleOutcome(
            status,
            selected,
            objective,
            detail=detail,
            reason=None if status == OPTIMAL else "time limit reached; best portfolio found",
        )


def _program(
    prepared: Prepared,
    fits: np.ndarray,
    budget: float,
    weighted: np.ndarray,
    floor: float | None,
    scale: float,
) -> BinaryProgram:
    cost = prepared.cost[fits] / budget
    worst = prepared.raw_worst[fits]
    rows = [cost]
    lower = [-np.inf]
    upper = [1.0]
    if floor is not None:
        w_scale = max(float(np.max(np.abs(worst))), abs(floor), 1e-300)
        rows.append(worst / w_scale)
        lower.append(floor / w_scale)
        upper.append(np.inf)
    return BinaryProgram(
        matrix=np.vstack(rows),
        row_lower=np.array(lower),
        row_upper=np.array(upper),
        objectives=[
            (-weighted[fits] / scale, 0.0),
            (-prepared.effective[fits, 1] / scale, 0.0),
            (cost, 0.0),
        ],
        budget_row=0,
    )
