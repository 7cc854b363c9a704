"""The one interface every pipeline stage implements (design: "Plugin Architecture")."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any


class PipelineComponent(ABC):
    """A pipeline stage.

    MEASURE and EVALUATE handle one initiative per call. ALLOCATE is the fan-in exception: its
    event is ``{"initiatives": [EvaluateResult dicts...], "budget": float}`` and it returns one
    portfolio selection for all of them.
    """

    @abstractmethod
    def execute(self, event: dict[str, Any]) -> dict[str, Any]:
        """Process one event and return a JSON-safe result dict."""

    def describe(self) -> dict[str, Any]:
        """The resolved configuration of this component, recorded in lineage.

        Subclasses that take constructor arguments should override :meth:`params`.
        """
        cls = type(self)
        return {
            "component": cls.__name__,
            "class": f"{cls.__module__}:{cls.__qualname__}",
            "params": self.params(),
        }

    def params(self) -> dict[str, Any]:
        """Constructor parameters, JSON-safe. Defaults to none."""
        return {}
