"""Test helpers: the spec fixture, event builders and an exhaustive (brute-force) reference."""

from __future__ import annotations

import itertools

import numpy as np

#: The upstream allocate fixture (spec §B10): id, cost, best, median, worst, confidence.
FIXTURE = [
    ("A", 4, 15, 10, 2, 0.9),
    ("B", 3, 12, 8, 1, 0.6),
    ("C", 3, 9, 6, 2, 0.8),
    ("D", 2, 7, 5, 3, 0.4),
    ("E", 5, 18, 9, 0, 0.5),
]


def initiative(ident, cost, best, median, worst, confidence, **extra):
    return {
        "initiative_id": ident,
        "cost": cost,
        "return_best": best,
        "return_median": median,
        "return_worst": worst,
        "confidence": confidence,
        "model_type": "experiment",
        "sample_size": 100,
        **extra,
    }


def event(rows, budget):
    return {"initiatives": [initiative(*row) for row in rows], "budget": budget}


def fixture_event(budget=10):
    return event(FIXTURE, budget)


def random_rows(rng, n, *, integer=False):
    """Random initiatives; ``integer`` data produces exact ties on purpose."""
    rows = []
    for i in range(n):
        if integer:
            cost = int(rng.integers(1, 6))
            median = int(rng.integers(-2, 8))
            worst = median - int(rng.integers(0, 4))
            best = median + int(rng.integers(0, 4))
            confidence = float(rng.choice([0.0, 0.5, 1.0]))
        else:
            cost = float(rng.uniform(0.5, 10))
            median = float(rng.uniform(-3, 10))
            worst = median - float(rng.uniform(0, 6))
            best = median + float(rng.uniform(0, 6))
            confidence = float(rng.choice([0.0, 1.0])) if rng.random() < 0.1 else rng.random()
        rows.append((f"i{i:02d}", cost, best, median, worst, float(confidence)))
    return rows


def enumerate_portfolios(rows, budget, threshold, floor, rule, weights=None):
    """Every subset of the eligible rows, evaluated by the spec formulas.

    Returns ``(ids, masks, feasible, key1, med, cost, v_star)`` where masks is a boolean array
    ``(2^n, n)`` over the eligible ids sorted, ``key1`` is θ (minimax, minimise) or the expected
    value (bayesian, maximise), ``med``/``cost`` the tie-break sums.
    """
    eligible = sorted((r for r in rows if r[5] >= threshold), key=lambda r: r[0])
    ids = [r[0] for r in eligible]
    n = len(eligible)
    cost = np.array([r[1] for r in eligible], dtype=float)
    raw = np.array([[r[2], r[3], r[4]] for r in eligible], dtype=float).reshape(n, 3)
    c = np.array([r[5] for r in eligible], dtype=float)
    eff = c[:, None] * raw + (1 - c[:, None]) * raw[:, 2:3]
    masks = np.array(list(itertools.product([False, True], repeat=n)), dtype=bool).reshape(-1, n)
    x = masks.astype(float)
    total_cost = x @ cost
    within = total_cost <= budget * (1 + 1e-12)
    totals = x @ eff  # (2^n, 3)
    v_star = np.array([totals[within, j].max() for j in range(3)])
    feasible = within.copy()
    if floor is not None:
        feasible &= x @ raw[:, 2] >= floor - 1e-12
    if rule == "minimax_regret":
        key1 = np.maximum(0.0, (v_star[None, :] - totals).max(axis=1))
    else:
        w = np.array([weights["best"], weights["med"], weights["worst"]])
        key1 = totals @ w
    return ids, masks, feasible, key1, totals[:, 1], total_cost, v_star


def reference_choice(rows, budget, threshold, floor, rule, weights=None, tol=1e-9):
    """Lexicographic optimum as documented, and whether each level was decided cleanly.

    Returns ``(value, selected_ids or None, clean)``; ``value`` is None when infeasible. ``clean``
    is False when some portfolio is within a grey zone (between ``tol`` and ``1e-6`` relative)
    of the optimum at any level, where a tolerance-based solver may legitimately differ.
    """
    ids, masks, feasible, key1, med, cost, v_star = enumerate_portfolios(
        rows, budget, threshold, floor, rule, weights
    )
    if not feasible.any():
        return None, None, True
    scale = max(1.0, float(np.max(np.abs(v_star))), float(np.max(np.abs(key1[feasible]))))
    pool = np.flatnonzero(feasible)
    clean = True
    levels = [key1 if rule == "minimax_regret" else -key1, -med, cost]
    for level, values in enumerate(levels):
        s = scale if level < 2 else max(1.0, float(np.max(np.abs(cost))))
        v = values[pool]
        best = v.min()
        grey = (v > best + tol * s) & (v <= best + 1e-6 * s)
        clean &= not grey.any()
        pool = pool[v <= best + tol * s]
    # Level 4: prefer smaller ids (first difference in id order has the 1).
    winner = min(pool, key=lambda p: tuple((~masks[p]).astype(int).tolist()))
    value = float(key1[winner])
    selected = [i for i, take in zip(ids, masks[winner], strict=True) if take]
    return value, selected, clean
