"""``Measure``: the built-in MEASURE component (registered as ``Measure``).

``Measure(storage_url="./data/measure").execute(event)`` with ``event = {"initiative_id",
"measure_config", "sample_size"?, "phase"?: "pilot" | "scale", "measure_config_parsed"?}`` runs
one measurement and returns a ``MeasureResult`` dict (plus ``job_dir``). ``measure_config_parsed``
(``((st_mtime_ns, st_size), mapping)``, from :func:`impact_assets.steps.measure_event`) is the
config file as the pipeline already parsed it; it is used while the file's stat is unchanged,
else the file is read. The order of work (``docs/measure.md``):

1. validate the event; load, merge and validate the measure config;
2. look up the model and validate its parameters;
3. plan the data source for the phase (seeds, catalog, files), all before any data exist;
4. produce the data (source + enrichment), transform; the model checks its own minimum and
   counts its ``sample_size``, which must reach the run's ``min_sample_size`` (30 by default);
5. fit the model; compute the true effect from the potential outcomes (simulated data only);
6. validate the ``MeasureResult``; write the job directory ``{storage_url}/{initiative_id}/
   {phase}/`` atomically, ``manifest.json`` last.

The component holds no mutable state besides a small, locked cache of parsed config files, so
one instance may serve many threads (different initiatives) at once. It never changes the
working directory.
"""

from __future__ import annotations

import copy
import logging
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from impact_assets.component import PipelineComponent
from impact_assets.contracts import MIN_SAMPLE_SIZE, MeasureResult
from impact_assets.measure.config import (
    PHASES,
    MeasureConfigError,
    load_measure_config,
    read_config_file,
    resolve_model,
)
from impact_assets.measure.jobdir import JobDir, json_safe, utc_now, validate_initiative_id
from impact_assets.measure.sources import load_source, plan_source
from impact_assets.measure.transforms import TransformError, apply_transform

log = logging.getLogger(__name__)

DEFAULT_STORAGE_URL = "./data/measure"
_CACHE_SIZE = 256
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]")


class MeasureError(ValueError):
    """A measurement failed on its data (transform or model). Names the initiative."""


def _event_sample_size(event: Mapping[str, Any]) -> int | None:
    value = event.get("sample_size")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"event field 'sample_size' must be an integer, got {value!r}")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(f"event field 'sample_size' must be an integer, got {value!r}")
        value = int(value)
    if value < 1:
        raise ValueError(f"event field 'sample_size' must be >= 1, got {value!r}")
    return int(value)


def _min_sample_size(
    configured: int | None, event: Mapping[str, Any], initiative_id: str
) -> tuple[int, str]:
    """The run's minimum ``sample_size`` and where it comes from: the measure config's
    ``MEASUREMENT.min_sample_size``, else the event's ``min_sample_size`` (the manifest's
    initiative entry), else the contract's :data:`MIN_SAMPLE_SIZE`."""
    if configured is not None:
        return int(configured), "MEASUREMENT.min_sample_size"
    value = event.get("min_sample_size")
    if value is None:
        return MIN_SAMPLE_SIZE, "the contract's default"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(
            f"initiative {initiative_id!r}: event field 'min_sample_size' must be an integer "
            f">= 1, got {value!r}"
        )
    return int(value), "the manifest's min_sample_size"


