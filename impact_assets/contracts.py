"""Stage contracts: the small dataclasses that cross every stage boundary.

Each contract validates itself in ``__post_init__`` and raises :class:`ContractError` (a
``ValueError``) naming the contract, the initiative and the field with the offending values.
Validation never uses ``assert``, so it survives ``python -O``.

Consumers are tolerant (design: "Contract Evolution"): :meth:`from_dict` ignores unknown fields and
fills defaults for missing optional ones; :meth:`to_dict` gives JSON-safe dicts with enums as their
string values, and ``Contract.from_dict(x.to_dict()) == x``.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

#: Relative tolerance used by the equality and budget invariants.
RELATIVE_TOLERANCE = 1e-9
#: The smallest sample a measurement may be based on (design: ``sample_size >= 30``). The
#: default of ``MeasureResult.min_sample_size``: a measure config (``MEASUREMENT.min_sample_size``)
#: or the manifest (an initiative's ``min_sample_size``) may set a lower one for a small-panel
#: design, recorded in the result (``docs/measure.md``, "Sample size per model").
MIN_SAMPLE_SIZE = 30


class ContractError(ValueError):
    """A stage output broke its contract."""


class ModelType(str, enum.Enum):
    """Measurement methods. The first four are the design's abstract categories."""

    EXPERIMENT = "experiment"
    QUASI_EXPERIMENT = "quasi-experiment"
    TIME_SERIES = "time-series"
    OBSERVATIONAL = "observational"
    INTERRUPTED_TIME_SERIES = "interrupted_time_series"
    SYNTHETIC_CONTROL = "synthetic_control"
    NEAREST_NEIGHBOUR_MATCHING = "nearest_neighbour_matching"
    SUBCLASSIFICATION = "subclassification"
    METRICS_APPROXIMATION = "metrics_approximation"

    def __str__(self) -> str:
        return self.value


def json_safe(value: Any, digits: int | None = None) -> Any:
    """A strict-JSON copy of ``value``: enums as their values, numpy and pandas scalars as plain
    numbers, tuples, sets and arrays as lists, dates as ISO text, NaN and infinities as ``None``,
    anything else as its text. With ``digits``, floats are rounded to that many significant
    digits (stored measurement files use this, so that reruns give the same bytes)."""
    if isinstance(value, enum.Enum):
        return json_safe(value.value, digits)
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return float(f"{value:.{digits}g}") if digits else float(value)
    if isinstance(value, Mapping):
        return {str(k): json_safe(v, digits) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return [json_safe(v, digits) for v in sorted(value, key=str)]
    if isinstance(value, list | tuple):
        return [json_safe(v, digits) for v in value]
    if hasattr(value, "tolist") and getattr(value, "ndim", 0):  # numpy array, pandas Series
        return [json_safe(v, digits) for v in value.tolist()]
    if hasattr(value, "isoformat"):  # datetime, date, pandas Timestamp (NaT is missing)
        return None if value != value else value.isoformat()
    if hasattr(value, "item") and callable(value.item):  # numpy scalar
        return json_safe(value.item(), digits)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return str(value)


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=RELATIVE_TOLERANCE, abs_tol=RELATIVE_TOLERANCE)


