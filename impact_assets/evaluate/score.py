"""``Evaluate``: the upstream v1 "score" strategy, bit for bit (spec §A1-§A2).

The confidence depends on the initiative id only::

    seed       = int(md5(utf8(initiative_id)).hexdigest(), 16) mod 2**32
    confidence = random.Random(seed).uniform(lo, hi)      # = lo + (hi - lo) * first draw

Python's stdlib Mersenne Twister seeded with an integer is the same in every process (no hash
randomisation is involved), so the draw is reproducible across runs and machines. The measurement
itself is ignored; :class:`~impact_assets.evaluate.evidence.EvidenceEvaluate` is the variant that
reads it.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping, Sequence
from typing import Any

from impact_assets.evaluate.component import EvaluateComponent
from impact_assets.evaluate.inputs import Measurement
from impact_assets.evaluate.scorers import Score, Scorer, register_scorer

_SEED_MODULUS = 2**32


def id_seed(initiative_id: str) -> int:
    """The upstream seed: the MD5 digest of the UTF-8 id as an integer, modulo 2**32."""
    digest = hashlib.md5(initiative_id.encode("utf-8"), usedforsecurity=False).hexdigest()
    return int(digest, 16) % _SEED_MODULUS


def score_confidence(initiative_id: str, lo: float, hi: float) -> float:
    """The upstream v1 confidence for ``initiative_id`` within ``[lo, hi]``.

    Returns ``random.Random(id_seed(initiative_id)).uniform(lo, hi)``, which reproduces the
    upstream numbers exactly (spec §A2). The value lies in ``[lo, hi]``.
    """
    return random.Random(id_seed(initiative_id)).uniform(lo, hi)  # noqa: S311 (not crypto)


@register_scorer("score")
class IdScorer(Scorer):
    """The upstream v1 draw: a pseudo-random point of the range, seeded by the id."""

    name = "score"

    def score(self, measurement: Measurement, confidence_range: tuple[float, float]) -> Score:
        lo, hi = confidence_range
        seed = id_seed(measurement.initiative_id)
        confidence = score_confidence(measurement.initiative_id, lo, hi)
        draw = random.Random(seed).random()  # noqa: S311 (the same first draw, for the record)
        return Score(confidence, {"seed": seed, "draw": draw})


class Evaluate(EvaluateComponent):
    """EVALUATE with the upstream v1 "score" strategy.

    Parameters
    ----------
    ranges
        Overrides of the v1 confidence-range table (model type -> ``[lo, hi]``); ``None`` (the
        default, and the upstream behaviour) keeps the v1 table.
    """

    def __init__(self, ranges: Mapping[str, Sequence[float]] | None = None):
        super().__init__(IdScorer(), ranges)

    def params(self) -> dict[str, Any]:
        return {"ranges": self.ranges}
