"""The one EVALUATE pipeline every scorer runs through.

``execute`` validates the event, looks up the model type's confidence range, asks the scorer for a
confidence, maps the returns (v1 mapping times ``value_per_unit``, collapsed without an interval)
and returns an :class:`~impact_assets.contracts.EvaluateResult` dict. ``Evaluate`` and
``EvidenceEvaluate`` are this pipeline with a fixed scorer; :class:`ScorerEvaluate` takes any
registered scorer by name.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from impact_assets.component import PipelineComponent
from impact_assets.contracts import EvaluateResult
from impact_assets.evaluate.inputs import parse_event, scenario_returns
from impact_assets.evaluate.ranges import ranges_to_json, resolve_ranges
from impact_assets.evaluate.scorers import Scorer, create_scorer

logger = logging.getLogger(__name__)


class EvaluateComponent(PipelineComponent):
    """EVALUATE with a given scorer.

    Parameters
    ----------
    scorer
        The :class:`~impact_assets.evaluate.scorers.Scorer` that produces the confidence.
    ranges
        Overrides of the v1 confidence-range table (model type -> ``[lo, hi]``); ``None`` keeps
        the v1 table.
    """

    def __init__(self, scorer: Scorer, ranges: Mapping[str, Sequence[float]] | None = None):
        self._scorer = scorer
        self._ranges = resolve_ranges(ranges)

    @property
    def scorer(self) -> Scorer:
        return self._scorer

    @property
    def ranges(self) -> dict[str, list[float]]:
        """The resolved range table, JSON-safe."""
        return ranges_to_json(self._ranges)

    def evaluate(self, event: Mapping[str, Any]) -> EvaluateResult:
        """Validate ``event``, score it and return the :class:`EvaluateResult`."""
        measurement = parse_event(event)
        lo, hi = self._ranges[measurement.model_type]
        score = self._scorer.score(measurement, (lo, hi))
        returns = scenario_returns(measurement)
        details = {
            "returns_source": returns.source,
            "unscaled_returns": {
                "best": measurement.ci_upper if measurement.has_interval else None,
                "median": measurement.effect_estimate,
                "worst": measurement.ci_lower if measurement.has_interval else None,
            },
            # the measurement's own standard error (unscaled; None when the method has none),
            # read by ALLOCATE's empirical-Bayes shrinkage
            "standard_error": measurement.standard_error,
            self._scorer.name: score.details,
        }
        return EvaluateResult(
            initiative_id=measurement.initiative_id,
            confidence=score.confidence,
            cost=measurement.cost_to_scale,
            return_best=returns.best,
            return_median=returns.median,
            return_worst=returns.worst,
            model_type=measurement.model_type,
            sample_size=measurement.sample_size,
            confidence_range=(lo, hi),
            strategy=self._scorer.name,
            returns_collapsed=returns.collapsed,
            value_per_unit=measurement.value_per_unit,
            details=details,
        )

    def execute(self, event: dict[str, Any]) -> dict[str, Any]:
        result = self.evaluate(event)
        logger.info(
            "EVALUATE %s: confidence %.3f (%s)",
            result.initiative_id,
            result.confidence,
            result.strategy,
        )
        return result.to_dict()

    def params(self) -> dict[str, Any]:
        return {"ranges": self.ranges, **self._scorer.params()}


class ScorerEvaluate(EvaluateComponent):
    """EVALUATE with a scorer chosen by name from the scorer registry.

    Parameters
    ----------
    scorer
        A registered scorer name (``"score"``, ``"evidence"`` or one added with
        :func:`~impact_assets.evaluate.scorers.register_scorer`) or a ``module:Class`` path.
    options
        Keyword arguments for the scorer.
    ranges
        Overrides of the v1 confidence-range table.
    """

    def __init__(
        self,
        scorer: str = "score",
        options: Mapping[str, Any] | None = None,
        ranges: Mapping[str, Sequence[float]] | None = None,
    ):
        self._scorer_name = scorer
        super().__init__(create_scorer(scorer, options), ranges)

    def params(self) -> dict[str, Any]:
        return {
            "scorer": self._scorer_name,
            "options": self._scorer.params(),
            "ranges": self.ranges,
        }
