"""Component registry: resolve a stage config's ``component:`` name to a class and build it.

A name resolves, in order, to

1. a built-in component (the table below, imported lazily so that importing the registry stays
   cheap),
2. a component registered at run time with :func:`register_component`,
3. a third-party component advertised in the entry-point group ``impact_assets.components``
   (``[project.entry-points."impact_assets.components"] MyMeasure = "pkg.module:MyMeasure"``),
4. a dotted ``module:Class`` (or ``module.Class``) path.

An unknown name raises :class:`ComponentError` listing the available names.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Any

from impact_assets.component import PipelineComponent

ENTRY_POINT_GROUP = "impact_assets.components"

#: Built-in components by registered name -> ``module:Class``.
BUILTIN_COMPONENTS: dict[str, str] = {
    "Measure": "impact_assets.measure.component:Measure",
    "UpstreamMeasure": "impact_assets.measure.upstream:UpstreamMeasure",
    "Evaluate": "impact_assets.evaluate.score:Evaluate",
    "EvidenceEvaluate": "impact_assets.evaluate.evidence:EvidenceEvaluate",
    "ScorerEvaluate": "impact_assets.evaluate.component:ScorerEvaluate",
    "MockAllocate": "impact_assets.allocate.mock:MockAllocate",
    "MinimaxRegretAllocate": "impact_assets.allocate.minimax:MinimaxRegretAllocate",
    "BayesianAllocate": "impact_assets.allocate.bayesian:BayesianAllocate",
    "EmpiricalBayesAllocate": "impact_assets.allocate.empirical_bayes:EmpiricalBayesAllocate",
}

_RUNTIME_COMPONENTS: dict[str, type[PipelineComponent]] = {}


class ComponentError(ValueError):
    """A component name or its parameters could not be resolved."""


def register_component(name: str, cls: type[PipelineComponent] | None = None):
    """Register ``cls`` under ``name``; usable as a decorator (``@register_component("X")``)."""

    def _register(klass: type[PipelineComponent]) -> type[PipelineComponent]:
        if not (inspect.isclass(klass) and issubclass(klass, PipelineComponent)):
            raise ComponentError(f"component {name!r} must be a PipelineComponent subclass")
        _RUNTIME_COMPONENTS[name] = klass
        return klass

    return _register(cls) if cls is not None else _register


def unregister_component(name: str) -> None:
    """Remove a run-time registration (for tests)."""
    _RUNTIME_COMPONENTS.pop(name, None)


def _entry_points() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available_components() -> list[str]:
    """Every name that resolves without a dotted path, sorted."""
    return sorted(set(BUILTIN_COMPONENTS) | set(_RUNTIME_COMPONENTS) | set(_entry_points()))


def _import_path(path: str, name: str) -> Any:
    if ":" in path:
        module_name, _, attr = path.partition(":")
    else:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise ComponentError(f"component {name!r}: {path!r} is not a 'module:Class' path")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ComponentError(
            f"component {name!r}: cannot import module {module_name!r}: {exc}"
        ) from exc
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ComponentError(
                f"component {name!r}: module {module_name!r} has no attribute {attr!r}"
            ) from None
    return obj


def resolve_component(name: str) -> type[PipelineComponent]:
    """Return the component class registered (or importable) under ``name``."""
    if not isinstance(name, str) or not name.strip():
        raise ComponentError(f"component name must be a non-empty string, got {name!r}")
    if name in _RUNTIME_COMPONENTS:
        cls: Any = _RUNTIME_COMPONENTS[name]
    elif name in BUILTIN_COMPONENTS:
        cls = _import_path(BUILTIN_COMPONENTS[name], name)
    else:
        eps = _entry_points()
        if name in eps:
            try:
                cls = eps[name].load()
            except Exception as exc:  # a broken third-party plugin must name itself
                raise ComponentError(
                    f"component {name!r}: entry point {eps[name].value!r} failed to load: {exc}"
                ) from exc
        elif ":" in name or "." in name:
            cls = _import_path(name, name)
        else:
            names = available_components()
            close = difflib.get_close_matches(name, names, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ComponentError(
                f"Unknown component {name!r}.{hint} Available: {', '.join(names)}; "
                "or give a dotted 'module:Class' path."
            )
    if not (inspect.isclass(cls) and issubclass(cls, PipelineComponent)):
        raise ComponentError(f"component {name!r} resolves to {cls!r}, not a PipelineComponent")
    return cls


def _check_params(name: str, cls: type, params: Mapping[str, Any]) -> None:
    if cls.__init__ is object.__init__:
        accepted: list[str] = []
        if params:
            key = next(iter(params))
            raise ComponentError(
                f"component {name!r} has no parameter {key!r}. Valid parameters: none"
            )
        return
    signature = inspect.signature(cls.__init__)
    accepted = [
        p.name
        for p in list(signature.parameters.values())[1:]
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]
    takes_any = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    if takes_any:
        return
    for key in params:
        if key not in accepted:
            close = difflib.get_close_matches(key, accepted, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            valid = ", ".join(accepted) if accepted else "none"
            raise ComponentError(
                f"component {name!r} has no parameter {key!r}.{hint} Valid parameters: {valid}"
            )


def validate_component(
    name: str, params: Mapping[str, Any] | None = None
) -> type[PipelineComponent]:
    """Resolve ``name`` and check ``params`` against its constructor, without building it."""
    cls = resolve_component(name)
    _check_params(name, cls, dict(params or {}))
    return cls


def build_component(name: str, params: Mapping[str, Any] | None = None) -> PipelineComponent:
    """Resolve ``name`` and construct it with ``params`` as keyword arguments."""
    cls = resolve_component(name)
    params = dict(params or {})
    _check_params(name, cls, params)
    try:
        return cls(**params)
    except ComponentError:
        raise
    except (TypeError, ValueError) as exc:
        raise ComponentError(f"component {name!r}: invalid parameters: {exc}") from exc
