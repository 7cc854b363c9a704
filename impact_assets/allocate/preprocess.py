"""How confidence enters the allocation (spec §B2): hard threshold, penalty, effective returns."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from impact_assets.allocate.inputs import AllocationInputError, Candidate

#: Scenario names and order, exactly as upstream.
SCENARIOS: tuple[str, str, str] = ("best", "med", "worst")


def gamma(confidence: float) -> float:
    """The default confidence penalty ``γ = 1 − c`` (spec §B2 step 2).

    Raises
    ------
    AllocationInputError
        If ``confidence`` is outside [0, 1] (upstream: "Confidence score must be between 0 and 1.").
    """
    if not 0.0 <= confidence <= 1.0:
        raise AllocationInputError(f"Confidence score must be between 0 and 1, got {confidence!r}")
    return 1.0 - confidence


def effective_returns(candidate: Candidate) -> dict[str, float]:
    """``R̃_j = (1 − γ)·R_j + γ·R_worst`` for j in best, med, worst (worst is never changed)."""
    g = gamma(candidate.confidence)
    worst = candidate.return_worst
    return {
        "best": (1.0 - g) * candidate.return_best + g * worst,
        "med": (1.0 - g) * candidate.return_median + g * worst,
        "worst": (1.0 - g) * worst + g * worst,
    }


@dataclass(frozen=True)
class Prepared:
    """The eligible initiatives as arrays, in canonical order (sorted by id).

    Building every model in the same canonical order makes the solver's answer independent of
    the order of the input list.

    Attributes
    ----------
    eligible:
        Candidates with ``confidence >= min_confidence_threshold``, sorted by id.
    below_threshold:
        The filtered-out candidates, in input order.
    effective:
        Array ``(n, 3)`` of effective returns, columns in :data:`SCENARIOS` order.
    cost, raw_worst:
        Arrays ``(n,)``.
    """

    eligible: list[Candidate]
    below_threshold: list[Candidate]
    effective: np.ndarray
    cost: np.ndarray
    raw_worst: np.ndarray

    @property
    def ids(self) -> list[str]:
        return [c.initiative_id for c in self.eligible]


def prepare(candidates: Sequence[Candidate], min_confidence_threshold: float) -> Prepared:
    """Apply the confidence filter (``c >= threshold`` is kept) and compute effective returns."""
    kept = sorted(
        (c for c in candidates if c.confidence >= min_confidence_threshold),
        key=lambda c: c.initiative_id,
    )
    dropped = [c for c in candidates if c.confidence < min_confidence_threshold]
    n = len(kept)
    effective = np.zeros((n, 3))
    for row, c in enumerate(kept):
        eff = effective_returns(c)
        effective[row] = [eff[s] for s in SCENARIOS]
    cost = np.array([c.cost for c in kept], dtype=float)
    raw_worst = np.array([c.return_worst for c in kept], dtype=float)
    return Prepared(kept, dropped, effective, cost, raw_worst)
