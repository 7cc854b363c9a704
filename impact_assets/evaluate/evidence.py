"""``EvidenceEvaluate``: a deterministic confidence driven by the measurement itself.

The confidence stays inside the model type's range ``[lo, hi]`` and moves within it with the
quality ``q`` of the evidence::

    confidence = lo + (hi - lo) * q,      q in [0, 1]

``q`` is a weighted mean of four sub-scores in [0, 1] (default weights 0.4/0.2/0.2/0.2); a
sub-score whose input the method does not report is left out and the remaining weights are
renormalised (neither rewarded nor penalised):

- precision: ``1 / (1 + r / precision_scale)`` with ``r`` = CI half-width / |effect|
  (``unknown_precision`` when there is neither an interval nor a standard error);
- significance: ``1 - p_value`` (left out when the method has no p-value);
- sample: ``1 / (1 + sample_scale / n)`` (always present);
- diagnostics: the product of the method diagnostics' factors below (left out when none).

Diagnostic factors (each in [0, 1], used when the MEASURE stage reports the key):
pre-period fit ``1 / (1 + pre_period_rmse_relative / pre_fit_scale)`` (synthetic control),
covariate balance ``1 / (1 + max_abs_smd_after / balance_scale)`` (matching, subclassification),
common support ``1 - share_dropped`` (subclassification; falls back to
``n_strata_dropped / n_strata``), caliper matches ``1 - share_unmatched_treated`` (matching: the
share of treated units a caliper left unmatched, whose estimand is then the effect on the
matched treated only). Poor balance (max |SMD| above 0.25, which MEASURE flags with a warning)
scores a balance factor below 0.29 with the default ``balance_scale``.

Without an interval the half-width is ``z * standard_error`` (z = 1.959964, the normal 97.5 %
quantile) when a standard error is reported; with neither, precision is unknown and scores
``unknown_precision`` (default 0: no credit). The formula never reads the initiative id. Its
rationale and properties are in ``docs/evaluate.md``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from impact_assets.evaluate.component import EvaluateComponent
from impact_assets.evaluate.inputs import Measurement
from impact_assets.evaluate.ranges import EvaluateConfigError
from impact_assets.evaluate.scorers import Score, Scorer, register_scorer, scale_to_range

#: Two-sided 95 % normal quantile, used to turn a standard error into a half-width.
Z_95 = 1.959963984540054

#: Default component weights (their sum need not be 1; present components are renormalised).
DEFAULT_WEIGHTS: Mapping[str, float] = MappingProxyType(
    {"precision": 0.4, "significance": 0.2, "sample": 0.2, "diagnostics": 0.2}
)
COMPONENTS = tuple(DEFAULT_WEIGHTS)


def _decay(x: float, scale: float) -> float:
    """``1 / (1 + x / scale)``: 1 at x = 0, 1/2 at x = scale, 0 at x = inf; non-increasing."""
    return 1.0 / (1.0 + x / scale)


def _saturate(n: float, scale: float) -> float:
    """``1 / (1 + scale / n)`` = ``n / (n + scale)``: 1/2 at n = scale, non-decreasing in n."""
    return 1.0 / (1.0 + scale / n)


def _positive(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise EvaluateConfigError(
            f"EVALUATE config: {name}: must be a finite number, got {value!r}"
        )
    if value <= 0:
        raise EvaluateConfigError(f"EVALUATE config: {name}: must be > 0, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class EvidenceParams:
    """The documented constants of the evidence formula (all configurable, all validated).

    Parameters
    ----------
    weights
        Component weights, keys among ``precision``, ``significance``, ``sample``,
        ``diagnostics``; unnamed keys keep their defaults (0.4, 0.2, 0.2, 0.2). Weights are >= 0
        and ``precision + sample`` (the components that are always present) must be > 0.
    precision_scale
        Relative half-width at which the precision sub-score is 1/2 (default 0.5: a CI of
        effect ± 50 %).
    sample_scale
        Sample size at which the sample sub-score is 1/2 (default 100 units).
    pre_fit_scale
        Relative pre-period RMSE at which the pre-fit factor is 1/2 (default 0.10).
    balance_scale
        Max absolute standardized mean difference at which the balance factor is 1/2 (default
        0.10, the usual balance threshold).
    unknown_precision
        Precision sub-score when neither an interval nor a standard error is reported (default
        0.0, no credit), in [0, 1].
    """

    weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    precision_scale: float = 0.5
    sample_scale: float = 100.0
    pre_fit_scale: float = 0.1
    balance_scale: float = 0.1
    unknown_precision: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.weights, Mapping):
            raise EvaluateConfigError(
                f"EVALUATE config: weights: must be a mapping, got {self.weights!r}"
            )
        unknown = sorted(set(self.weights) - set(COMPONENTS))
        if unknown:
            raise EvaluateConfigError(
                f"EVALUATE config: weights: unknown component(s) {unknown}; "
                f"valid: {', '.join(COMPONENTS)}"
            )
        merged = dict(DEFAULT_WEIGHTS)
        for key, value in self.weights.items():
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or value < 0
            ):
                raise EvaluateConfigError(
                    f"EVALUATE config: weights[{key!r}]: must be a finite number >= 0, "
                    f"got {value!r}"
                )
            merged[key] = float(value)
        if merged["precision"] + merged["sample"] <= 0:
            raise EvaluateConfigError(
                "EVALUATE config: weights: precision + sample must be > 0 "
                "(they are the components every measurement has)"
            )
        object.__setattr__(self, "weights", MappingProxyType(merged))
        for name in ("precision_scale", "sample_scale", "pre_fit_scale", "balance_scale"):
            object.__setattr__(self, name, _positive(name, getattr(self, name)))
        value = self.unknown_precision
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
            raise EvaluateConfigError(
                f"EVALUATE config: unknown_precision: must be within [0, 1], got {value!r}"
            )
        object.__setattr__(self, "unknown_precision", float(value))

    def to_dict(self) -> dict[str, Any]:
        return {
            "weights": dict(self.weights),
            "precision_scale": self.precision_scale,
            "sample_scale": self.sample_scale,
            "pre_fit_scale": self.pre_fit_scale,
            "balance_scale": self.balance_scale,
            "unknown_precision": self.unknown_precision,
        }


DEFAULT_PARAMS = EvidenceParams()


@dataclass(frozen=True)
class EvidenceScore:
    """The evidence quality ``q`` and how it was reached (JSON-safe via :meth:`to_dict`)."""

    quality: float
    components: dict[str, float | None]
    weights_used: dict[str, float]
    inputs: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "quality": self.quality,
            "components": dict(self.components),
            "weights_used": dict(self.weights_used),
            "inputs": dict(self.inputs),
        }


def _precision(m: Measurement, params: EvidenceParams) -> tuple[float, dict[str, Any]]:
    if m.has_interval:
        half_width = (m.ci_upper - m.ci_lower) / 2.0
        source = "confidence_interval"
    elif m.standard_error is not None:
        half_width = Z_95 * m.standard_error
        source = "standard_error"
    else:
        return params.unknown_precision, {"precision_source": "unknown"}
    magnitude = abs(m.effect_estimate)
    if half_width == 0.0:
        ratio = 0.0  # a zero-width interval, including effect 0 +/- 0
    elif magnitude == 0.0:
        ratio = math.inf  # any uncertainty around a zero effect: no relative precision
    else:
        ratio = half_width / magnitude
    info = {
        "precision_source": source,
        "half_width": half_width,
        "relative_half_width": ratio if math.isfinite(ratio) else None,
    }
    return _decay(ratio, params.precision_scale), info


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) and value >= 0 else None


def _diagnostic_factors(
    diagnostics: Mapping[str, Any], params: EvidenceParams
) -> tuple[dict[str, float], dict[str, float], list[str]]:
    """Factors in [0, 1] from the standardized MEASURE diagnostics, plus the values used.

    A key with an unusable value (not a number, negative, NaN, a share above 1) is ignored and
    listed, never guessed.
    """
    factors: dict[str, float] = {}
    used: dict[str, float] = {}
    ignored: list[str] = []

    def read(key: str, upper: float | None = None) -> float | None:
        if key not in diagnostics or diagnostics[key] is None:
            return None
        value = _number(diagnostics[key])
        if value is None or (upper is not None and value > upper):
            ignored.append(key)
            return None
        used[key] = value
        return value

    rmse = read("pre_period_rmse_relative")
    if rmse is not None:
        factors["pre_fit"] = _decay(rmse, params.pre_fit_scale)
    smd = read("max_abs_smd_after")
    if smd is not None:
        factors["balance"] = _decay(smd, params.balance_scale)
    share = read("share_dropped", upper=1.0)
    if share is None:
        dropped = read("n_strata_dropped")
        strata = read("n_strata")
        if dropped is not None and strata is not None:
            if strata > 0 and dropped <= strata:
                share = dropped / strata
            else:
                for key in ("n_strata_dropped", "n_strata"):
                    used.pop(key)
                    ignored.append(key)
    if share is not None:
        factors["support"] = 1.0 - share
    unmatched = read("share_unmatched_treated", upper=1.0)
    if unmatched is not None:
        factors["matched"] = 1.0 - unmatched
    return factors, used, ignored


def evidence_quality(
    measurement: Measurement, params: EvidenceParams = DEFAULT_PARAMS
) -> EvidenceScore:
    """The evidence quality ``q`` in [0, 1] of one measurement (pure, id-independent).

    Non-decreasing, all else equal, in: a narrower interval (or smaller standard error), a
    larger |effect| for a given interval width, a larger sample, a smaller p-value, a smaller
    relative pre-period RMSE, a smaller post-matching SMD and a smaller dropped share.
    """
    precision, info = _precision(measurement, params)
    components: dict[str, float | None] = {
        "precision": precision,
        "significance": None if measurement.p_value is None else 1.0 - measurement.p_value,
        "sample": _saturate(float(measurement.sample_size), params.sample_scale),
        "diagnostics": None,
    }
    factors, used, ignored = _diagnostic_factors(measurement.diagnostics, params)
    if factors:
        product = 1.0
        for name in sorted(factors):
            product *= factors[name]
        components["diagnostics"] = product
    present = [name for name in COMPONENTS if components[name] is not None]
    total = math.fsum(params.weights[name] for name in present)
    weighted = 0.0
    for name in present:
        weighted += params.weights[name] * components[name]
    quality = min(1.0, max(0.0, weighted / total))
    inputs = {
        **info,
        "p_value": measurement.p_value,
        "sample_size": measurement.sample_size,
        "diagnostics_used": used,
        "diagnostic_factors": factors,
        "ignored_diagnostics": ignored,
    }
    weights_used = {name: params.weights[name] / total for name in present}
    return EvidenceScore(quality, components, weights_used, inputs)


def evidence_confidence(
    measurement: Measurement,
    confidence_range: tuple[float, float],
    params: EvidenceParams = DEFAULT_PARAMS,
) -> float:
    """``lo + (hi - lo) * q``, kept inside ``[lo, hi]``."""
    return scale_to_range(evidence_quality(measurement, params).quality, confidence_range)


@register_scorer("evidence")
class EvidenceScorer(Scorer):
    """The evidence-driven confidence; options are those of :class:`EvidenceParams`."""

    name = "evidence"

    def __init__(
        self,
        weights: Mapping[str, float] | None = None,
        precision_scale: float = 0.5,
        sample_scale: float = 100.0,
        pre_fit_scale: float = 0.1,
        balance_scale: float = 0.1,
        unknown_precision: float = 0.0,
    ):
        self._params = EvidenceParams(
            weights=dict(DEFAULT_WEIGHTS) if weights is None else weights,
            precision_scale=precision_scale,
            sample_scale=sample_scale,
            pre_fit_scale=pre_fit_scale,
            balance_scale=balance_scale,
            unknown_precision=unknown_precision,
        )

    @property
    def evidence_params(self) -> EvidenceParams:
        return self._params

    def score(self, measurement: Measurement, confidence_range: tuple[float, float]) -> Score:
        evidence = evidence_quality(measurement, self._params)
        return Score(scale_to_range(evidence.quality, confidence_range), evidence.to_dict())

    def params(self) -> dict[str, Any]:
        return self._params.to_dict()


class EvidenceEvaluate(EvaluateComponent):
    """EVALUATE with the evidence-driven confidence (``strategy = "evidence"``).

    Parameters
    ----------
    ranges
        Overrides of the v1 confidence-range table; ``None`` keeps it.
    weights, precision_scale, sample_scale, pre_fit_scale, balance_scale, unknown_precision
        The constants of the formula, see :class:`EvidenceParams` and ``docs/evaluate.md``.
    """

    def __init__(
        self,
        ranges: Mapping[str, Sequence[float]] | None = None,
        weights: Mapping[str, float] | None = None,
        precision_scale: float = 0.5,
        sample_scale: float = 100.0,
        pre_fit_scale: float = 0.1,
        balance_scale: float = 0.1,
        unknown_precision: float = 0.0,
    ):
        scorer = EvidenceScorer(
            weights=weights,
            precision_scale=precision_scale,
            sample_scale=sample_scale,
            pre_fit_scale=pre_fit_scale,
            balance_scale=balance_scale,
            unknown_precision=unknown_precision,
        )
        super().__init__(scorer, ranges)
