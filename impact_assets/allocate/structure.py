"""Dominance chains: initiatives that can never be funded before another one.

Two variables of a :class:`~impact_assets.allocate.solver.BinaryProgram` have the same *profile*
when their columns agree in every row except the budget row and in every objective that is not
the budget row itself (for both rules the last tie-break objective is the cost, the budget row's
coefficients). Within a profile, the cheaper variable ``i`` dominates the dearer ``j``: swapping
``j`` for ``i`` in any portfolio changes no row but the budget (which it relaxes) and makes no
objective worse. The swap keeps the lexicographic optimum of spec Part D item 6 when it is also
better in step 3 or step 4: ``i`` is cheaper by more than the tolerance, or it has the smaller
index (the canonical order is the id order). Then the optimum satisfies ``x_j <= x_i``.

Each profile is sorted by (cost, index) and cut into *chains* ``x[c0] >= x[c1] >= ...`` wherever
a link would not satisfy that condition. Identical initiatives (same cost as well) form runs in
a chain, ordered by id: the smaller ids are funded first, so symmetric copies are never
enumerated, and the MILP merges each run into one integer count.
"""

from __future__ import annotations

import numpy as np

#: A link needs the dearer item to cost more by this much (scaled units; 2 × the solver's
#: tolerance) when it does not also have the larger index.
COST_MARGIN = 2e-9


def dominance_chains(
    matrix: np.ndarray,
    objectives: list[np.ndarray],
    budget_row: int,
) -> list[np.ndarray]:
    """Chains (arrays of column indices, length >= 2) of the dominance order described above.

    Parameters
    ----------
    matrix:
        The program's rows ``(m, n)``.
    objectives:
        The ``x`` coefficients of each objective.
    budget_row:
        Index of the budget row (non-negative coefficients, smaller is better).
    """
    n = matrix.shape[1]
    if n < 2:
        return []
    cost = matrix[budget_row]
    cost_objective = [k for k, c in enumerate(objectives) if np.array_equal(c, cost)]
    features = [np.delete(matrix, budget_row, axis=0)]
    features += [c[None, :] for k, c in enumerate(objectives) if k not in cost_objective]
    profile = np.ascontiguousarray(np.vstack(features).T)
    keys = profile.view(np.dtype((np.void, profile.dtype.itemsize * profile.shape[1]))).ravel()
    _, group = np.unique(keys, return_inverse=True)
    chains: list[np.ndarray] = []
    order = np.lexsort((np.arange(n), cost, group))
    start = 0
    for pos in range(1, n + 1):
        if pos < n and group[order[pos]] == group[order[start]]:
            continue
        members = order[start:pos]
        start = pos
        if members.size < 2:
            continue
        current = [int(members[0])]
        for j in members[1:]:
            i = current[-1]
            strict_cost = bool(cost_objective) and cost[j] - cost[i] > COST_MARGIN
            if j > i or strict_cost:
                current.append(int(j))
            else:
                if len(current) > 1:
                    chains.append(np.array(current))
                current = [int(j)]
        if len(current) > 1:
            chains.append(np.array(current))
    return chains
