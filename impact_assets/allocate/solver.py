"""Exact lexicographic 0/1 programs: LP fixing, a dedicated search, HiGHS as the fallback.

Both allocation rules reduce to the same shape: binary ``x`` (one per initiative), an optional
continuous ``θ >= 0``, a handful of linear rows (one of them the budget), and a list of objectives
to minimise in lexicographic order (the tie-break of spec Part D item 6). Every row and objective
is expected to be scaled by the caller so that its coefficients are of order one; ``TOLERANCE``
is then an absolute tolerance relative to that scale.

How a program is solved:

1. The LP relaxation (HiGHS via ``scipy.optimize.linprog``): bound ``z_LP``, reduced costs
   ``d_i`` and row duals.
2. An incumbent: the LP point rounded down plus greedy additions (when that breaks a row, such as
   the floor, the first search below runs without a cut-off and provides one).
3. Reduced-cost fixing: flipping ``x_i`` away from its LP value costs at least ``|d_i|``, so when
   ``z_LP + |d_i| > z_inc + tol`` it keeps its LP value in every portfolio at least as good as
   the incumbent. Typically a few dozen variables stay free out of thousands.
4. The dedicated branch-and-bound (:mod:`impact_assets.allocate.branch_bound`) on a core of the
   free variables, growing until it covers all of them, collects every portfolio within ``tol``
   of the optimum; the lexicographic tie-break is applied to that set exactly.
5. Fallback, when the search hits its node limit (or, with a time limit, half of it): HiGHS
   (``scipy.optimize.milp``) on the unfixed variables with the incumbent as cut-off, then one
   HiGHS solve per later objective (with LP fixing redone for that objective and a row bounding
   each earlier one). The HiGHS model carries the dominance chains of
   :mod:`impact_assets.allocate.structure` as rows and merges identical initiatives into integer
   counts; every solve runs through :mod:`impact_assets.allocate.highs_run`, so that an interrupt
   stops it.

A time limit, when set, stops either path with the best portfolio known and its certified gap.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linprog

from impact_assets.allocate.branch_bound import BUDGET_SLACK, search
from impact_assets.allocate.highs_run import solve_milp
from impact_assets.allocate.structure import dominance_chains

#: Slack allowed on an earlier objective in later lexicographic phases, and the MILP absolute
#: gap, in scaled units (the caller scales objectives to order one).
TOLERANCE = 1e-9

#: Seconds allowed for an optimisation by default (the shipped stage config uses the same value).
#: Enough for every benchmark class up to 1,000 initiatives to finish or certify a small gap.
DEFAULT_TIME_LIMIT = 8.0

#: With a time limit, the share of it the dedicated search may use before HiGHS takes over.
SEARCH_SHARE = 0.5

#: HiGHS is not started with less than this many seconds left (the search result is kept).
MIN_HIGHS_SECONDS = 0.2

#: Size of the first core (variables with the smallest reduced costs) searched or solved.
DEFAULT_CORE_SIZE = 40

#: Nodes of the dedicated branch-and-bound before falling back to HiGHS.
DEFAULT_NODE_LIMIT = 500_000

#: Above this many unfixed variables a core MILP is solved first for a better incumbent.
DEFAULT_MAX_DIRECT = 120

#: Rows may be violated by at most this much (scaled units) after rounding ``x``.
ROW_TOLERANCE = 1e-7


class SolverError(RuntimeError):
    """HiGHS failed (not infeasible: an error, or a limit hit with no feasible solution)."""


@dataclass(frozen=True)
class BinaryProgram:
    """``lexmin objectives`` s.t. ``row_lower <= matrix @ x + theta_column * θ <= row_upper``.

    Attributes
    ----------
    matrix:
        Array ``(m, n)``; ``x`` is binary.
    row_lower, row_upper:
        Arrays ``(m,)``, ``±inf`` for an open side.
    objectives:
        ``[(c_x, c_theta), ...]``: minimised in order. ``c_theta`` must be ``>= 0``.
    theta_column:
        Array ``(m,)`` or ``None`` when the program has no ``θ``.
    budget_row:
        Index of the knapsack row (non-negative coefficients, finite upper bound, no ``θ``); it
        enables the dedicated branch-and-bound of :mod:`impact_assets.allocate.branch_bound`.
    """

    matrix: np.ndarray
    row_lower: np.ndarray
    row_upper: np.ndarray
    objectives: Sequence[tuple[np.ndarray, float]]
    theta_column: np.ndarray | None = None
    budget_row: int | None = None

    @property
    def n(self) -> int:
        return int(self.matrix.shape[1])

    def theta_for(self, x: np.ndarray) -> float:
        """The smallest feasible ``θ`` for a fixed ``x`` (0 when there is no ``θ``)."""
        if self.theta_column is None:
            return 0.0
        activity = self.matrix @ x.astype(float)
        theta = 0.0
        for r, t in enumerate(self.theta_column):
            if t < 0 and np.isfinite(self.row_upper[r]):
                theta = max(theta, (activity[r] - self.row_upper[r]) / -t)
            elif t > 0 and np.isfinite(self.row_lower[r]):
                theta = max(theta, (self.row_lower[r] - activity[r]) / t)
        return float(theta)

    def value(self, k: int, x: np.ndarray) -> float:
        """Objective ``k`` at binary ``x`` (with the smallest feasible ``θ``)."""
        c_x, c_theta = self.objectives[k]
        return float(c_x @ x.astype(float)) + c_theta * self.theta_for(x)

    def feasible(self, x: np.ndarray, tolerance: float = ROW_TOLERANCE) -> bool:
        """Rows hold within ``tolerance``; the budget row within a relative 1e-12 only."""
        activity = self.matrix @ x.astype(float)
        if self.theta_column is not None:
            activity = activity + self.theta_column * self.theta_for(x)
        slack = np.full(activity.shape, tolerance)
        if self.budget_row is not None:
            slack[self.budget_row] = BUDGET_SLACK * max(1.0, abs(self.row_upper[self.budget_row]))
        return bool(
            np.all(activity <= self.row_upper + slack)
            and np.all(activity >= self.row_lower - slack)
        )


@dataclass
class ProgramSolution:
    """What :func:`solve_program` proved.

    ``status`` is ``"optimal"``, ``"infeasible"`` or ``"time_limit"`` (a feasible ``x`` with the
    certified ``gap``). ``values`` holds each objective at ``x`` (scaled units); ``gap`` is the
    certified gap of the first objective, ``bound`` its proven lower bound.
    """

    status: str
    x: np.ndarray
    values: list[float] = field(default_factory=list)
    bound: float | None = None
    gap: float | None = None
    lp_bound: float | None = None
    phases_completed: int = 0
    stats: dict[str, int | float | str] = field(default_factory=dict)


def solve_program(
    program: BinaryProgram,
    *,
    time_limit: float | None = None,
    core_size: int = DEFAULT_CORE_SIZE,
    max_direct: int = DEFAULT_MAX_DIRECT,
    node_limit: int = DEFAULT_NODE_LIMIT,
) -> ProgramSolution:
    """Solve ``program`` to proven optimality (lexicographically), or report infeasibility.

    Raises
    ------
    SolverError
        HiGHS failed, or the time limit passed before any feasible solution was found.
    """
    start = time.perf_counter()
    deadline = None if time_limit is None else start + time_limit
    n = program.n
    stats: dict[str, int | float | str] = {"variables": n, "milp_solves": 0, "lp_solves": 0}
    chains = (
        []
        if program.budget_row is None
        else dominance_chains(
            program.matrix, [c for c, _ in program.objectives], program.budget_row
        )
    )
    stats["dominance_links"] = int(sum(len(c) - 1 for c in chains))
    run = _Runner(program, stats, deadline, chains)

    lp = _lp_relaxation(program, [], stats)
    if lp is None:
        return ProgramSolution("infeasible", np.zeros(n, dtype=bool), stats=stats)
    z_lp, x_lp, penalty, surrogate = lp
    stats["lp_fractional"] = int(np.sum((x_lp > 1e-9) & (x_lp < 1 - 1e-9)))

    incumbent = _greedy_incumbent(program, x_lp)
    stats["method"] = "lp_fixing+branch_and_bound"
    if node_limit > 0 and surrogate is not None and program.budget_row is not None:
        searched = _search_path(
            program,
            incumbent,
            x_lp,
            z_lp,
            penalty,
            surrogate,
            stats,
            node_limit,
            core_size,
            # The search may use half of the time left; HiGHS, often the better anytime solver
            # on hard instances, gets the rest.
            None if deadline is None else start + (deadline - start) * SEARCH_SHARE,
            deadline,
        )
        if searched is not None:
            return searched
    stats["method"] = "lp_fixing+highs_milp"
    free = None
    if incumbent is not None:
        free = _unfixed(penalty, z_lp, program.value(0, incumbent))
    if incumbent is None or int(free.sum()) > max_direct:
        # A core MILP (fractional + smallest reduced costs free) for a better incumbent.
        order = np.lexsort((np.arange(n), penalty))
        core = (x_lp > 1e-9) & (x_lp < 1 - 1e-9)
        core[order[: min(n, core_size)]] = True
        stats["core_size"] = int(core.sum())
        core_run = run.milp(0, core, x_lp > 0.5, earlier=[], cutoff=None)
        if core_run.x is not None and (
            incumbent is None or program.value(0, core_run.x) < program.value(0, incumbent)
        ):
            incumbent = core_run.x
        if incumbent is not None:
            free = _unfixed(penalty, z_lp, program.value(0, incumbent))
    if incumbent is None:
        full = run.milp(0, np.ones(n, dtype=bool), x_lp > 0.5, earlier=[], cutoff=None)
        if full.status == "infeasible":
            return ProgramSolution("infeasible", np.zeros(n, dtype=bool), stats=stats)
        best, bound, status = _accept(program, full, None)
        stats["free_phase1"] = n
    else:
        stats["free_phase1"] = int(free.sum())
        z_inc = program.value(0, incumbent)
        res = run.milp(0, free, incumbent, earlier=[], cutoff=z_inc + TOLERANCE)
        best, bound, status = _accept(program, res, incumbent)
    value = program.value(0, best)
    bound = value if bound is None else min(bound, value)
    bound = max(bound, z_lp)
    solution = ProgramSolution(
        status=status,
        x=best,
        values=[value],
        bound=bound,
        gap=max(0.0, value - bound),
        lp_bound=z_lp,
        phases_completed=1,
        stats=stats,
    )
    if status != "optimal":
        return solution

    # Later objectives: LP fixing again (valid: every earlier objective is bounded by its
    # optimum plus the tolerance, and the current best is feasible), then HiGHS on the rest.
    fixed_ok = _unfixed(penalty, z_lp, value)
    earlier = [(0, value + TOLERANCE)]
    for k in range(1, len(program.objectives)):
        lp_k = _lp_relaxation(program, earlier, stats, objective=k)
        if lp_k is None:
            stats["tie_break_stopped"] = f"objective {k}: LP reported infeasible"
            break
        z_k, _, penalty_k, _ = lp_k
        free_k = fixed_ok & _unfixed(penalty_k, z_k, program.value(k, best))
        stats[f"free_objective_{k}"] = int(free_k.sum())
        if free_k.any():
            res = run.milp(
                k, free_k, best, earlier=earlier, cutoff=program.value(k, best) + TOLERANCE
            )
            if res.status == "optimal" and res.x is not None:
                candidate = res.x
                if program.value(k, candidate) <= program.value(k, best) and all(
                    program.value(j, candidate) <= limit + ROW_TOLERANCE for j, limit in earlier
                ):
                    best = candidate
            elif res.status != "infeasible":
                stats["tie_break_stopped"] = f"objective {k}: {res.status}"
                break
        fixed_ok = fixed_ok & free_k
        earlier.append((k, program.value(k, best) + TOLERANCE))
        solution.phases_completed = k + 1
    solution.x = best
    solution.values = [program.value(k, best) for k in range(len(program.objectives))]
    return solution


def _unfixed(penalty: np.ndarray, z_lp: float, z_inc: float) -> np.ndarray:
    """Variables whose flip from the LP value could still reach ``z_inc + TOLERANCE``."""
    return penalty <= (z_inc - z_lp) + 2 * TOLERANCE


def _greedy_incumbent(program: BinaryProgram, x_lp: np.ndarray) -> np.ndarray | None:
    """LP solution rounded down, then greedy additions that improve the first objective.

    ``None`` when the rounded point breaks a row that does not involve ``θ`` (e.g. the floor).
    """
    x = x_lp > 1 - 1e-9
    matrix = program.matrix
    plain = (
        np.ones(matrix.shape[0], dtype=bool)
        if program.theta_column is None
        else program.theta_column == 0
    )
    rows = matrix[plain]
    lo = program.row_lower[plain]
    up = program.row_upper[plain]
    # Rows hold within ROW_TOLERANCE, the budget row within its relative BUDGET_SLACK only.
    slack = np.full(program.matrix.shape[0], ROW_TOLERANCE)
    if program.budget_row is not None:
        slack[program.budget_row] = BUDGET_SLACK * max(
            1.0, abs(program.row_upper[program.budget_row])
        )
    slack = slack[plain]
    activity = rows @ x.astype(float)
    if np.any(activity > up + slack) or np.any(activity < lo - slack):
        return None
    current = program.value(0, x)
    c_x, c_theta = program.objectives[0]
    theta_rows = ~plain
    for _ in range(program.n):
        trial = activity[:, None] + rows
        ok = np.all(trial <= (up + slack)[:, None], axis=0) & np.all(
            trial >= (lo - slack)[:, None], axis=0
        )
        ok &= ~x
        if not ok.any():
            break
        values = c_x.astype(float).copy() + float(c_x @ x)
        if program.theta_column is not None and c_theta:
            t = program.theta_column[theta_rows]
            act_t = matrix[theta_rows] @ x.astype(float)
            need = act_t[:, None] + matrix[theta_rows] - program.row_upper[theta_rows][:, None]
            need = need / (-t[:, None])
            values = values + c_theta * np.maximum(0.0, need.max(axis=0))
        values[~ok] = np.inf
        i = int(np.argmin(values))
        if not values[i] < current - TOLERANCE:
            break
        x[i] = True
        activity = activity + rows[:, i]
        current = float(values[i])
    return x


def _lp_relaxation(
    program: BinaryProgram,
    earlier: list[tuple[int, float]],
    stats: dict,
    *,
    objective: int = 0,
) -> tuple[float, np.ndarray, np.ndarray, tuple[np.ndarray, float] | None] | None:
    """LP optimum, LP ``x``, the cost of flipping each ``x_i``, and the Lagrangian surrogate.

    ``None`` if the LP is infeasible. ``earlier`` adds one row ``objective_j <= limit`` per
    earlier lexicographic objective. The surrogate ``(s, C)`` (every row dualised except the
    budget row) bounds the objective of every feasible ``x`` from below by ``C + s·x``; it is
    ``None`` when there are earlier rows or no budget row.
    """
    n = program.n
    has_theta = program.theta_column is not None
    matrix = program.matrix
    row_upper = program.row_upper
    row_lower = program.row_lower
    if earlier:
        matrix = np.vstack([matrix, *[program.objectives[j][0][None, :] for j, _ in earlier]])
        row_upper = np.concatenate([row_upper, [limit for _, limit in earlier]])
        row_lower = np.concatenate([row_lower, [-np.inf] * len(earlier)])
    c_x, c_theta = program.objectives[objective]
    if has_theta:
        theta = np.concatenate(
            [program.theta_column, [program.objectives[j][1] for j, _ in earlier]]
        )
        matrix = np.hstack([matrix, theta[:, None]])
        c = np.concatenate([c_x, [c_theta]])
    else:
        c = np.asarray(c_x, dtype=float)
    upper = np.isfinite(row_upper)
    lower = np.isfinite(row_lower)
    a_ub = np.vstack([matrix[upper], -matrix[lower]])
    b_ub = np.concatenate([row_upper[upper], -row_lower[lower]])
    bounds = np.zeros((c.size, 2))
    bounds[:n, 1] = 1.0
    bounds[n:, 1] = np.inf
    res = linprog(
        c, A_ub=a_ub, b_ub=b_ub, bounds=bounds, method="highs-ipm", options={"presolve": False}
    )
    stats["lp_solves"] = int(stats.get("lp_solves", 0)) + 1
    if res.status == 2:
        return None
    if res.status != 0:
        raise SolverError(f"HiGHS failed on the LP relaxation: {res.message}")
    reduced = np.asarray(res.lower.marginals)[:n] - np.asarray(res.upper.marginals)[:n]
    surrogate = None
    if not earlier and program.budget_row is not None:
        # Any y <= 0 gives a valid bound; clipping guards against round-off in the duals.
        y = np.minimum(np.asarray(res.ineqlin.marginals, dtype=float), 0.0)
        budget_position = int(np.sum(upper[: program.budget_row]))
        y[budget_position] = 0.0
        s_full = c - a_ub.T @ y
        if not has_theta or s_full[n] >= -1e-9:
            surrogate = (s_full[:n], float(y @ b_ub))
    return float(res.fun), np.asarray(res.x)[:n], np.maximum(reduced, 0.0), surrogate


@dataclass
class _MilpRun:
    status: str
    x: np.ndarray | None
    bound: float
    message: str


class _Runner:
    """Builds and runs one reduced MILP: free variables plus fixed ones folded into the rows."""

    def __init__(
        self,
        program: BinaryProgram,
        stats: dict,
        deadline: float | None,
        chains: list[np.ndarray],
    ) -> None:
        self.program = program
        self.stats = stats
        self.deadline = deadline
        self.chains = chains

    def milp(
        self,
        k: int,
        free: np.ndarray,
        fixed_values: np.ndarray,
        *,
        earlier: list[tuple[int, float]],
        cutoff: float | None,
    ) -> _MilpRun:
        p = self.program
        free_idx = np.flatnonzero(free)
        ones = (~free) & fixed_values
        base = np.zeros(p.n, dtype=bool)
        base[ones] = True
        c_x, c_theta = p.objectives[k]
        has_theta = p.theta_column is not None
        rows = [p.matrix]
        theta_rows = [p.theta_column] if has_theta else []
        lows = [p.row_lower]
        ups = [p.row_upper]
        for j, limit in earlier:
            cj_x, cj_theta = p.objectives[j]
            rows.append(cj_x[None, :])
            if has_theta:
                theta_rows.append(np.array([cj_theta]))
            lows.append(np.array([-np.inf]))
            ups.append(np.array([limit]))
        matrix = np.vstack(rows)
        constant = matrix[:, ones].sum(axis=1)
        lo = np.concatenate(lows) - constant
        up = np.concatenate(ups) - constant
        sub = matrix[:, free_idx]
        obj_constant = float(c_x[ones].sum())
        if free_idx.size == 0 and not has_theta:
            ok = np.all(lo <= ROW_TOLERANCE) and np.all(up >= -ROW_TOLERANCE)
            x = base if ok else None
            value = p.value(k, base) if ok else np.inf
            return _MilpRun("optimal" if ok else "infeasible", x, value, "nothing free")
        runs, links = _aggregate(free_idx, self.chains, sub, c_x[free_idx])
        first = np.array([r[0] for r in runs], dtype=int)
        sizes = np.array([len(r) for r in runs], dtype=float)
        sub_agg = sub[:, first]
        c = c_x[free_idx][first]
        integrality = np.ones(first.size)
        lb = np.zeros(first.size)
        ub = sizes.copy()
        if links:
            link_rows = np.zeros((len(links), first.size))
            for row, (a, b) in enumerate(links):
                # x_a >= x_b for the last of run a and the first of run b: b/|b| <= a/|a|.
                link_rows[row, b] = sizes[a]
                link_rows[row, a] = -sizes[b]
            sub_agg = np.vstack([sub_agg, link_rows])
            lo = np.concatenate([lo, np.full(len(links), -np.inf)])
            up = np.concatenate([up, np.zeros(len(links))])
        if has_theta:
            theta_col = np.concatenate([np.concatenate(theta_rows), np.zeros(len(links))])
            sub_agg = np.hstack([sub_agg, theta_col[:, None]])
            c = np.concatenate([c, [c_theta]])
            integrality = np.concatenate([integrality, [0.0]])
            lb = np.concatenate([lb, [0.0]])
            ub = np.concatenate([ub, [np.inf]])
        self.stats["milp_variables"] = int(first.size)
        self.stats["milp_dominance_rows"] = len(links)
        options: dict[str, float | bool] = {
            "mip_rel_gap": 0.0,
            "mip_abs_gap": TOLERANCE,
            "presolve": False,
            "mip_heuristic_effort": 0.0,
            "mip_detect_symmetry": False,
            # The budget row is checked to a relative 1e-12 afterwards: keep HiGHS tight.
            "mip_feasibility_tolerance": 1e-10,
            "primal_feasibility_tolerance": 1e-10,
        }
        if cutoff is not None:
            options["objective_bound"] = cutoff - obj_constant
        res = solve_milp(c, integrality, lb, ub, sub_agg, lo, up, options, deadline=self.deadline)
        self.stats["milp_solves"] = int(self.stats["milp_solves"]) + 1
        self.stats["milp_nodes"] = int(self.stats.get("milp_nodes", 0)) + res.nodes
        if res.in_child:
            self.stats["milp_in_child_process"] = (
                int(self.stats.get("milp_in_child_process", 0)) + 1
            )
        bound = -np.inf if res.dual_bound is None else res.dual_bound + obj_constant
        if res.x is None:
            status = {2: "infeasible", 1: "time_limit"}.get(res.status, "error")
            return _MilpRun(status, None, float(bound), res.message)
        x = base.copy()
        counts = np.rint(res.x[: first.size]).astype(int)
        for run, count in zip(runs, counts, strict=True):
            x[free_idx[run[: max(0, min(count, len(run)))]]] = True
        if not p.feasible(x):
            return _MilpRun("error", None, float(bound), "rounded solution violates a row")
        status = "optimal" if res.status == 0 else ("time_limit" if res.status == 1 else "error")
        return _MilpRun(status, x, float(bound), res.message)


def _aggregate(
    free_idx: np.ndarray,
    chains: list[np.ndarray],
    sub: np.ndarray,
    c: np.ndarray,
) -> tuple[list[list[int]], list[tuple[int, int]]]:
    """Free variables as runs of identical chained columns, and the links between runs.

    Returns the runs (positions in ``free_idx``; a run of identical initiatives becomes one
    integer count, its smaller ids funded first) and ``(a, b)`` pairs of run numbers with
    ``x[last of a] >= x[first of b]``.
    """
    position = {int(v): k for k, v in enumerate(free_idx)}
    in_chain: set[int] = set()
    runs: list[list[int]] = []
    links: list[tuple[int, int]] = []
    for chain in chains:
        members = [position[int(v)] for v in chain if int(v) in position]
        if len(members) < 2:
            continue
        previous = None
        for pos in members:
            in_chain.add(pos)
            if (
                previous is not None
                and np.array_equal(sub[:, runs[previous][0]], sub[:, pos])
                and c[runs[previous][0]] == c[pos]
            ):
                runs[previous].append(pos)
                continue
            runs.append([pos])
            if previous is not None:
                links.append((previous, len(runs) - 1))
            previous = len(runs) - 1
    runs.extend([pos] for pos in range(free_idx.size) if pos not in in_chain)
    return runs, links


def _accept(
    program: BinaryProgram, res: _MilpRun, incumbent: np.ndarray | None
) -> tuple[np.ndarray, float | None, str]:
    """Pick the better of a MILP run and the incumbent; the run's bound certifies the result."""
    if res.status == "optimal" and res.x is not None:
        if incumbent is None or program.value(0, res.x) <= program.value(0, incumbent):
            return res.x, res.bound, "optimal"
        return incumbent, res.bound, "optimal"
    if res.status == "infeasible" and incumbent is not None:
        # Nothing beats the cut-off: the incumbent is optimal within the tolerance.
        return incumbent, program.value(0, incumbent) - TOLERANCE, "optimal"
    if res.status == "time_limit":
        options = [x for x in (res.x, incumbent) if x is not None]
        if not options:
            raise SolverError("time limit reached before HiGHS found a feasible portfolio")
        best = min(options, key=lambda x: program.value(0, x))
        return best, res.bound, "time_limit"
    raise SolverError(f"HiGHS failed: {res.message}")