class _Contract:
    """Shared behaviour: tolerant ``from_dict``, JSON-safe ``to_dict`` and error messages."""

    CONTRACT: ClassVar[str] = "Contract"

    def _fail(self, field_name: str, message: str) -> ContractError:
        initiative = getattr(self, "initiative_id", None)
        where = f" for initiative {initiative!r}" if initiative is not None else ""
        return ContractError(
            f"{self.CONTRACT} contract violated{where}: field {field_name!r}: {message}"
        )

    def _number(self, name: str, *, optional: bool = False) -> float | None:
        value = getattr(self, name)
        if value is None:
            if optional:
                return None
            raise self._fail(name, "is required, got None")
        if isinstance(value, bool) or not isinstance(value, int | float):
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise self._fail(name, f"must be a number, got {value!r}") from None
        if not math.isfinite(value):
            raise self._fail(name, f"must be a finite number, got {value!r}")
        return float(value)

    def _integer(self, name: str) -> int:
        value = getattr(self, name)
        if isinstance(value, bool) or value is None:
            raise self._fail(name, f"must be an integer, got {value!r}")
        if isinstance(value, float):
            if not value.is_integer():
                raise self._fail(name, f"must be an integer, got {value!r}")
            value = int(value)
        if not isinstance(value, int):
            try:
                value = int(value)
            except (TypeError, ValueError):
                raise self._fail(name, f"must be an integer, got {value!r}") from None
        return value

    def _min_sample_size(self) -> int:
        """``min_sample_size``: an integer >= 1 (the contract's default is
        :data:`MIN_SAMPLE_SIZE`; a small-panel design may document a lower one)."""
        value = self._integer("min_sample_size")
        if value < 1:
            raise self._fail("min_sample_size", f"must be >= 1, got {value!r}")
        return value

    def _model_type(self) -> ModelType:
        try:
            return ModelType(self.model_type)
        except ValueError:
            valid = ", ".join(m.value for m in ModelType)
            raise self._fail(
                "model_type", f"unknown model type {self.model_type!r}; valid: {valid}"
            ) from None

    def _initiative(self) -> str:
        value = self.initiative_id
        if not isinstance(value, str) or not value:
            raise ContractError(
                f"{self.CONTRACT} contract violated: field 'initiative_id': "
                f"must be a non-empty string, got {value!r}"
            )
        return value

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-safe dict (enums as values, tuples as lists)."""
        return {f.name: json_safe(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Build from a dict, ignoring unknown keys; missing optional keys take their defaults."""
        if not isinstance(data, Mapping):
            raise ContractError(
                f"{cls.CONTRACT}.from_dict expects a mapping, got {type(data).__name__}"
            )
        known = {f.name for f in dataclasses.fields(cls)}
        required = [
            f.name
            for f in dataclasses.fields(cls)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        ]
        missing = [name for name in required if name not in data]
        if missing:
            initiative = data.get("initiative_id")
            where = f" for initiative {initiative!r}" if initiative is not None else ""
            raise ContractError(
                f"{cls.CONTRACT} contract violated{where}: missing required field(s) {missing}"
            )
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class MeasureResult(_Contract):
    """One causal measurement of one initiative (MEASURE output).

    ``ci_lower``/``ci_upper`` and ``p_value`` are ``None`` for methods that have none (they are
    never faked as a zero-width interval or ``p = 0``).
    """

    CONTRACT: ClassVar[str] = "MeasureResult"

    initiative_id: str
    effect_estimate: float
    ci_lower: float | None
    ci_upper: float | None
    p_value: float | None
    sample_size: int
    model_type: ModelType
    diagnostics: dict[str, Any] = field(default_factory=dict)
    standard_error: float | None = None
    phase: str = "pilot"
    estimand: str | None = None
    true_effect: float | None = None
    min_sample_size: int = MIN_SAMPLE_SIZE

    def __post_init__(self) -> None:
        self._initiative()
        self.model_type = self._model_type()
        self.effect_estimate = self._number("effect_estimate")
        self.ci_lower = self._number("ci_lower", optional=True)
        self.ci_upper = self._number("ci_upper", optional=True)
        self.p_value = self._number("p_value", optional=True)
        self.standard_error = self._number("standard_error", optional=True)
        self.true_effect = self._number("true_effect", optional=True)
        self.sample_size = self._integer("sample_size")
        if (self.ci_lower is None) != (self.ci_upper is None):
            raise self._fail(
                "ci_lower" if self.ci_lower is None else "ci_upper",
                f"confidence bounds come in pairs, got ci_lower={self.ci_lower!r}, "
                f"ci_upper={self.ci_upper!r}",
            )
        if self.ci_lower is not None and not (
            self.ci_lower <= self.effect_estimate <= self.ci_upper
        ):
            raise self._fail(
                "effect_estimate",
                f"must satisfy ci_lower <= effect_estimate <= ci_upper, got "
                f"ci_lower={self.ci_lower!r}, effect_estimate={self.effect_estimate!r}, "
                f"ci_upper={self.ci_upper!r}",
            )
        if self.p_value is not None and not 0.0 <= self.p_value <= 1.0:
            raise self._fail("p_value", f"must be None or within [0, 1], got {self.p_value!r}")
        if self.standard_error is not None and self.standard_error < 0:
            raise self._fail("standard_error", f"must be >= 0, got {self.standard_error!r}")
        self.min_sample_size = self._min_sample_size()
        if self.sample_size < self.min_sample_size:
            raise self._fail(
                "sample_size", f"must be >= {self.min_sample_size}, got {self.sample_size!r}"
            )
        if self.phase not in ("pilot", "scale"):
            raise self._fail("phase", f"must be 'pilot' or 'scale', got {self.phase!r}")
        if not isinstance(self.diagnostics, Mapping):
            raise self._fail("diagnostics", f"must be a mapping, got {self.diagnostics!r}")
        self.diagnostics = dict(self.diagnostics)

    @property
    def has_interval(self) -> bool:
        """Whether the method produced a confidence interval."""
        return self.ci_lower is not None


