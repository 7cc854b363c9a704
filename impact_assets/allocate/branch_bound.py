"""A dedicated branch-and-bound for the allocation programs: Lagrangian (surrogate) knapsack bounds.

After LP reduced-cost fixing (:mod:`impact_assets.allocate.solver`) only a few dozen to a few
hundred variables are free. For those, the LP duals ``y`` of every row except the budget row give
a valid lower bound for every feasible ``x`` (weak duality)::

    objective(x) >= C + Σ_i s_i x_i,    s = c − Aᵀy,  C = y·b

while the budget row is kept as a hard knapsack constraint. More such surrogates are valid too
(for minimax regret, each regret row alone: ``θ >= V*_j − R̃_j·x``). At each node of a
depth-first search over the free variables (in the primary surrogate's ratio order) the bound is
the largest over the surrogates of ``C + s·x_decided`` minus the Dantzig (fractional greedy)
bound of the undecided items under the remaining budget. The Dantzig bounds are found by
bisection on prefix sums (precomputed for every suffix of the search order for the extra
surrogates), so each costs ``O(log k)``. At the root the primary bound equals the LP bound.

Every node is also a complete portfolio (undecided items left out); the search collects every
feasible portfolio whose objective is within ``tolerance`` of the best, so the lexicographic
tie-break can be applied exactly to the full set of near-optimal portfolios.
"""

from __future__ import annotations

import bisect
import time
from dataclasses import dataclass

import numpy as np

#: Relative slack on the budget row, so that costs summing exactly to the budget fit.
BUDGET_SLACK = 1e-12

#: Extra surrogates are skipped above this many free variables (their tables grow as k²).
MAX_EXTRA_TABLE = 800


@dataclass(frozen=True)
class SearchResult:
    """Outcome of :func:`search`.

    ``near_optimal`` lists every feasible portfolio (as a tuple of free-variable positions) whose
    objective is within the tolerance of ``best_value``; ``complete`` is ``False`` when the node
    or collection limit stopped the search (the result is then not certified) and ``open_bound``
    is then the smallest bound of the unexplored nodes.
    """

    best_value: float
    near_optimal: list[tuple[int, ...]]
    nodes: int
    complete: bool
    open_bound: float


class _Suffix:
    """Dantzig bounds over every suffix ``p..k-1`` of the search order, for one surrogate."""

    def __init__(self, gain: np.ndarray, weight: np.ndarray) -> None:
        k = gain.size
        self.tables: list[tuple[list[float], list[float], list[float]]] = [([0.0], [0.0], [])]
        items: list[tuple[float, int]] = []
        for p in range(k - 1, -1, -1):
            if gain[p] > 0:
                bisect.insort(items, (-(gain[p] / weight[p]), p))
            pw = [0.0]
            pg = [0.0]
            ratios = []
            for neg_ratio, q in items:
                pw.append(pw[-1] + float(weight[q]))
                pg.append(pg[-1] + float(gain[q]))
                ratios.append(-neg_ratio)
            self.tables.append((pw, pg, ratios))
        self.tables.reverse()  # tables[p] covers items p..k-1; tables[k] is empty

    def bound(self, p: int, room: float) -> float:
        pw, pg, ratios = self.tables[p]
        room = max(room, 0.0)
        t = bisect.bisect_right(pw, room) - 1
        gain = pg[t]
        if t < len(ratios):
            gain += (room - pw[t]) * ratios[t]
        return gain


