"""Confidence ranges per measurement method: the upstream v1 table, configurable.

Every scorer keeps its confidence inside the range of the measurement's model type. The default
table is the upstream v1 ``CONFIDENCE_MAP`` for all nine model types (spec §A1). A stage config
may override single entries (``ranges: {quasi-experiment: [0.60, 0.85]}``); entries not named keep
their v1 value, so the table is always complete.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

from impact_assets.contracts import ModelType

#: The upstream v1 table (spec §A1), read-only.
V1_RANGES: Mapping[ModelType, tuple[float, float]] = MappingProxyType(
    {
        ModelType.EXPERIMENT: (0.85, 1.00),
        ModelType.QUASI_EXPERIMENT: (0.60, 0.84),
        ModelType.TIME_SERIES: (0.40, 0.59),
        ModelType.OBSERVATIONAL: (0.20, 0.39),
        ModelType.INTERRUPTED_TIME_SERIES: (0.40, 0.59),
        ModelType.SYNTHETIC_CONTROL: (0.60, 0.84),
        ModelType.NEAREST_NEIGHBOUR_MATCHING: (0.60, 0.84),
        ModelType.SUBCLASSIFICATION: (0.60, 0.84),
        ModelType.METRICS_APPROXIMATION: (0.20, 0.39),
    }
)


class EvaluateConfigError(ValueError):
    """An EVALUATE stage parameter is invalid. The message names the parameter."""


def _bounds(key: str, value: Any) -> tuple[float, float]:
    where = f"EVALUATE config: ranges[{key!r}]"
    if isinstance(value, str | bytes) or not isinstance(value, Sequence) or len(value) != 2:
        raise EvaluateConfigError(f"{where}: must be a pair [lo, hi], got {value!r}")
    bounds = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int | float) or not math.isfinite(item):
            raise EvaluateConfigError(f"{where}: bounds must be finite numbers, got {value!r}")
        bounds.append(float(item))
    lo, hi = bounds
    if not 0.0 <= lo <= hi <= 1.0:
        raise EvaluateConfigError(f"{where}: must satisfy 0 <= lo <= hi <= 1, got {value!r}")
    return lo, hi


def resolve_ranges(
    overrides: Mapping[str, Sequence[float]] | None = None,
) -> dict[ModelType, tuple[float, float]]:
    """The v1 table with ``overrides`` applied.

    Parameters
    ----------
    overrides
        Model type (its string value or the enum member) to a ``[lo, hi]`` pair with
        ``0 <= lo <= hi <= 1``. ``None`` keeps the v1 table.

    Raises
    ------
    EvaluateConfigError
        For an unknown model type or an invalid pair.
    """
    table = dict(V1_RANGES)
    if overrides is None:
        return table
    if not isinstance(overrides, Mapping):
        raise EvaluateConfigError(
            f"EVALUATE config: ranges: must be a mapping model_type -> [lo, hi], got {overrides!r}"
        )
    for key, value in overrides.items():
        try:
            model_type = ModelType(key)
        except ValueError:
            valid = ", ".join(m.value for m in ModelType)
            raise EvaluateConfigError(
                f"EVALUATE config: ranges[{key!r}]: unknown model type; valid: {valid}"
            ) from None
        table[model_type] = _bounds(model_type.value, value)
    return table


def ranges_to_json(table: Mapping[ModelType, tuple[float, float]]) -> dict[str, list[float]]:
    """The table as ``{model_type value: [lo, hi]}`` (accepted back by :func:`resolve_ranges`)."""
    return {m.value: [lo, hi] for m, (lo, hi) in table.items()}