class Measure(PipelineComponent):
    """Measure one initiative's causal impact with the built-in engine.

    ``storage_url`` is a local directory, created if needed; a relative path is relative to
    the working directory at construction time.
    """

    def __init__(self, storage_url: str = DEFAULT_STORAGE_URL):
        if not isinstance(storage_url, str | os.PathLike) or not str(storage_url).strip():
            raise ValueError(f"storage_url must be a directory path, got {storage_url!r}")
        if "://" in str(storage_url):
            raise ValueError(
                f"storage_url must be a local directory, got {storage_url!r} "
                "(remote storage is not supported)"
            )
        self.storage_url = str(storage_url)
        self.storage_root = Path(storage_url).expanduser().resolve()
        self.storage_root.mkdir(parents=True, exist_ok=True)
        self._cache: OrderedDict[tuple, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def params(self) -> dict[str, Any]:
        return {"storage_url": self.storage_url}

    def __getstate__(self) -> dict[str, Any]:
        """Sent to worker processes (impact_assets.parallel) without the cache and its lock."""
        return {"storage_url": self.storage_url, "storage_root": self.storage_root}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.storage_url = state["storage_url"]
        self.storage_root = state["storage_root"]
        self._cache = OrderedDict()
        self._lock = threading.Lock()

    # ----------------------------------------------------------------- config cache

    def _read_config(self, path: Path, initiative_id: str) -> dict[str, Any]:
        """The parsed config file, cached by (path, mtime, size); a deep copy each time."""
        try:
            stat = path.stat()
        except OSError:
            return read_config_file(path, initiative_id)  # raises the "not found" error
        key = (str(path), stat.st_mtime_ns, stat.st_size)
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return copy.deepcopy(cached)
        data = read_config_file(path, initiative_id)
        with self._lock:
            self._cache[key] = copy.deepcopy(data)
            while len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        return data

    @staticmethod
    def _parsed_config(parsed: Any, path: Path) -> dict[str, Any] | None:
        """The event's already-parsed config, if it is still the file's content (same
        ``st_mtime_ns`` and ``st_size`` as when it was read), else ``None``.

        Not copied: :func:`load_measure_config` builds new containers and never modifies the
        mapping it is given.
        """
        if not isinstance(parsed, tuple | list) or len(parsed) != 2:
            return None
        stamp, data = parsed
        if not isinstance(data, Mapping) or not isinstance(stamp, tuple | list):
            return None
        try:
            stat = path.stat()
        except OSError:
            return None
        if (stat.st_mtime_ns, stat.st_size) != tuple(stamp):
            return None
        return dict(data)

    # ----------------------------------------------------------------- execute

    def execute(self, event: dict[str, Any]) -> dict[str, Any]:
        started = time.perf_counter()
        if not isinstance(event, Mapping):
            raise ValueError(f"Measure event must be a mapping, got {type(event).__name__}")
        initiative_id = validate_initiative_id(event.get("initiative_id"))
        phase = event.get("phase") or "pilot"
        if phase not in PHASES:
            raise ValueError(
                f"initiative {initiative_id!r}: event field 'phase' must be one of "
                f"{list(PHASES)}, got {phase!r}"
            )
        config_value = event.get("measure_config")
        if not isinstance(config_value, str | os.PathLike) or not str(config_value).strip():
            raise ValueError(
                f"initiative {initiative_id!r}: event field 'measure_config' must be a file "
                f"path, got {config_value!r}"
            )
        sample_size = _event_sample_size(event)
        config_path = Path(config_value).expanduser().resolve()

        # the six models (and scipy) are imported by the first MEASURE call, not with this
        # module: a Dagster process that only plans the run and leaves MEASURE to worker
        # processes never needs them
        from impact_assets.measure.models.base import ModelError

        # 1-3: everything validated before any data exist
        raw = self._parsed_config(event.get("measure_config_parsed"), config_path)
        cfg = load_measure_config(
            config_path,
            initiative_id=initiative_id,
            raw=raw if raw is not None else self._read_config(config_path, initiative_id),
        )
        model, params = resolve_model(cfg)
        plan = plan_source(cfg, phase, sample_size)
        minimum, minimum_from = _min_sample_size(cfg.min_sample_size, event, initiative_id)

        # 4: data, then the model's own minimum and sample size (docs/measure.md, "Sample size
        # per model"): there is no generic gate before the model
        source = load_source(cfg, plan)
        try:
            transformed = apply_transform(cfg.transform_name, source.data, cfg.transform_params)
        except TransformError as exc:
            raise MeasureError(f"initiative {initiative_id!r} ({cfg.path}): {exc}") from exc
        try:
            model.check_minimum(transformed, params)
            units = int(model.sample_size(transformed, params))
        except ModelError as exc:
            raise MeasureError(f"initiative {initiative_id!r} ({cfg.path}): {exc}") from exc
        unit_name = model.sample_size_unit or (
            "products" if "product_id" in transformed.columns else "rows"
        )
        if units < minimum:
            raise cfg.error(
                "MEASUREMENT.min_sample_size",
                f"model {model.name!r}: sample_size is {units} ({unit_name}), below "
                f"the minimum {minimum} ({minimum_from}); a small-panel design may set a lower "
                "MEASUREMENT.min_sample_size (docs/measure.md, 'Sample size per model')",
            )

        # 5: model
        try:
            fit, true_effect = model.fit_and_true_effect(
                transformed, params, simulated=source.simulated
            )
        except ModelError as exc:
            raise MeasureError(f"initiative {initiative_id!r} ({cfg.path}): {exc}") from exc

        # 6: result, validated before anything is written
        diagnostics = {
            **dict(fit.diagnostics),
            "n_observations": int(fit.n_observations),
            "sample_size_unit": unit_name,
            "min_sample_size_from": minimum_from,
            "data_source": cfg.source_type,
        }
        result = MeasureResult(
            initiative_id=initiative_id,
            effect_estimate=fit.effect_estimate,
            ci_lower=fit.ci_lower,
            ci_upper=fit.ci_upper,
            p_value=fit.p_value,
            sample_size=units,
            model_type=fit.model_type,
            diagnostics=json_safe(diagnostics),
            standard_error=fit.standard_error,
            phase=phase,
            estimand=fit.estimand,
            true_effect=true_effect,
            min_sample_size=minimum,
        )
        # what is written is what is returned: the JSON-normalized dict, re-validated
        record = json_safe(result.to_dict())
        record = MeasureResult.from_dict(record).to_dict()
        record = json_safe(record)

        envelope = {
            "schema_version": "2.0",
            "model_type": fit.model_type,
            "data": {
                "model_params": fit.model_params,
                "impact_estimates": fit.impact_estimates,
                "model_summary": fit.model_summary,
            },
            "metadata": {
                "executed_at": utc_now(),
                "initiative_id": initiative_id,
                "phase": phase,
                "engine": "impact_assets.measure",
            },
        }
        with JobDir(self.storage_root, initiative_id, phase) as job:
            job.write_yaml("config", "config.yaml", cfg.resolved)
            if source.products is not None:
                job.write_parquet("products", "products.parquet", source.products)
            job.write_parquet("business_metrics", "business_metrics.parquet", source.data)
            if transformed is source.data:  # passthrough: one file, indexed under both names
                job.alias("transformed_metrics", "business_metrics")
            else:
                job.write_parquet("transformed_metrics", "transformed_metrics.parquet", transformed)
            for name in sorted(fit.artifacts):
                frame = fit.artifacts[name]
                if isinstance(frame, pd.DataFrame):
                    key = f"{fit.model_type}__{_SAFE_NAME.sub('_', str(name))}"
                    job.write_parquet(key, f"{key}.parquet", frame)
            job.write_json("impact_results", "impact_results.json", envelope)
            job.write_json("measure_result", "measure_result.json", record)
            elapsed = time.perf_counter() - started
            job_dir = job.commit(
                {
                    "model_type": fit.model_type,
                    "created_at": utc_now(),
                    "measure_config": str(config_path),
                    "source": source.info,
                    "elapsed_seconds": round(elapsed, 6),
                }
            )
        log.info(
            "measured %s (%s, %s): effect %.6g, sample_size %d, %.1f ms",
            initiative_id,
            phase,
            fit.model_type,
            record["effect_estimate"],
            units,
            1000.0 * (time.perf_counter() - started),
        )
        return {**record, "job_dir": str(job_dir)}


__all__ = ["Measure", "MeasureConfigError", "MeasureError"]