@dataclass
class EvaluateResult(_Contract):
    """How far to trust one measurement, and the three return scenarios (EVALUATE output)."""

    CONTRACT: ClassVar[str] = "EvaluateResult"

    initiative_id: str
    confidence: float
    cost: float
    return_best: float
    return_median: float
    return_worst: float
    model_type: ModelType
    sample_size: int
    confidence_range: tuple[float, float] | None = None
    strategy: str = "score"
    returns_collapsed: bool = False
    value_per_unit: float = 1.0
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._initiative()
        self.model_type = self._model_type()
        for name in ("confidence", "cost", "return_best", "return_median", "return_worst"):
            setattr(self, name, self._number(name))
        self.value_per_unit = self._number("value_per_unit")
        self.sample_size = self._integer("sample_size")
        if not self.return_worst <= self.return_median <= self.return_best:
            raise self._fail(
                "return_median",
                f"must satisfy return_worst <= return_median <= return_best, got "
                f"return_worst={self.return_worst!r}, return_median={self.return_median!r}, "
                f"return_best={self.return_best!r}",
            )
        if not 0.0 <= self.confidence <= 1.0:
            raise self._fail("confidence", f"must be within [0, 1], got {self.confidence!r}")
        if self.cost <= 0:
            raise self._fail("cost", f"must be > 0, got {self.cost!r}")
        if self.value_per_unit <= 0:
            raise self._fail("value_per_unit", f"must be > 0, got {self.value_per_unit!r}")
        if self.confidence_range is not None:
            lo, hi = (float(v) for v in self.confidence_range)
            if not 0.0 <= lo <= hi <= 1.0:
                raise self._fail(
                    "confidence_range", f"must satisfy 0 <= lo <= hi <= 1, got ({lo!r}, {hi!r})"
                )
            self.confidence_range = (lo, hi)
        self.returns_collapsed = bool(self.returns_collapsed)
        self.details = dict(self.details)


