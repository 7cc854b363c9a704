"""Exact 0/1 knapsack with one real-valued capacity: the per-scenario optimum V*_j (spec §B3).

The method is the classical one for a single constraint:

1. Items that can never help are dropped: value <= 0, or cost above the capacity.
2. Items are sorted by value/cost ratio (ties by position, so the order is deterministic).
3. The Dantzig bound (the LP relaxation, solved greedily up to the critical item) gives an upper
   bound ``U``; greedy first-fit gives an incumbent ``L``.
4. Reduced-cost fixing: with the critical ratio ``r``, taking an item out of (or into) the LP
   solution costs at least ``|v - r w|``. When ``U - |v - r w| < L`` the item keeps its LP value
   in every optimal solution. What is left is a small "core".
5. Depth-first branch-and-bound over the core, with the Dantzig bound at every node (found by
   bisection on prefix sums, so each bound costs ``O(log n)``).

If the branch-and-bound exceeds its node budget, the core is handed to HiGHS
(``scipy.optimize.milp``) instead. Either way the answer is certified: ``bound - value`` is the
proven gap (zero up to the pruning tolerance).
"""

from __future__ import annotations

import bisect
import math
import time
from dataclasses import dataclass

import numpy as np

from impact_assets.allocate.highs_run import solve_milp

#: Relative tolerance used to prune nodes: a branch must beat the incumbent by more than this
#: (times the scale of the values) to be explored.
PRUNE_TOLERANCE = 1e-12

#: Branch-and-bound nodes before falling back to HiGHS on the core.
DEFAULT_NODE_LIMIT = 200_000


class KnapsackError(RuntimeError):
    """The knapsack could not be solved to proven optimality."""


@dataclass(frozen=True)
class KnapsackSolution:
    """An optimal 0/1 knapsack selection.

    Attributes
    ----------
    value:
        The optimal value (``math.fsum`` of the selected values).
    selected:
        Boolean mask over the input items.
    upper_bound:
        A proven upper bound on the optimum (equal to ``value`` up to the pruning tolerance).
    method:
        ``"trivial"``, ``"branch_and_bound"`` or ``"highs"`` (the fallback).
    core_size:
        Items left free after reduced-cost fixing.
    nodes:
        Branch-and-bound nodes explored.
    """

    value: float
    selected: np.ndarray
    upper_bound: float
    method: str
    core_size: int
    nodes: int


def solve_knapsack(
    values: np.ndarray,
    costs: np.ndarray,
    capacity: float,
    *,
    node_limit: int = DEFAULT_NODE_LIMIT,
    deadline: float | None = None,
) -> KnapsackSolution:
    """Maximise ``sum(values[S])`` subject to ``sum(costs[S]) <= capacity``.

    Parameters
    ----------
    values:
        Item values (any sign, finite).
    costs:
        Item costs, strictly positive and finite.
    capacity:
        The budget, ``>= 0``.
    node_limit:
        Branch-and-bound nodes before the core is handed to HiGHS.
    deadline:
        ``time.perf_counter()`` value at which HiGHS stops; the best selection found is then
        returned with ``method="highs_time_limit"`` and HiGHS's proven ``upper_bound``.
    """
    values = np.asarray(values, dtype=float)
    costs = np.asarray(costs, dtype=float)
    n = values.shape[0]
    selected = np.zeros(n, dtype=bool)
    # Costs that sum to the capacity exactly must fit despite rounding (relative 1e-12).
    capacity = capacity * (1 + 1e-12)
    useful = np.flatnonzero((values > 0) & (costs <= capacity))
    if useful.size == 0:
        return KnapsackSolution(0.0, selected, 0.0, "trivial", 0, 0)
    v = values[useful]
    w = costs[useful]
    # Sort by ratio descending; ties keep input position (lexsort is stable, last key primary).
    order = np.lexsort((useful, -(v / w)))
    v, w, idx = v[order], w[order], useful[order]
    cum_w = np.cumsum(w)
    if cum_w[-1] <= capacity:
        selected[idx] = True
        total = math.fsum(v)
        return KnapsackSolution(total, selected, total, "trivial", 0, 0)
    critical = int(np.searchsorted(cum_w, capacity, side="right"))
    taken_w = cum_w[critical - 1] if critical > 0 else 0.0
    ratio = v[critical] / w[critical]
    lp_bound = float(np.sum(v[:critical]) + (capacity - taken_w) * ratio)

    # Greedy first-fit incumbent in ratio order.
    greedy = np.zeros(v.size, dtype=bool)
    greedy[:critical] = True
    room = capacity - taken_w
    for k in range(critical, v.size):
        if w[k] <= room:
            greedy[k] = True
            room -= w[k]
    incumbent = float(np.sum(v[greedy]))

    # Reduced-cost fixing against the Dantzig bound.
    penalty = np.abs(v - ratio * w)
    position = np.arange(v.size)
    fixed = lp_bound - penalty < incumbent
    fixed_in = fixed & (position < critical)
    free = ~fixed
    scale = max(1.0, float(np.max(v)))
    tolerance = PRUNE_TOLERANCE * scale
    core = np.flatnonzero(free)
    core_capacity = capacity - float(np.sum(w[fixed_in]))
    base_value = float(np.sum(v[fixed_in]))

    best_core, nodes, method = _branch_and_bound(
        v[core],
        w[core],
        core_capacity,
        incumbent - base_value,
        greedy[core],
        tolerance,
        node_limit,
        deadline,
    )
    upper = None
    if best_core is None:
        best_core, core_bound = _highs_core(v[core], w[core], core_capacity, deadline)
        method = "highs"
        if core_bound is not None:
            method = "highs_time_limit"
            upper = min(lp_bound, base_value + core_bound)
        if best_core is None:
            best_core = greedy[core]
    chosen = fixed_in.copy()
    chosen[core[best_core]] = True
    selected[idx[chosen]] = True
    total = math.fsum(values[selected])
    if upper is None:
        upper = min(lp_bound, total + tolerance)
    return KnapsackSolution(
        value=total,
        selected=selected,
        upper_bound=max(total, upper),
        method=method,
        core_size=int(core.size),
        nodes=nodes,
    )