def _search_path(
    program: BinaryProgram,
    incumbent: np.ndarray | None,
    x_lp: np.ndarray,
    z_lp: float,
    penalty: np.ndarray,
    surrogate: tuple[np.ndarray, float],
    stats: dict,
    node_limit: int,
    core_size: int,
    deadline: float | None,
    final_deadline: float | None,
) -> ProgramSolution | None:
    """Reduced-cost fixing, then the dedicated search; ``None`` if the search hit a limit.

    Without an incumbent (the rounded LP point breaks a row such as the floor) the first core
    search runs without a cut-off and provides one.
    """
    z_inc = np.inf if incumbent is None else program.value(0, incumbent)
    rounded = x_lp > 0.5
    by_penalty = np.lexsort((np.arange(program.n), penalty))
    size = max(1, core_size)
    candidates: list[np.ndarray] = []
    while True:
        free = _unfixed(penalty, z_lp, z_inc)
        if int(free.sum()) <= size:
            candidates, complete, nodes, open_bound = _run_search(
                program, free, rounded, surrogate, z_inc, node_limit, deadline
            )
            searched_everything = True
            stats["search_nodes"] = int(stats.get("search_nodes", 0)) + nodes
            break
        # Search a core (smallest reduced costs) first: a better incumbent shrinks the free set;
        # once every unfixed variable is in the core, the core search is the exact answer.
        core = np.zeros(program.n, dtype=bool)
        core[by_penalty[:size]] = True
        candidates, complete, nodes, open_bound = _run_search(
            program, core, rounded, surrogate, z_inc, node_limit, deadline
        )
        searched_everything = False
        stats["search_nodes"] = int(stats.get("search_nodes", 0)) + nodes
        if not complete:
            break
        better = [x for x in candidates if program.value(0, x) <= z_inc]
        if better:
            incumbent = min(better, key=lambda x: program.value(0, x))
            z_inc = program.value(0, incumbent)
        unfixed = _unfixed(penalty, z_lp, z_inc)
        if not np.any(unfixed & ~core):
            break
        remaining = int(unfixed.sum())
        size = remaining if remaining <= 4 * size else 2 * size
    stats["free_phase1"] = int(_unfixed(penalty, z_lp, z_inc).sum())
    stats["core_size"] = size
    candidates = [x for x in candidates if program.value(0, x) <= z_inc + TOLERANCE]
    out_of_time = deadline is not None and time.perf_counter() > deadline
    if not complete and out_of_time and final_deadline is not None:
        if time.perf_counter() < final_deadline - MIN_HIGHS_SECONDS:
            stats["search_stopped"] = "search share of the time limit"
            return None
        # Out of time: the best portfolio known, with what is certified about it.
        known = candidates + ([incumbent] if incumbent is not None else [])
        if not known:
            raise SolverError("time limit reached before a feasible portfolio was found")
        best = min(known, key=lambda x: program.value(0, x))
        value = program.value(0, best)
        # The open nodes bound the optimum only if the search covered every unfixed variable.
        bound = max(z_lp, min(open_bound, value)) if searched_everything else z_lp
        stats["search_stopped"] = "time limit"
        return ProgramSolution(
            status="time_limit",
            x=best,
            values=[program.value(k, best) for k in range(len(program.objectives))],
            bound=bound,
            gap=max(0.0, value - bound),
            lp_bound=z_lp,
            phases_completed=1,
            stats=stats,
        )
    if not complete or not candidates:
        stats["search_stopped"] = "node or collection limit" if not complete else "no candidate"
        return None
    stats["near_optimal_portfolios"] = len(candidates)
    best = _lexicographic_best(program, candidates)
    values = [program.value(k, best) for k in range(len(program.objectives))]
    return ProgramSolution(
        status="optimal",
        x=best,
        values=values,
        bound=max(z_lp, values[0] - TOLERANCE),
        gap=min(TOLERANCE, max(0.0, values[0] - z_lp)),
        lp_bound=z_lp,
        phases_completed=len(program.objectives),
        stats=stats,
    )


