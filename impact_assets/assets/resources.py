"""Stage components exposed as Dagster ``ConfigurableResource``s, and the MEASURE worker pool.

Each component resource holds a registered component name and its constructor parameters. Defaults come
from the stage configs the manifest names; run config (``-c`` on the CLI, the launchpad) overrides
them, and ``EnvVar`` works for any field. :meth:`ComponentResource.describe` gives the resolved
configuration recorded as metadata on every materialization.

:class:`WorkerPoolResource` owns the MEASURE worker processes of one run: Dagster sets it up when
a process starts executing a run's steps and tears it down when they end, so the workers exist
only in processes that execute runs (never in a code server, the webserver or the daemon) and
always stop with the run.
"""

from __future__ import annotations

import functools
import importlib.metadata
from typing import Any

import dagster as dg
from pydantic import Field, PrivateAttr

from impact_assets.component import PipelineComponent
from impact_assets.config import ConfigError, StageConfig, load_stage_config
from impact_assets.parallel import PARALLELISM, WorkerPool
from impact_assets.registry import ComponentError, build_component, resolve_component


@functools.cache
def _packages_distributions() -> dict[str, list[str]]:
    """Top-level module -> distributions: a scan of every installed package (the slow path)."""
    return dict(importlib.metadata.packages_distributions())


def _named_like(top: str) -> str | None:
    """The distribution named after the top-level module (``impact_assets`` ->
    ``impact-assets``) if it declares that module in its ``top_level.txt``; found without
    scanning every installed package."""
    try:
        dist = importlib.metadata.distribution(top)
    except importlib.metadata.PackageNotFoundError:
        return None
    declared = (dist.read_text("top_level.txt") or "").split()
    return dist.metadata["Name"] if top in declared else None


@functools.cache
def _distribution_version(module: str) -> dict[str, str | None]:
    top = module.split(".")[0]
    named = _named_like(top)
    names = [named] if named else _packages_distributions().get(top, [])
    for name in names:
        try:
            return {"package": name, "version": importlib.metadata.version(name)}
        except importlib.metadata.PackageNotFoundError:
            continue
    return {"package": None, "version": None}


class ComponentResource(dg.ConfigurableResource):
    """A pipeline stage component selected by name from the component registry.

    Its parameters are those of the stage config file ``stage_config`` (when ``component`` is
    the one that file names), overridden key by key by ``params``. The code location sets
    ``stage_config`` and leaves ``params`` empty, so the launchpad's pre-filled config (which
    drops ``null`` values from a free-form mapping) launches exactly what ``dagster job
    execute`` runs, and a user edits only the parameters they change.
    """

    component: str = Field(description="Registered component name or a 'module:Class' path.")
    params: dict[str, Any | None] = Field(
        default_factory=dict,
        description=(
            "Constructor keyword arguments that override the stage config file's, key by key "
            "(empty: the file's own)."
        ),
    )
    stage_config: str | None = Field(
        default=None,
        description=(
            "The stage config file whose parameters are the base when 'component' is the "
            "component it names (null: no base, only 'params')."
        ),
    )

    @classmethod
    def stage(cls) -> str:
        return cls.__name__.removesuffix("Resource").lower()

    @classmethod
    def from_stage(cls, stage: StageConfig) -> ComponentResource:
        return cls(component=stage.component, stage_config=str(stage.path))

    def resolved_params(self) -> dict[str, Any]:
        """The stage config file's parameters (for its own component) updated with ``params``."""
        base: dict[str, Any] = {}
        if self.stage_config:
            try:
                stage = load_stage_config(self.stage_config, self.stage())
            except ConfigError as exc:
                raise dg.Failure(description=f"{type(self).__name__}: {exc}") from exc
            if stage.component == self.component:
                base = dict(stage.params)
        return {**base, **self.params}

    def build(self) -> PipelineComponent:
        """Construct the component (a fresh instance per call)."""
        try:
            return build_component(self.component, self.resolved_params())
        except ComponentError as exc:
            raise dg.Failure(
                description=f"{type(self).__name__}: {exc}",
                metadata={"component": self.component},
            ) from exc

    def describe(self) -> dict[str, Any]:
        """The resolved configuration: name, class, parameters and the providing package."""
        cls = resolve_component(self.component)
        return {
            "component": self.component,
            "class": f"{cls.__module__}:{cls.__qualname__}",
            "params": dict(sorted(self.resolved_params().items())),
            **_distribution_version(cls.__module__),
        }


class MeasureResource(ComponentResource):
    """The MEASURE component (pilot and scale)."""


class EvaluateResource(ComponentResource):
    """The EVALUATE component."""


class AllocateResource(ComponentResource):
    """The ALLOCATE component."""


class WorkerPoolResource(dg.ConfigurableResource):
    """The MEASURE worker processes of one run (``max_workers`` and ``parallelism`` as in the
    manifest).

    Set up when a process starts executing a run's steps: the pool is created empty, and its
    workers start at the first MEASURE step that needs them
    (:func:`impact_assets.parallel.use_processes`), to be reused by the next. Torn down when the
    run's execution ends, whatever its outcome: the workers stop. Dagster also sets resources
    up again briefly for the result of an in-process execution; an unused pool costs nothing.
    """

    max_workers: int = Field(description="Worker processes (the manifest's max_workers).")
    parallelism: str = Field(
        default="auto", description=f"One of {', '.join(PARALLELISM)} (the manifest's)."
    )
    _pool: WorkerPool | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._pool = WorkerPool(self.max_workers)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    @property
    def pool(self) -> WorkerPool | None:
        """The run's pool (``None`` outside a run's execution: work then runs in a pool of its
        own, :func:`impact_assets.parallel.submit_all`)."""
        return self._pool
