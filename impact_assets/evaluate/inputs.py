"""EVALUATE input validation and the return mapping shared by every scorer.

An EVALUATE event is the ``MeasureResult`` dict enriched with ``cost_to_scale`` and, when the
manifest sets it, ``value_per_unit``. :func:`parse_event` checks it and returns a
:class:`Measurement`; :func:`scenario_returns` maps it onto the three return scenarios.

Every error is an :class:`EvaluateInputError` whose message names the initiative and the field,
e.g. ``EVALUATE input: initiative 'x': field 'cost_to_scale': must be > 0, got 0``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from impact_assets.contracts import ModelType

#: Keys every event must carry. ``ci_lower``/``ci_upper`` must be present but may be ``None``
#: (a method without an interval); ``p_value``, ``standard_error``, ``diagnostics`` and
#: ``value_per_unit`` are optional.
REQUIRED_FIELDS = (
    "initiative_id",
    "model_type",
    "effect_estimate",
    "ci_lower",
    "ci_upper",
    "sample_size",
    "cost_to_scale",
)


class EvaluateInputError(ValueError):
    """The EVALUATE event is malformed. The message names the initiative and the field."""


@dataclass(frozen=True)
class Measurement:
    """One validated EVALUATE input.

    ``ci_lower``/``ci_upper``/``p_value``/``standard_error`` are ``None`` when the measurement
    method has no such quantity; they are never replaced by a number.
    """

    initiative_id: str
    model_type: ModelType
    effect_estimate: float
    ci_lower: float | None
    ci_upper: float | None
    sample_size: int
    cost_to_scale: float
    p_value: float | None = None
    standard_error: float | None = None
    value_per_unit: float = 1.0
    diagnostics: Mapping[str, Any] = field(default_factory=dict)

    @property
    def has_interval(self) -> bool:
        """Whether the measurement reports a confidence interval."""
        return self.ci_lower is not None and self.ci_upper is not None


@dataclass(frozen=True)
class Returns:
    """The three return scenarios, already multiplied by ``value_per_unit``.

    ``collapsed`` is true when the measurement has no interval, so best, median and worst are
    all the point estimate (nothing is invented to spread them).
    """

    best: float
    median: float
    worst: float
    collapsed: bool
    source: str


def _error(initiative_id: str | None, field_name: str, message: str) -> EvaluateInputError:
    where = f"initiative {initiative_id!r}: " if initiative_id is not None else ""
    return EvaluateInputError(f"EVALUATE input: {where}field {field_name!r}: {message}")


def _number(initiative_id: str, name: str, value: Any, *, optional: bool = False) -> float | None:
    if value is None:
        if optional:
            return None
        raise _error(initiative_id, name, "must be a number, got None")
    if isinstance(value, bool) or not isinstance(value, int | float):
        # numpy scalars are accepted through float(); strings and other objects are not.
        if not (hasattr(value, "item") and callable(value.item)):
            raise _error(initiative_id, name, f"must be a number, got {value!r}")
        value = value.item()
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _error(initiative_id, name, f"must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise _error(initiative_id, name, f"must be a finite number, got {value!r}")
    return value


def _sample_size(initiative_id: str, value: Any) -> int:
    if isinstance(value, bool) or value is None:
        raise _error(initiative_id, "sample_size", f"must be a positive integer, got {value!r}")
    if not isinstance(value, int | float) and hasattr(value, "item") and callable(value.item):
        value = value.item()  # a numpy scalar
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise _error(initiative_id, "sample_size", f"must be a positive integer, got {value!r}")
    return value


def _model_type(initiative_id: str, value: Any) -> ModelType:
    try:
        return ModelType(value)
    except ValueError:
        valid = ", ".join(m.value for m in ModelType)
        raise _error(
            initiative_id, "model_type", f"unknown model type {value!r}; valid: {valid}"
        ) from None


def parse_event(event: Mapping[str, Any]) -> Measurement:
    """Validate one EVALUATE event and return it as a :class:`Measurement`.

    Parameters
    ----------
    event
        The MeasureResult dict plus ``cost_to_scale`` (and optionally ``value_per_unit``).
        Unknown keys are ignored.

    Raises
    ------
    EvaluateInputError
        On a missing field, an unknown model type, a non-finite number, a non-positive cost or
        ``value_per_unit``, an unpaired or misordered interval, or a p-value outside [0, 1].
    """
    if not isinstance(event, Mapping):
        raise EvaluateInputError(f"EVALUATE input must be a mapping, got {event!r}")
    ident = event.get("initiative_id")
    if not isinstance(ident, str) or not ident:
        raise _error(None, "initiative_id", f"must be a non-empty string, got {ident!r}")
    missing = [name for name in REQUIRED_FIELDS if name not in event]
    if missing:
        raise EvaluateInputError(
            f"EVALUATE input: initiative {ident!r}: missing required field(s) {missing}"
        )
    model_type = _model_type(ident, event["model_type"])
    effect = _number(ident, "effect_estimate", event["effect_estimate"])
    ci_lower = _number(ident, "ci_lower", event["ci_lower"], optional=True)
    ci_upper = _number(ident, "ci_upper", event["ci_upper"], optional=True)
    if (ci_lower is None) != (ci_upper is None):
        raise _error(
            ident,
            "ci_lower" if ci_lower is None else "ci_upper",
            f"confidence bounds come in pairs, got ci_lower={ci_lower!r}, ci_upper={ci_upper!r}",
        )
    if ci_lower is not None and not ci_lower <= effect <= ci_upper:
        raise _error(
            ident,
            "effect_estimate",
            f"must satisfy ci_lower <= effect_estimate <= ci_upper, got ci_lower={ci_lower!r}, "
            f"effect_estimate={effect!r}, ci_upper={ci_upper!r}",
        )
    p_value = _number(ident, "p_value", event.get("p_value"), optional=True)
    if p_value is not None and not 0.0 <= p_value <= 1.0:
        raise _error(ident, "p_value", f"must be None or within [0, 1], got {p_value!r}")
    standard_error = _number(ident, "standard_error", event.get("standard_error"), optional=True)
    if standard_error is not None and standard_error < 0:
        raise _error(ident, "standard_error", f"must be >= 0, got {standard_error!r}")
    cost = _number(ident, "cost_to_scale", event["cost_to_scale"])
    if cost <= 0:
        raise _error(ident, "cost_to_scale", f"must be > 0, got {event['cost_to_scale']!r}")
    raw_value = event.get("value_per_unit")
    value_per_unit = 1.0 if raw_value is None else _number(ident, "value_per_unit", raw_value)
    if value_per_unit <= 0:
        raise _error(ident, "value_per_unit", f"must be > 0, got {raw_value!r}")
    diagnostics = event.get("diagnostics")
    if diagnostics is None:
        diagnostics = {}
    if not isinstance(diagnostics, Mapping):
        raise _error(ident, "diagnostics", f"must be a mapping, got {diagnostics!r}")
    return Measurement(
        initiative_id=ident,
        model_type=model_type,
        effect_estimate=effect,
        ci_lower=ci_lower,
        ci_upper=ci_upper,
        sample_size=_sample_size(ident, event["sample_size"]),
        cost_to_scale=cost,
        p_value=p_value,
        standard_error=standard_error,
        value_per_unit=value_per_unit,
        diagnostics=dict(diagnostics),
    )


def scenario_returns(measurement: Measurement) -> Returns:
    """Map a measurement onto best/median/worst returns (upstream v1 mapping, then the unit value).

    best = ``ci_upper``, median = ``effect_estimate``, worst = ``ci_lower``, each multiplied by
    ``value_per_unit`` (which is > 0, so the order is kept; with the default 1.0 the numbers are
    the upstream ones bit for bit). Without an interval all three are the estimate and
    ``collapsed`` is true.
    """
    scale = measurement.value_per_unit
    median = measurement.effect_estimate * scale
    if not measurement.has_interval:
        return Returns(median, median, median, collapsed=True, source="point_estimate")
    return Returns(
        best=measurement.ci_upper * scale,
        median=median,
        worst=measurement.ci_lower * scale,
        collapsed=False,
        source="confidence_interval",
    )
