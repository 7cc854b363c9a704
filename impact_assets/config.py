"""The pipeline manifest and the stage configs (design: "Three-Level Configuration").

1. The manifest (``configs/pipeline.yaml``): ``budget``, ``scale_sample_size``, ``max_workers``,
   the stage config references ``measure``/``evaluate``/``allocate`` (``{config: file}``) and the
   ``initiatives``; optionally ``parallelism`` (``auto`` (default), ``threads`` or ``processes``: how
   MEASURE fans out, see :mod:`impact_assets.parallel`), ``allow_partial`` and
   ``allow_external_paths``.
2. Stage configs: ``component:`` plus the component's constructor keyword arguments.
3. Initiatives: ``initiative_id``, ``cost_to_scale``, ``measure_config`` and the optional
   ``value_per_unit`` (what one unit of the measured effect is worth, default 1), ``name`` and
   ``min_sample_size`` (a lower minimum of ``MeasureResult.sample_size`` for a small-panel
   design, sent to MEASURE in the event; ``docs/measure.md``, "Sample size per model").

Every path is resolved relative to the YAML file that names it and, unless the manifest sets
``allow_external_paths: true``, must stay inside the manifest's directory tree; this includes the
data files a measure config names (``DATA.SOURCE.CONFIG.path``/``scale_path``). Every problem
raises :class:`ConfigError` naming the file, the key and, where relevant, the initiative.
YAML is parsed only by :func:`impact_assets.yaml_safe.safe_load_text` (``yaml.safe_load``
semantics). A measure config parsed here (to confine its data paths) is kept on its
:class:`InitiativeConfig` so that MEASURE does not parse it again.
"""

from __future__ import annotations

import difflib
import functools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from impact_assets.parallel import PARALLELISM
from impact_assets.yaml_safe import safe_load_text

#: Initiative ids become partition keys and file names.
INITIATIVE_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")

STAGES = ("measure", "evaluate", "allocate")
_MANIFEST_REQUIRED = (
    "budget",
    "scale_sample_size",
    "measure",
    "evaluate",
    "allocate",
    "initiatives",
)
_MANIFEST_OPTIONAL = (
    "max_workers",
    "parallelism",
    "allow_external_paths",
    "allow_partial",
    "name",
)
_INITIATIVE_REQUIRED = ("initiative_id", "cost_to_scale", "measure_config")
_INITIATIVE_OPTIONAL = ("value_per_unit", "name", "description", "min_sample_size")
DEFAULT_MAX_WORKERS = 4


class ConfigError(ValueError):
    """A manifest or stage config is invalid. The message names file, key and initiative."""

    def __init__(
        self, file: Path | str, key: str | None, message: str, initiative: str | None = None
    ):
        self.file = str(file)
        self.key = key
        self.initiative = initiative
        where = self.file
        if initiative is not None:
            where += f": initiative {initiative!r}"
        if key:
            where += f": {key}"
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class StageConfig:
    """A stage config file: the component name and its constructor parameters."""

    stage: str
    path: Path
    component: str
    params: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        """Resolve the component and check its parameters without building it."""
        from impact_assets.registry import ComponentError, validate_component

        try:
            validate_component(self.component, self.params)
        except ComponentError as exc:
            raise ConfigError(self.path, "component", str(exc)) from exc

    def build(self):
        """Construct the component through the registry; errors name this file."""
        from impact_assets.registry import ComponentError, build_component

        try:
            return build_component(self.component, self.params)
        except ComponentError as exc:
            raise ConfigError(self.path, "component", str(exc)) from exc


#: A measure config file as parsed while loading the manifest: ``((st_mtime_ns, st_size),
#: mapping)``, the file's stat when it was read and what MEASURE's reader returns for it.
ParsedMeasureConfig = tuple[tuple[int, int], dict[str, Any]]


@dataclass(frozen=True)
class InitiativeConfig:
    """One candidate initiative from the manifest.

    ``parsed_measure_config`` is the measure config as :func:`load_config` parsed it (YAML
    files whose data paths it confined), reused by MEASURE while the file is unchanged (see
    :func:`impact_assets.steps.measure_event`); it takes no part in equality or hashing.
    """

    initiative_id: str
    cost_to_scale: float
    measure_config: Path
    value_per_unit: float | None = None
    name: str | None = None
    description: str | None = None
    min_sample_size: int | None = None
    parsed_measure_config: ParsedMeasureConfig | None = field(
        default=None, compare=False, hash=False, repr=False
    )

    @property
    def display_name(self) -> str:
        return self.name or self.initiative_id


