"""Shared ALLOCATE input validation and output building, used by every allocation rule."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from impact_assets.contracts import AllocateResult


class AllocationInputError(ValueError):
    """The ALLOCATE event is malformed. The message names the initiative and the field."""


@dataclass(frozen=True)
class Candidate:
    """One evaluated initiative as the allocation rules see it."""

    index: int
    initiative_id: str
    cost: float
    confidence: float
    return_best: float
    return_median: float
    return_worst: float


def _finite(initiative_id: str, name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise AllocationInputError(
            f"ALLOCATE input: initiative {initiative_id!r}: field {name!r}: "
            f"must be a number, got {value!r}"
        )
    if not math.isfinite(value):
        raise AllocationInputError(
            f"ALLOCATE input: initiative {initiative_id!r}: field {name!r}: "
            f"must be finite, got {value!r}"
        )
    return float(value)


def parse_event(event: Mapping[str, Any]) -> tuple[list[Candidate], float]:
    """Validate ``{"initiatives": [...], "budget": ...}`` and return candidates and budget."""
    if not isinstance(event, Mapping):
        raise AllocationInputError(f"ALLOCATE input must be a mapping, got {event!r}")
    for key in ("initiatives", "budget"):
        if key not in event:
            raise AllocationInputError(f"ALLOCATE input: missing required field {key!r}")
    budget = _finite("<portfolio>", "budget", event["budget"])
    if budget < 0:
        raise AllocationInputError(f"ALLOCATE input: field 'budget': must be >= 0, got {budget!r}")
    items = event["initiatives"]
    if not isinstance(items, Sequence) or isinstance(items, str | bytes):
        raise AllocationInputError(
            f"ALLOCATE input: field 'initiatives': must be a list, got {items!r}"
        )
    candidates: list[Candidate] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise AllocationInputError(
                f"ALLOCATE input: initiatives[{index}]: must be a mapping, got {item!r}"
            )
        ident = item.get("initiative_id")
        if not isinstance(ident, str) or not ident:
            raise AllocationInputError(
                f"ALLOCATE input: initiatives[{index}]: field 'initiative_id': "
                f"must be a non-empty string, got {ident!r}"
            )
        if ident in seen:
            raise AllocationInputError(
                f"ALLOCATE input: initiative {ident!r}: field 'initiative_id': duplicate id"
            )
        seen.add(ident)
        values = {}
        for name in ("cost", "confidence", "return_best", "return_median", "return_worst"):
            if name not in item:
                raise AllocationInputError(
                    f"ALLOCATE input: initiative {ident!r}: missing required field {name!r}"
                )
            values[name] = _finite(ident, name, item[name])
        if not values["return_worst"] <= values["return_median"] <= values["return_best"]:
            raise AllocationInputError(
                f"ALLOCATE input: initiative {ident!r}: field 'return_median': must satisfy "
                f"return_worst <= return_median <= return_best, got "
                f"{values['return_worst']!r} <= {values['return_median']!r} <= "
                f"{values['return_best']!r}"
            )
        if not 0.0 <= values["confidence"] <= 1.0:
            raise AllocationInputError(
                f"ALLOCATE input: initiative {ident!r}: field 'confidence': "
                f"must be within [0, 1], got {values['confidence']!r}"
            )
        if values["cost"] <= 0:
            raise AllocationInputError(
                f"ALLOCATE input: initiative {ident!r}: field 'cost': "
                f"must be > 0, got {values['cost']!r}"
            )
        candidates.append(Candidate(index=index, initiative_id=ident, **values))
    return candidates, budget


def build_result(
    candidates: Sequence[Candidate],
    chosen: set[str],
    budget: float,
    *,
    rule: str,
    status: str,
    detail: Mapping[str, Any],
) -> dict[str, Any]:
    """The v1 AllocateResult dict: selected ids in input order, raw medians, full costs."""
    selected = [c for c in candidates if c.initiative_id in chosen]
    result = AllocateResult(
        selected_initiatives=[c.initiative_id for c in selected],
        predicted_returns={c.initiative_id: c.return_median for c in selected},
        budget_allocated={c.initiative_id: c.cost for c in selected},
        budget=budget,
        rule=rule,
        status=status,
        detail=dict(detail),
    )
    return result.to_dict()


def check_threshold(value: Any) -> float:
    """``min_confidence_threshold``: a finite number in [0, 1]."""
    value = _finite("<config>", "min_confidence_threshold", value)
    if not 0.0 <= value <= 1.0:
        raise AllocationInputError(
            f"ALLOCATE config: field 'min_confidence_threshold': must be within [0, 1], "
            f"got {value!r}"
        )
    return value


def check_floor(value: Any) -> float | None:
    """``min_portfolio_worst_return``: a finite number, or ``None`` (constraint off)."""
    if value is None:
        return None
    return _finite("<config>", "min_portfolio_worst_return", value)


def check_time_limit(value: Any) -> float | None:
    """``time_limit`` in seconds: ``None`` (no limit) or a finite number > 0."""
    if value is None:
        return None
    value = _finite("<config>", "time_limit", value)
    if value <= 0:
        raise AllocationInputError(
            f"ALLOCATE config: field 'time_limit': must be > 0 seconds, got {value!r}"
        )
    return value


#: Scenario keys a weight mapping must have, exactly.
WEIGHT_KEYS = ("best", "med", "worst")


def check_weights(weights: Any) -> dict[str, float]:
    """Bayesian scenario weights (spec §B4): keys exactly best/med/worst, >= 0, sum to 1."""
    if not isinstance(weights, Mapping):
        raise AllocationInputError(
            f"weights must be a mapping with keys {list(WEIGHT_KEYS)}, got {weights!r}"
        )
    if set(weights) != set(WEIGHT_KEYS):
        raise AllocationInputError(
            f"weights keys must be exactly {list(WEIGHT_KEYS)}, got {sorted(map(str, weights))}"
        )
    clean = {k: _finite("<config>", f"weights.{k}", weights[k]) for k in WEIGHT_KEYS}
    if any(v < 0 for v in clean.values()):
        raise AllocationInputError(f"Weights must be non-negative. Got {clean}")
    if abs(math.fsum(clean.values()) - 1.0) > 1e-9:
        raise AllocationInputError(
            f"Weights must sum to 1. Got {clean} (sum {math.fsum(clean.values())!r})"
        )
    return clean
