"""The scorer interface and the scorer registry (EVALUATE's extension point).

A scorer turns one validated :class:`~impact_assets.evaluate.inputs.Measurement` and the
confidence range of its model type into a confidence. Everything else in EVALUATE (input
validation, the range table, the return scenarios, the output contract) is shared and lives in
:class:`~impact_assets.evaluate.component.EvaluateComponent`.

Built-in scorers:

- ``"score"``: the upstream v1 draw, bit for bit (:mod:`impact_assets.evaluate.score`);
- ``"evidence"``: a deterministic, content-driven confidence (:mod:`impact_assets.evaluate.evidence`).

A further scorer, e.g. an LLM review (spec §A4, which needs network access we do not have),
subclasses :class:`Scorer` and registers itself with :func:`register_scorer`; see
``docs/evaluate.md``.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from impact_assets.evaluate.inputs import Measurement

#: Modules that register the built-in scorers when imported (loaded lazily).
_BUILTIN_MODULES = ("impact_assets.evaluate.score", "impact_assets.evaluate.evidence")

_SCORERS: dict[str, type[Scorer]] = {}


class ScorerError(ValueError):
    """A scorer name or its options could not be resolved."""


@dataclass(frozen=True)
class Score:
    """What a scorer returns: the confidence and JSON-safe details of how it was reached."""

    confidence: float
    details: dict[str, Any] = field(default_factory=dict)


class Scorer(ABC):
    """Turns one measurement into a confidence.

    Subclasses set :attr:`name` (recorded as the result's ``strategy``), take their options as
    constructor keyword arguments (validated there), and implement :meth:`score`. A scorer must be
    deterministic and must not depend on anything but its inputs. The built-in scorers keep the
    confidence inside ``confidence_range``; a scorer that does not must say so in its details.
    """

    name: ClassVar[str]

    @abstractmethod
    def score(self, measurement: Measurement, confidence_range: tuple[float, float]) -> Score:
        """Return the confidence for ``measurement`` given its model type's ``(lo, hi)``."""

    def params(self) -> dict[str, Any]:
        """The scorer's options, JSON-safe (so that ``type(s)(**s.params())`` rebuilds it)."""
        return {}


def scale_to_range(quality: float, confidence_range: tuple[float, float]) -> float:
    """``lo + (hi - lo) * quality`` for ``quality`` in [0, 1], kept inside ``[lo, hi]``.

    Non-decreasing in ``quality`` (also in floating point). Scorers that grade evidence on
    [0, 1] (the evidence scorer, a future review scorer) use it to land in the method's range.
    """
    if not 0.0 <= quality <= 1.0:
        raise ValueError(f"quality must be within [0, 1], got {quality!r}")
    lo, hi = confidence_range
    return min(hi, max(lo, lo + (hi - lo) * quality))


def register_scorer(name: str, cls: type[Scorer] | None = None):
    """Register a :class:`Scorer` subclass under ``name``; usable as a class decorator."""

    def _register(klass: type[Scorer]) -> type[Scorer]:
        if not (inspect.isclass(klass) and issubclass(klass, Scorer)):
            raise ScorerError(f"scorer {name!r} must be a Scorer subclass, got {klass!r}")
        _SCORERS[name] = klass
        return klass

    return _register(cls) if cls is not None else _register


def unregister_scorer(name: str) -> None:
    """Remove a registration (for tests)."""
    _SCORERS.pop(name, None)


def _load_builtins() -> None:
    for module in _BUILTIN_MODULES:
        importlib.import_module(module)


def available_scorers() -> list[str]:
    """Registered scorer names, sorted."""
    _load_builtins()
    return sorted(_SCORERS)


def resolve_scorer(name: str) -> type[Scorer]:
    """The scorer class registered as ``name``, or importable as a ``module:Class`` path."""
    _load_builtins()
    if not isinstance(name, str) or not name:
        raise ScorerError(f"scorer name must be a non-empty string, got {name!r}")
    if name in _SCORERS:
        return _SCORERS[name]
    if ":" in name:
        module_name, _, attr = name.partition(":")
        try:
            obj: Any = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise ScorerError(f"scorer {name!r}: cannot import: {exc}") from exc
        if inspect.isclass(obj) and issubclass(obj, Scorer):
            return obj
        raise ScorerError(f"scorer {name!r} resolves to {obj!r}, not a Scorer subclass")
    close = difflib.get_close_matches(name, sorted(_SCORERS), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ScorerError(
        f"Unknown scorer {name!r}.{hint} Available: {', '.join(sorted(_SCORERS))}; "
        "or give a 'module:Class' path."
    )


def create_scorer(name: str, options: Mapping[str, Any] | None = None) -> Scorer:
    """Build the scorer registered as ``name`` with ``options`` as keyword arguments."""
    cls = resolve_scorer(name)
    try:
        return cls(**dict(options or {}))
    except TypeError as exc:
        raise ScorerError(f"scorer {name!r}: invalid options: {exc}") from exc