@dataclass(frozen=True)
class PipelineConfig:
    """The whole manifest, with stage configs loaded and paths resolved."""

    path: Path
    budget: float
    scale_sample_size: int
    max_workers: int
    measure: StageConfig
    evaluate: StageConfig
    allocate: StageConfig
    initiatives: tuple[InitiativeConfig, ...]
    allow_external_paths: bool = False
    allow_partial: bool = False
    name: str | None = None
    parallelism: str = "auto"

    @property
    def initiative_ids(self) -> list[str]:
        return [i.initiative_id for i in self.initiatives]

    @functools.cached_property
    def _by_id(self) -> dict[str, InitiativeConfig]:
        return {item.initiative_id: item for item in self.initiatives}

    def initiative(self, initiative_id: str) -> InitiativeConfig:
        if initiative_id in self._by_id:
            return self._by_id[initiative_id]
        raise KeyError(
            f"{self.path}: no initiative {initiative_id!r}; known: {', '.join(self.initiative_ids)}"
        )

    def stage(self, name: str) -> StageConfig:
        if name not in STAGES:
            raise KeyError(f"unknown stage {name!r}; stages: {', '.join(STAGES)}")
        return getattr(self, name)


# --------------------------------------------------------------------------- YAML helpers


def read_yaml(path: Path, *, referenced_by: str | None = None, owner: Path | None = None) -> Any:
    """Read one YAML file (``yaml.safe_load`` semantics); errors name the file (and line)."""
    if not path.exists():
        if referenced_by and owner is not None:
            raise ConfigError(owner, referenced_by, f"file not found: {path}")
        raise ConfigError(path, None, "file not found")
    if not path.is_file():
        raise ConfigError(owner or path, referenced_by, f"not a file: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, None, f"cannot read file: {exc}") from exc
    try:
        return safe_load_text(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(f"{path}{line}", None, f"YAML syntax error: {problem}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(path, None, f"YAML error: {exc}") from exc


def _unknown_key(file: Path, key: str, valid: tuple[str, ...], prefix: str = "", initiative=None):
    close = difflib.get_close_matches(key, valid, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return ConfigError(
        file,
        f"{prefix}{key}",
        f"unknown key{hint} Valid keys: {', '.join(valid)}",
        initiative=initiative,
    )


def _number(file: Path, key: str, value: Any, *, integer: bool = False, initiative=None) -> Any:
    kind = "an integer" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(
            file, key, f"must be {kind}, got {type(value).__name__} {value!r}", initiative
        )
    if integer and isinstance(value, float):
        if not value.is_integer():
            raise ConfigError(file, key, f"must be {kind}, got {value!r}", initiative)
        value = int(value)
    if not math.isfinite(value):
        raise ConfigError(file, key, f"must be finite, got {value!r}", initiative)
    if value <= 0:
        raise ConfigError(file, key, f"must be > 0, got {value!r}", initiative)
    return value


def run_settings(file: Path, data: Mapping[str, Any]) -> tuple[int, str]:
    """The manifest's ``max_workers`` and ``parallelism``, validated."""
    max_workers = _number(
        file, "max_workers", data.get("max_workers", DEFAULT_MAX_WORKERS), integer=True
    )
    parallelism = data.get("parallelism", "auto")
    if parallelism not in PARALLELISM:
        raise ConfigError(
            file, "parallelism", f"must be one of {', '.join(PARALLELISM)}, got {parallelism!r}"
        )
    return int(max_workers), parallelism


def _resolve(owner: Path, key: str, value: Any, root: Path, allow_external: bool, initiative=None):
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(owner, key, f"must be a file path string, got {value!r}", initiative)
    path = (owner.parent / value).resolve()
    if not allow_external and not path.is_relative_to(root):
        raise ConfigError(
            owner,
            key,
            f"path {value!r} resolves to {path}, outside the manifest directory {root}; "
            "set 'allow_external_paths: true' in the manifest to allow it",
            initiative,
        )
    return path


def load_stage_config(path: Path | str, stage: str) -> StageConfig:
    """Load a stage config: ``component:`` plus constructor keyword arguments."""
    path = Path(path).resolve()
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(path, None, f"must be a mapping with a 'component' key, got {data!r}")
    if "component" not in data:
        raise ConfigError(path, "component", "missing required key")
    component = data["component"]
    if not isinstance(component, str) or not component.strip():
        raise ConfigError(path, "component", f"must be a component name, got {component!r}")
    params = {k: v for k, v in data.items() if k != "component"}
    for key in params:
        if not isinstance(key, str):
            raise ConfigError(path, str(key), "parameter names must be strings")
    return StageConfig(stage=stage, path=path, component=component, params=params)


def _load_initiative(file: Path, index: int, raw: Any, root: Path, allow_external: bool):
    key = f"initiatives[{index}]"
    if not isinstance(raw, dict):
        raise ConfigError(file, key, f"must be a mapping, got {raw!r}")
    ident = raw.get("initiative_id")
    label = ident if isinstance(ident, str) else None
    for name in raw:
        if name not in _INITIATIVE_REQUIRED + _INITIATIVE_OPTIONAL:
            raise _unknown_key(
                file, str(name), _INITIATIVE_REQUIRED + _INITIATIVE_OPTIONAL, f"{key}.", label
            )
    for name in _INITIATIVE_REQUIRED:
        if name not in raw or raw[name] is None:
            raise ConfigError(file, f"{key}.{name}", "missing required key", label)
    if not isinstance(ident, str) or not INITIATIVE_ID_PATTERN.fullmatch(ident):
        raise ConfigError(
            file,
            f"{key}.initiative_id",
            f"invalid id {ident!r}: ids must match [A-Za-z0-9][A-Za-z0-9_-]{{0,63}} "
            "(they become partition keys and file names)",
        )
    cost = _number(file, f"{key}.cost_to_scale", raw["cost_to_scale"], initiative=ident)
    value_per_unit = raw.get("value_per_unit")
    if value_per_unit is not None:
        value_per_unit = float(
            _number(file, f"{key}.value_per_unit", value_per_unit, initiative=ident)
        )
    min_sample_size = raw.get("min_sample_size")
    if min_sample_size is not None:
        min_sample_size = int(
            _number(file, f"{key}.min_sample_size", min_sample_size, integer=True, initiative=ident)
        )
    for text_key in ("name", "description"):
        if raw.get(text_key) is not None and not isinstance(raw[text_key], str):
            raise ConfigError(file, f"{key}.{text_key}", "must be a string", ident)
    measure_config = _resolve(
        file, f"{key}.measure_config", raw["measure_config"], root, allow_external, ident
    )
    if not measure_config.is_file():
        raise ConfigError(file, f"{key}.measure_config", f"file not found: {measure_config}", ident)
    parsed = None
    if not allow_external:
        parsed = _confine_data_paths(file, measure_config, root, ident)
    return InitiativeConfig(
        initiative_id=ident,
        cost_to_scale=float(cost),
        measure_config=measure_config,
        value_per_unit=value_per_unit,
        name=raw.get("name"),
        description=raw.get("description"),
        min_sample_size=min_sample_size,
        parsed_measure_config=parsed,
    )


#: Data files a measure config may name (``DATA.SOURCE.CONFIG.<key>``); confined like the rest.
_DATA_PATH_KEYS = ("path", "scale_path")


#: Suffixes MEASURE reads as YAML (``impact_assets.measure.config.read_config_file``).
_YAML_SUFFIXES = (".yaml", ".yml")


def _confine_data_paths(
    manifest: Path, measure_config: Path, root: Path, initiative: str
) -> ParsedMeasureConfig | None:
    """Refuse data paths in ``measure_config`` that resolve outside the manifest's tree.

    Only the location is checked here; a measure config that does not parse, or names no data
    file, is left to MEASURE, which reports it for this initiative alone. Returns the parsed
    config for MEASURE to reuse when it is what MEASURE's reader would return (a YAML file
    holding a mapping, or empty), else ``None``.
    """
    try:
        stat = measure_config.stat()
        raw = safe_load_text(measure_config.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    parsed = None
    if measure_config.suffix.lower() in _YAML_SUFFIXES and (raw is None or isinstance(raw, dict)):
        parsed = ((stat.st_mtime_ns, stat.st_size), {} if raw is None else raw)
    section: Any = raw
    for name in ("DATA", "SOURCE", "CONFIG"):
        section = section.get(name) if isinstance(section, dict) else None
    if not isinstance(section, dict):
        return parsed
    for key in _DATA_PATH_KEYS:
        value = section.get(key)
        if not isinstance(value, str) or not value.strip():
            continue
        path = (measure_config.parent / Path(value).expanduser()).resolve()
        if not path.is_relative_to(root):
            raise ConfigError(
                measure_config,
                f"DATA.SOURCE.CONFIG.{key}",
                f"path {value!r} resolves to {path}, outside the manifest directory {root}; "
                f"set 'allow_external_paths: true' in {manifest} to allow it",
                initiative,
            )
    return parsed


def load_config(path: Path | str) -> PipelineConfig:
    """Load and validate a pipeline manifest and the stage configs it names."""
    file = Path(path).resolve()
    data = read_yaml(file)
    if data is None:
        raise ConfigError(file, None, "the manifest is empty")
    if not isinstance(data, dict):
        raise ConfigError(file, None, f"must be a mapping, got {type(data).__name__}")
    valid = _MANIFEST_REQUIRED + _MANIFEST_OPTIONAL
    for key in data:
        if key not in valid:
            raise _unknown_key(file, str(key), valid)
    for key in _MANIFEST_REQUIRED:
        if key not in data or data[key] is None:
            raise ConfigError(file, key, "missing required key")

    allow_external = data.get("allow_external_paths", False)
    allow_partial = data.get("allow_partial", False)
    for key, flag in (("allow_external_paths", allow_external), ("allow_partial", allow_partial)):
        if not isinstance(flag, bool):
            raise ConfigError(file, key, f"must be true or false, got {flag!r}")
    root = file.parent

    budget = float(_number(file, "budget", data["budget"]))
    scale_sample_size = _number(file, "scale_sample_size", data["scale_sample_size"], integer=True)
    max_workers, parallelism = run_settings(file, data)
    name = data.get("name")
    if name is not None and not isinstance(name, str):
        raise ConfigError(file, "name", f"must be a string, got {name!r}")

    stages: dict[str, StageConfig] = {}
    for stage in STAGES:
        ref = data[stage]
        if not isinstance(ref, dict):
            raise ConfigError(file, stage, f"must be a mapping like {{config: file}}, got {ref!r}")
        for key in ref:
            if key != "config":
                raise _unknown_key(file, str(key), ("config",), f"{stage}.")
        if "config" not in ref:
            raise ConfigError(file, f"{stage}.config", "missing required key")
        stage_path = _resolve(file, f"{stage}.config", ref["config"], root, allow_external)
        if not stage_path.is_file():
            raise ConfigError(file, f"{stage}.config", f"file not found: {stage_path}")
        stages[stage] = load_stage_config(stage_path, stage)

    raw_initiatives = data["initiatives"]
    if not isinstance(raw_initiatives, list):
        raise ConfigError(file, "initiatives", f"must be a list, got {raw_initiatives!r}")
    if not raw_initiatives:
        raise ConfigError(file, "initiatives", "the initiative list is empty")
    initiatives = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(raw_initiatives):
        item = _load_initiative(file, index, raw, root, allow_external)
        if item.initiative_id in seen:
            raise ConfigError(
                file,
                f"initiatives[{index}].initiative_id",
                f"duplicate id (first used at initiatives[{seen[item.initiative_id]}])",
                item.initiative_id,
            )
        seen[item.initiative_id] = index
        initiatives.append(item)

    return PipelineConfig(
        path=file,
        budget=budget,
        scale_sample_size=int(scale_sample_size),
        max_workers=int(max_workers),
        measure=stages["measure"],
        evaluate=stages["evaluate"],
        allocate=stages["allocate"],
        initiatives=tuple(initiatives),
        allow_external_paths=allow_external,
        allow_partial=allow_partial,
        name=name,
        parallelism=parallelism,
    )