@dataclass
class AllocateResult(_Contract):
    """The funded portfolio (ALLOCATE output, one per run).

    ``selected_initiatives`` keeps the input order; ``predicted_returns`` and
    ``budget_allocated`` have exactly the selected ids as keys. ``budget`` (when given) bounds
    the sum of ``budget_allocated``.
    """

    CONTRACT: ClassVar[str] = "AllocateResult"

    selected_initiatives: list[str]
    predicted_returns: dict[str, float]
    budget_allocated: dict[str, float]
    budget: float | None = None
    rule: str | None = None
    status: str = "optimal"
    detail: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.selected_initiatives = list(self.selected_initiatives)
        seen: set[str] = set()
        duplicates = sorted({i for i in self.selected_initiatives if i in seen or seen.add(i)})
        if duplicates:
            raise self._fail("selected_initiatives", f"duplicate ids {duplicates}")
        for name in ("predicted_returns", "budget_allocated"):
            mapping = getattr(self, name)
            if not isinstance(mapping, Mapping):
                raise self._fail(name, f"must be a mapping, got {mapping!r}")
            extra = sorted(set(mapping) - seen)
            missing = sorted(seen - set(mapping))
            if extra or missing:
                raise self._fail(
                    name,
                    f"keys must equal selected_initiatives; not selected: {extra}, "
                    f"selected but absent: {missing}",
                )
            clean: dict[str, float] = {}
            for key, value in mapping.items():
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise self._fail(name, f"value for {key!r} must be a number, got {value!r}")
                if not math.isfinite(value):
                    raise self._fail(name, f"value for {key!r} must be finite, got {value!r}")
                clean[key] = float(value)
            setattr(self, name, clean)
        for key, value in self.budget_allocated.items():
            if value < 0:
                raise self._fail(
                    "budget_allocated", f"value for {key!r} must be >= 0, got {value!r}"
                )
        self.budget = self._number("budget", optional=True)
        if self.budget is not None:
            total = math.fsum(self.budget_allocated.values())
            if total > self.budget * (1 + RELATIVE_TOLERANCE) + RELATIVE_TOLERANCE:
                raise self._fail(
                    "budget_allocated",
                    f"sum(budget_allocated)={total!r} exceeds budget={self.budget!r}",
                )
        self.detail = dict(self.detail)

    @property
    def budget_used(self) -> float:
        return math.fsum(self.budget_allocated.values())


@dataclass
class OutcomeReport(_Contract):
    """Predicted against actual for one scaled initiative (the final output)."""

    CONTRACT: ClassVar[str] = "OutcomeReport"

    initiative_id: str
    predicted_return: float
    actual_return: float
    prediction_error: float
    sample_size_pilot: int
    sample_size_scale: int
    budget_allocated: float
    confidence_score: float
    model_type: ModelType
    pilot_ci_lower: float | None = None
    pilot_ci_upper: float | None = None
    scale_ci_lower: float | None = None
    scale_ci_upper: float | None = None
    true_effect_pilot: float | None = None
    true_effect_scale: float | None = None
    details: dict[str, Any] = field(default_factory=dict)
    min_sample_size: int = MIN_SAMPLE_SIZE

    def __post_init__(self) -> None:
        self._initiative()
        self.model_type = self._model_type()
        for name in (
            "predicted_return",
            "actual_return",
            "prediction_error",
            "budget_allocated",
            "confidence_score",
        ):
            setattr(self, name, self._number(name))
        for name in (
            "pilot_ci_lower",
            "pilot_ci_upper",
            "scale_ci_lower",
            "scale_ci_upper",
            "true_effect_pilot",
            "true_effect_scale",
        ):
            setattr(self, name, self._number(name, optional=True))
        self.sample_size_pilot = self._integer("sample_size_pilot")
        self.sample_size_scale = self._integer("sample_size_scale")
        expected = self.actual_return - self.predicted_return
        if not _close(self.prediction_error, expected):
            raise self._fail(
                "prediction_error",
                f"must equal actual_return - predicted_return = {expected!r}, "
                f"got {self.prediction_error!r}",
            )
        self.min_sample_size = self._min_sample_size()
        if self.sample_size_pilot < self.min_sample_size:
            raise self._fail(
                "sample_size_pilot",
                f"must be >= {self.min_sample_size}, got {self.sample_size_pilot!r}",
            )
        if self.sample_size_scale < self.sample_size_pilot:
            raise self._fail(
                "sample_size_scale",
                f"must be >= sample_size_pilot={self.sample_size_pilot!r}, "
                f"got {self.sample_size_scale!r}",
            )
        if not 0.0 <= self.confidence_score <= 1.0:
            raise self._fail(
                "confidence_score", f"must be within [0, 1], got {self.confidence_score!r}"
            )
        if self.budget_allocated < 0:
            raise self._fail("budget_allocated", f"must be >= 0, got {self.budget_allocated!r}")
        self.details = dict(self.details)

    @property
    def actual_in_pilot_ci(self) -> bool | None:
        """Whether the scale actual fell inside the pilot CI (``None`` without a CI)."""
        if self.pilot_ci_lower is None or self.pilot_ci_upper is None:
            return None
        return self.pilot_ci_lower <= self.actual_return <= self.pilot_ci_upper