def search(
    *,
    rows: np.ndarray,
    row_lower: np.ndarray,
    row_upper: np.ndarray,
    theta_column: np.ndarray | None,
    c_x: np.ndarray,
    c_theta: float,
    base_activity: np.ndarray,
    base_objective: float,
    budget_row: int,
    surrogate: np.ndarray,
    surrogate_constant: float,
    cutoff: float,
    tolerance: float,
    extra_bounds: list[tuple[np.ndarray, float]] | None = None,
    node_limit: int = 2_000_000,
    collect_limit: int = 10_000,
    deadline: float | None = None,
) -> SearchResult:
    """Enumerate the free variables; see the module docstring.

    Parameters
    ----------
    rows, row_lower, row_upper, theta_column:
        The program rows restricted to the free variables; ``base_activity`` is the row activity
        of the fixed variables, ``base_objective`` their objective contribution.
    c_x, c_theta:
        The objective over the free variables.
    budget_row:
        Index of the knapsack row (non-negative coefficients, finite upper bound).
    surrogate, surrogate_constant:
        ``s`` and ``C`` of the primary Lagrangian bound (fixed variables folded into ``C``).
    cutoff:
        Only portfolios with objective ``<= cutoff + tolerance`` are of interest.
    extra_bounds:
        More ``(s, C)`` surrogates; the largest bound is used at each node.
    deadline:
        ``time.perf_counter()`` value after which the search stops (incomplete).
    """
    k = c_x.size
    weight = rows[budget_row]
    room0 = float(row_upper[budget_row] - base_activity[budget_row])
    # Costs that sum to the budget exactly must fit despite rounding (relative 1e-12).
    budget_slack = BUDGET_SLACK * max(1.0, abs(float(row_upper[budget_row])))
    gain = -np.asarray(surrogate, dtype=float)
    positive = gain > 0
    ratio = np.where(positive, gain / np.maximum(weight, 1e-300), -np.inf)
    order = np.lexsort((np.arange(k), -ratio))
    g = gain[order].tolist()
    w = weight[order].tolist()
    n_pos = int(positive.sum())
    prefix_g = [0.0]
    prefix_w = [0.0]
    for gi, wi in zip(g[:n_pos], w[:n_pos], strict=True):
        prefix_g.append(prefix_g[-1] + gi)
        prefix_w.append(prefix_w[-1] + wi)
    cols = [rows[:, i].tolist() for i in order]
    cx = c_x[order].tolist()
    lo = row_lower.tolist()
    up = row_upper.tolist()
    upper_theta: list[tuple[int, float, float]] = []
    lower_theta: list[tuple[int, float, float]] = []
    plain_rows: list[int] = []
    for r in range(rows.shape[0]):
        t = 0.0 if theta_column is None else float(theta_column[r])
        if t < 0 and np.isfinite(up[r]):
            upper_theta.append((r, -t, up[r]))
        elif t > 0 and np.isfinite(lo[r]):
            lower_theta.append((r, t, lo[r]))
        elif r != budget_row:
            plain_rows.append(r)
    extras = extra_bounds if (extra_bounds and k <= MAX_EXTRA_TABLE) else []
    suffixes = [_Suffix(-np.asarray(sv, dtype=float)[order], weight[order]) for sv, _ in extras]
    extra_s = [np.asarray(sv, dtype=float)[order].tolist() for sv, _ in extras]
    extra_c = [float(c) for _, c in extras]
    n_extra = len(extras)

    def dantzig(j: int, room: float) -> float:
        if j >= n_pos:
            return 0.0
        room = max(room, 0.0)
        t = bisect.bisect_right(prefix_w, prefix_w[j] + room, lo=j, hi=n_pos + 1) - 1
        total = prefix_g[t] - prefix_g[j]
        if t < n_pos:
            total += (room - (prefix_w[t] - prefix_w[j])) * g[t] / w[t]
        return total

    def node_bound(j: int, room: float, sg: float, parts: list[float]) -> float:
        bound = surrogate_constant - (sg + dantzig(j, room))
        for q in range(n_extra):
            bound = max(bound, extra_c[q] + parts[q] - suffixes[q].bound(j, room))
        return bound

    tables = [sfx.tables for sfx in suffixes]
    check_order = list(range(n_extra))
    # Feasibility look-ahead for the other rows (e.g. the worst-return floor): prune when even
    # the best fractional completion under the remaining budget cannot satisfy the row.
    reach: list[tuple[int, float, float, list]] = []
    if k <= MAX_EXTRA_TABLE:
        for r in plain_rows:
            coef = rows[r][order]
            if np.isfinite(lo[r]):
                reach.append((r, 1.0, lo[r], _Suffix(coef, weight[order]).tables))
            if np.isfinite(up[r]):
                reach.append((r, -1.0, -up[r], _Suffix(-coef, weight[order]).tables))

    def prunable(
        j: int, room: float, sg: float, parts: list[float], act: list[float], limit: float
    ) -> bool:
        # Cheapest first, stop at the first bound that prunes; the extra bound that pruned
        # last is tried first next time.
        if surrogate_constant - (sg + dantzig(j, room)) > limit:
            return True
        room = max(room, 0.0)
        for r, sign, need, table in reach:
            pw, pg, ratios = table[j]
            t = bisect.bisect_right(pw, room) - 1
            gain = pg[t]
            if t < len(ratios):
                gain += (room - pw[t]) * ratios[t]
            if sign * act[r] + gain < need - 1e-9:
                return True
        for pos, q in enumerate(check_order):
            pw, pg, ratios = tables[q][j]
            t = bisect.bisect_right(pw, room) - 1
            gain = pg[t]
            if t < len(ratios):
                gain += (room - pw[t]) * ratios[t]
            if extra_c[q] + parts[q] - gain > limit:
                if pos:
                    check_order.insert(0, check_order.pop(pos))
                return True
        return False

    def objective(act: list[float], lin: float) -> float | None:
        for r in plain_rows:
            if act[r] < lo[r] - 1e-9 or act[r] > up[r] + 1e-9:
                return None
        theta = 0.0
        for r, t, bound in upper_theta:
            theta = max(theta, (act[r] - bound) / t)
        for r, t, bound in lower_theta:
            theta = max(theta, (bound - act[r]) / t)
        return lin + c_theta * theta

    best = cutoff
    found: list[tuple[float, tuple[int, ...]]] = []
    act0 = base_activity.tolist()
    value = objective(act0, base_objective)
    if value is not None and value <= best + tolerance:
        found.append((value, ()))
        best = min(best, value)
    nodes = 0
    chosen: list[int] = []
    parts0 = [0.0] * n_extra
    # Frame: (j, room, surrogate gain, objective linear part, activity, extra parts, depth, take)
    stack: list[tuple] = []
    if k:
        stack.append((0, room0, 0.0, base_objective, act0, parts0, 0, False))
        stack.append((0, room0, 0.0, base_objective, act0, parts0, 0, True))
    while stack:
        j, room, sg, lin, act, parts, depth, take = stack.pop()
        nodes += 1
        if nodes > node_limit or (
            deadline is not None and not nodes & 4095 and time.perf_counter() > deadline
        ):
            open_bound = min(
                [node_bound(f[0], f[1], f[2], f[5]) for f in stack] + [best], default=best
            )
            return SearchResult(best, _near(found, best, tolerance), nodes, False, open_bound)
        del chosen[depth:]
        if take:
            if w[j] > room + budget_slack:
                continue
            room -= w[j]
            sg += g[j]
            lin += cx[j]
            act = [a + b for a, b in zip(act, cols[j], strict=True)]
            if n_extra:
                parts = [p + extra_s[q][j] for q, p in enumerate(parts)]
            chosen.append(j)
            value = objective(act, lin)
            if value is not None and value <= best + tolerance:
                best = min(best, value)
                found.append((value, tuple(int(order[i]) for i in chosen)))
                if len(found) > collect_limit:
                    found = [(v, p) for v, p in found if v <= best + tolerance]
                    if len(found) > collect_limit:
                        return SearchResult(best, _near(found, best, tolerance), nodes, False, best)
        nxt = j + 1
        if nxt >= k or prunable(nxt, room, sg, parts, act, best + tolerance):
            continue
        depth_now = len(chosen)
        stack.append((nxt, room, sg, lin, act, parts, depth_now, False))
        stack.append((nxt, room, sg, lin, act, parts, depth_now, True))
    return SearchResult(best, _near(found, best, tolerance), nodes, True, best)


def _near(
    found: list[tuple[float, tuple[int, ...]]], best: float, tolerance: float
) -> list[tuple[int, ...]]:
    return [p for v, p in found if v <= best + tolerance]
