"""EVALUATE: how far to trust each measurement, and its three return scenarios.

- :class:`Evaluate` (``strategy="score"``): the upstream v1 confidence, bit for bit.
- :class:`EvidenceEvaluate` (``strategy="evidence"``): a deterministic confidence driven by the
  measurement (interval width, p-value, sample size, method diagnostics).
- :class:`ScorerEvaluate`: any scorer from the scorer registry, by name.

All three share one pipeline (:class:`EvaluateComponent`): input validation, the confidence-range
table, the return mapping (times ``value_per_unit``, collapsed without an interval) and the
:class:`~impact_assets.contracts.EvaluateResult` output. See ``docs/evaluate.md``.
"""

from impact_assets.evaluate.component import EvaluateComponent, ScorerEvaluate
from impact_assets.evaluate.evidence import (
    EvidenceEvaluate,
    EvidenceParams,
    EvidenceScorer,
    evidence_confidence,
    evidence_quality,
)
from impact_assets.evaluate.inputs import (
    EvaluateInputError,
    Measurement,
    Returns,
    parse_event,
    scenario_returns,
)
from impact_assets.evaluate.ranges import V1_RANGES, EvaluateConfigError, resolve_ranges
from impact_assets.evaluate.score import Evaluate, IdScorer, id_seed, score_confidence
from impact_assets.evaluate.scorers import (
    Score,
    Scorer,
    ScorerError,
    available_scorers,
    create_scorer,
    register_scorer,
    resolve_scorer,
    scale_to_range,
    unregister_scorer,
)

__all__ = [
    "V1_RANGES",
    "Evaluate",
    "EvaluateComponent",
    "EvaluateConfigError",
    "EvaluateInputError",
    "EvidenceEvaluate",
    "EvidenceParams",
    "EvidenceScorer",
    "IdScorer",
    "Measurement",
    "Returns",
    "Score",
    "Scorer",
    "ScorerError",
    "ScorerEvaluate",
    "available_scorers",
    "create_scorer",
    "evidence_confidence",
    "evidence_quality",
    "id_seed",
    "parse_event",
    "register_scorer",
    "resolve_ranges",
    "resolve_scorer",
    "scale_to_range",
    "scenario_returns",
    "score_confidence",
    "unregister_scorer",
]