def _branch_and_bound(
    v: np.ndarray,
    w: np.ndarray,
    capacity: float,
    incumbent_value: float,
    incumbent: np.ndarray,
    tolerance: float,
    node_limit: int,
    deadline: float | None = None,
) -> tuple[np.ndarray | None, int, str]:
    """Depth-first search over items already sorted by ratio.

    ``None`` when the node limit is hit or the deadline (checked every 1,000 nodes) passed.
    """
    m = v.size
    best = incumbent.copy()
    if m == 0:
        return best, 0, "branch_and_bound"
    best_value = max(incumbent_value, float(np.sum(v[incumbent])))
    vl = v.tolist()
    wl = w.tolist()
    prefix_w = [0.0]
    prefix_v = [0.0]
    for a, b in zip(vl, wl, strict=True):
        prefix_v.append(prefix_v[-1] + a)
        prefix_w.append(prefix_w[-1] + b)

    def bound(k: int, room: float) -> float:
        # Items k.. fill greedily until the critical one, taken fractionally.
        t = bisect.bisect_right(prefix_w, prefix_w[k] + room, lo=k) - 1
        gain = prefix_v[t] - prefix_v[k]
        if t < m:
            gain += (room - (prefix_w[t] - prefix_w[k])) * vl[t] / wl[t]
        return gain

    # Identical items are adjacent in ratio order; skipping one skips its later copies too (the
    # copies taken are always the first ones), so symmetric selections are not enumerated.
    after_copies = list(range(1, m + 1))
    for k in range(m - 2, -1, -1):
        if vl[k] == vl[k + 1] and wl[k] == wl[k + 1]:
            after_copies[k] = after_copies[k + 1]
    # Items of equal value are in increasing cost: once one is skipped, a later one is never
    # taken (swapping it for the skipped one keeps the value and frees budget).
    later_equal = [False] * m
    seen: set[float] = set()
    for k in range(m - 1, -1, -1):
        later_equal[k] = vl[k] in seen
        seen.add(vl[k])
    take = [False] * m
    nodes = 0
    none: frozenset[float] = frozenset()
    # Stack entries: (k, room, value, decision, banned) where decision is 1 (take k) or 0 (skip
    # k) and banned holds the values of skipped items that have later equal-value items.
    stack: list[tuple[int, float, float, int, frozenset[float]]] = [
        (0, capacity, 0.0, 0, none),
        (0, capacity, 0.0, 1, none),
    ]
    while stack:
        k, room, value, decision, banned = stack.pop()
        nodes += 1
        if nodes > node_limit or (
            deadline is not None and nodes % 1000 == 0 and time.perf_counter() > deadline
        ):
            return None, nodes, "branch_and_bound"
        if decision == 1:
            if wl[k] > room or vl[k] in banned:
                continue
            room -= wl[k]
            value += vl[k]
            take[k] = True
            nxt = k + 1
        else:
            nxt = after_copies[k]
            take[k:nxt] = [False] * (nxt - k)
            if nxt < m and later_equal[nxt - 1]:
                banned = banned | {vl[k]}
        if value > best_value + tolerance:
            best_value = value
            best = np.zeros(m, dtype=bool)
            best[:nxt] = take[:nxt]
        if nxt >= m or value + bound(nxt, room) <= best_value + tolerance:
            continue
        stack.append((nxt, room, value, 0, banned))
        stack.append((nxt, room, value, 1, banned))
    return best, nodes, "branch_and_bound"


def _highs_core(
    v: np.ndarray, w: np.ndarray, capacity: float, deadline: float | None
) -> tuple[np.ndarray | None, float | None]:
    """Solve the core with HiGHS (the fallback for hard cores), interruptibly.

    Returns the selection and ``None`` when proven optimal, or at the deadline the best
    selection found (``None`` if none) and the proven upper bound on the core's value.
    """
    scale = max(1.0, float(np.max(np.abs(v))))
    res = solve_milp(
        -v / scale,
        np.ones(v.size),
        np.zeros(v.size),
        np.ones(v.size),
        w[None, :] / max(capacity, 1e-300),
        np.array([-np.inf]),
        np.array([1.0]),
        {
            "mip_rel_gap": 0.0,
            "mip_abs_gap": 1e-12,
            "mip_feasibility_tolerance": 1e-10,
            "primal_feasibility_tolerance": 1e-10,
        },
        deadline=deadline,
    )
    if res.status not in (0, 1):
        raise KnapsackError(f"HiGHS could not solve the knapsack core: {res.message}")
    chosen = None if res.x is None else res.x > 0.5
    if chosen is not None and float(np.sum(w[chosen])) > capacity * (1 + 1e-12):
        raise KnapsackError("HiGHS returned a knapsack selection over capacity")
    if res.status == 0:
        return chosen, None
    bound = np.inf if res.dual_bound is None else -res.dual_bound * scale
    return chosen, float(bound)
