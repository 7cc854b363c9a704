"""``MinimaxRegretAllocate``: the minimax-regret portfolio (spec §B2–§B3), solved exactly.

Per scenario ``j`` in best/med/worst, ``V*_j`` is the best effective return any portfolio within
the budget can reach (an exact 0/1 knapsack, :mod:`impact_assets.allocate.knapsack`). The rule
then solves::

    minimise    θ
    subject to  θ >= V*_j − Σ_i x_i R̃_ij          (j = best, med, worst)
                Σ_i x_i cost_i <= B
                Σ_i x_i R_worst,i >= F               (when F is not None)
                x_i in {0, 1},  θ >= 0

with HiGHS (:mod:`impact_assets.allocate.solver`), then breaks ties lexicographically.
Variables are indexed (``x_0..x_{n-1}``), never named after ids.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from impact_assets.allocate.knapsack import KnapsackError, solve_knapsack
from impact_assets.allocate.outcome import INFEASIBLE, OPTIMAL, TIME_LIMIT
from impact_assets.allocate.preprocess import SCENARIOS, Prepared
from impact_assets.allocate.rule import (
    OptimisingAllocate,
    RuleOutcome,
    smallest_ids_among_twins,
)
from impact_assets.allocate.solver import TOLERANCE, BinaryProgram, SolverError


class MinimaxRegretAllocate(OptimisingAllocate):
    """Minimise the largest portfolio-level regret over the three scenarios (spec §B3).

    Constructor kwargs (the stage-config surface): ``min_confidence_threshold=0.0``,
    ``min_portfolio_worst_return=0.0`` (``None`` = constraint off), ``time_limit=8.0`` (``None``:
    prove optimality however long it takes),
    ``core_size=40``.
    """

    RULE = "minimax_regret"

    def _optimise(self, prepared: Prepared, budget: float) -> RuleOutcome:
        floor = self.min_portfolio_worst_return
        v_star, v_detail = per_scenario_optimum(prepared, budget, deadline=self._deadline())
        # Dominated: no positive effective return in any scenario (so no help to the floor
        # either); never part of the lexicographic optimum, so left out of the model.
        useful = ~np.all(prepared.effective <= 0, axis=1)
        fits = np.flatnonzero((prepared.cost <= budget) & useful)
        n = len(prepared.eligible)
        selected = np.zeros(n, dtype=bool)
        solver: dict[str, Any] = {"v_star": v_detail}
        scale = _scale(v_star, prepared.effective[fits]) if fits.size else 1.0
        if fits.size == 0:
            status = OPTIMAL if floor is None or floor <= 0 else INFEASIBLE
            solver.update(
                {"engine": "none (no affordable initiative can add value)", "certified_gap": 0.0}
            )
        else:
            program = _program(prepared, fits, budget, v_star, floor, scale)
            sol = self._solve(program)
            status = sol.status
            selected[fits] = sol.x
            selected = smallest_ids_among_twins(prepared, selected)
            solver.update(_solver_detail(sol, scale))
            # A V* knapsack stopped at its time limit: regret is measured against its best
            # value, and the true θ* can be lower by at most its certified gap.
            v_gap = max(d["certified_gap"] for d in v_detail.values())
            if v_gap > TOLERANCE * scale and status != INFEASIBLE:
                status = TIME_LIMIT
                # The portfolio found is itself a knapsack solution: V*_j is at least its return.
                # θ* is at least the proven bound (computed with the lower V*), and the true
                # regret of the portfolio is at most its regret against the upper bounds of V*_j.
                achieved = {
                    s: math.fsum(prepared.effective[selected, k]) for k, s in enumerate(SCENARIOS)
                }
                upper = {s: v_star[s] + v_detail[s]["certified_gap"] for s in SCENARIOS}
                for s in SCENARIOS:
                    if achieved[s] > v_star[s]:
                        v_star[s] = achieved[s]
                        v_detail[s]["certified_gap"] = max(0.0, upper[s] - achieved[s])
                worst_case = max(0.0, *(upper[s] - achieved[s] for s in SCENARIOS))
                gap = max(0.0, worst_case - max(0.0, (sol.bound or 0.0) * scale))
                solver.update(
                    {
                        "certified_gap": gap,
                        "certified_gap_relative": gap / scale,
                        "v_star_gap": max(d["certified_gap"] for d in v_detail.values()),
                    }
                )
        regrets = {
            s: v_star[s]
            - (math.fsum(prepared.effective[selected, k]) if status != INFEASIBLE else 0)
            for k, s in enumerate(SCENARIOS)
        }
        if status == INFEASIBLE:
            selected[:] = False
            return RuleOutcome(
                INFEASIBLE,
                selected,
                None,
                detail={"v_j_star": v_star, "regrets": regrets, "solver": solver},
                reason=_infeasible_reason(prepared, budget, floor),
            )
        theta = max(0.0, *regrets.values())
        return RuleOutcome(
            status,
            selected,
            theta,
            detail={"v_j_star": v_star, "regrets": regrets, "solver": solver},
            reason=None if status == OPTIMAL else "time limit reached; best portfolio found",
        )


def per_scenario_optimum(
    prepared: Prepared, budget: float, *, deadline: float | None = None
) -> tuple[dict[str, float], dict[str, Any]]:
    """``V*_j`` for each scenario (budget only, no floor: the upstream benchmark, spec §B3).

    With a ``deadline`` each knapsack may use at most a quarter of the time left when it starts
    (at most 58% for the three), so the main solve keeps the rest. A knapsack stopped early gives
    its best value as ``V*_j`` and its proven ``certified_gap``; the rule then certifies the
    portfolio against the upper bounds of V* (docs/allocate.md, Solver, Certificate).
    """
    values: dict[str, float] = {}
    detail: dict[str, Any] = {}
    for k, s in enumerate(SCENARIOS):
        own = None
        if deadline is not None:
            now = time.perf_counter()
            own = now + max(0.0, deadline - now) / 4
        try:
            sol = solve_knapsack(prepared.effective[:, k], prepared.cost, budget, deadline=own)
        except KnapsackError as exc:
            raise SolverError(f"V*_{s}: {exc}") from exc
        values[s] = sol.value
        detail[s] = {
            "method": sol.method,
            "core_size": sol.core_size,
            "nodes": sol.nodes,
            "certified_gap": max(0.0, sol.upper_bound - sol.value),
        }
    return values, detail


def _scale(v_star: dict[str, float], effective: np.ndarray) -> float:
    scale = max(max(v_star.values()), float(np.max(np.abs(effective))) if effective.size else 0.0)
    return scale if scale > 0 else 1.0


def _program(
    prepared: Prepared,
    fits: np.ndarray,
    budget: float,
    v_star: dict[str, float],
    floor: float | None,
    scale: float,
) -> BinaryProgram:
    eff = prepared.effective[fits] / scale
    cost = prepared.cost[fits] / budget
    worst = prepared.raw_worst[fits]
    rows = [-eff[:, k] for k in range(3)] + [cost]
    lower = [-np.inf] * 4
    upper = [-v_star[s] / scale for s in SCENARIOS] + [1.0]
    theta = [-1.0, -1.0, -1.0, 0.0]
    if floor is not None:
        w_scale = max(float(np.max(np.abs(worst))), abs(floor), 1e-300)
        rows.append(worst / w_scale)
        lower.append(floor / w_scale)
        upper.append(np.inf)
        theta.append(0.0)
    m = len(fits)
    return BinaryProgram(
        matrix=np.vstack(rows),
        row_lower=np.array(lower),
        row_upper=np.array(upper),
        objectives=[(np.zeros(m), 1.0), (-eff[:, 1], 0.0), (cost, 0.0)],
        theta_column=np.array(theta),
        budget_row=3,
    )


def _solver_detail(sol: Any, scale: float) -> dict[str, Any]:
    return {
        "engine": "LP (HiGHS) + reduced-cost fixing + branch-and-bound; HiGHS MILP fallback",
        "scale": scale,
        "lp_bound": None if sol.lp_bound is None else max(0.0, sol.lp_bound) * scale,
        "certified_gap": None if sol.gap is None else sol.gap * scale,
        "certified_gap_relative": sol.gap,
        "tie_break_phases_completed": sol.phases_completed,
        **{k: v for k, v in sol.stats.items()},
    }


def _infeasible_reason(prepared: Prepared, budget: float, floor: float | None) -> str:
    best = solve_knapsack(prepared.raw_worst, prepared.cost, budget).value
    return (
        f"no portfolio within budget {budget!r} reaches min_portfolio_worst_return={floor!r}: "
        f"the largest attainable sum of return_worst is {best!r}"
    )