def _lexicographic_best(program: BinaryProgram, candidates: list[np.ndarray]) -> np.ndarray:
    """Filter by each objective in turn (within TOLERANCE), then prefer smaller indices."""
    pool = candidates
    for k in range(len(program.objectives)):
        values = [program.value(k, x) for x in pool]
        floor = min(values)
        pool = [x for x, v in zip(pool, values, strict=True) if v <= floor + TOLERANCE]
    return min(pool, key=lambda x: tuple((~x).astype(np.int8).tolist()))


def _run_search(
    program: BinaryProgram,
    free: np.ndarray,
    fixed: np.ndarray,
    surrogate: tuple[np.ndarray, float],
    cutoff: float,
    node_limit: int,
    deadline: float | None = None,
) -> tuple[list[np.ndarray], bool, int, float]:
    """Search over ``free`` (others keep their value in ``fixed``): near-optimal portfolios."""
    ones = (~free) & fixed
    free_idx = np.flatnonzero(free)
    s_x, constant = surrogate
    c_x, c_theta = program.objectives[0]
    result = search(
        rows=program.matrix[:, free_idx],
        row_lower=program.row_lower,
        row_upper=program.row_upper,
        theta_column=program.theta_column,
        c_x=c_x[free_idx],
        c_theta=c_theta,
        base_activity=program.matrix[:, ones].sum(axis=1),
        base_objective=float(c_x[ones].sum()),
        budget_row=int(program.budget_row),
        surrogate=s_x[free_idx],
        surrogate_constant=constant + float(s_x[ones].sum()),
        cutoff=cutoff,
        tolerance=TOLERANCE,
        extra_bounds=_row_surrogates(program, free_idx, ones),
        node_limit=node_limit,
        deadline=deadline,
    )
    candidates = []
    for positions in result.near_optimal:
        x = ones.copy()
        x[free_idx[list(positions)]] = True
        if program.feasible(x):
            candidates.append(x)
    return candidates, result.complete, result.nodes, result.open_bound


def _row_surrogates(
    program: BinaryProgram, free_idx: np.ndarray, ones: np.ndarray
) -> list[tuple[np.ndarray, float]]:
    """One extra bound per ``θ`` row: ``objective >= c_x·x + c_θ (A_r x − u_r)/(−t_r)``.

    Over the free variables, with the fixed ones folded into the constant. (Bounds from LPs
    over pairs of rows were tried and pruned no more nodes on the benchmark instances.)
    """
    c_x, c_theta = program.objectives[0]
    if program.theta_column is None or c_theta <= 0:
        return []
    out = []
    for r, t in enumerate(program.theta_column):
        if t < 0 and np.isfinite(program.row_upper[r]):
            s_row = c_x + c_theta * program.matrix[r] / -t
            const = c_theta * program.row_upper[r] / t
        elif t > 0 and np.isfinite(program.row_lower[r]):
            s_row = c_x - c_theta * program.matrix[r] / t
            const = c_theta * program.row_lower[r] / t
        else:
            continue
        out.append((s_row[free_idx], float(const + s_row[ones].sum())))
    return out
