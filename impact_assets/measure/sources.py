"""``DATA.SOURCE`` adapters: the simulator and file sources (measure-spec §2.3, §5.1, §5.7).

Getting data is split in two so that every check happens before any data are generated or read:
:func:`plan_source` resolves the phase-specific choices (seeds, catalog size and origin, which
file to read) and validates them; :func:`load_source` then produces the data.

Phases (``docs/measure.md``, "Scale phase"):

* simulator, pilot: the catalog is the products file (``DATA.SOURCE.CONFIG.path``) when it
  exists, else ``n_products`` products generated from ``seed`` (logged). A ``sample_size`` in the
  event overrides both: a catalog of exactly ``sample_size`` products from ``seed``.
* simulator, scale: a *new* catalog of ``sample_size`` products (the pilot's size when the event
  has none), with the catalog/metrics seed ``derive_seed(seed, "scale")`` and the enrichment seed
  ``derive_seed(enrichment seed, "scale")``; every other data-generating parameter is unchanged.
* file: the pilot reads ``path``, the scale phase ``scale_path`` (required; relative paths are
  relative to the measure config's directory). ``sample_size`` does not subsample a file.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from impact_assets.contracts import MIN_SAMPLE_SIZE
from impact_assets.measure.config import MeasureConfig
from impact_assets.measure.simulator import (
    derive_seed,
    generate_catalog,
    normalize_catalog,
    simulate_panel,
)

log = logging.getLogger(__name__)


class SourceError(ValueError):
    """The data could not be produced or read."""


@dataclass(frozen=True)
class SourcePlan:
    """Everything needed to produce the data of one run, decided before any data exist."""

    source_type: str
    phase: str
    seed: int | None = None
    enrichment_seed: int | None = None
    n_products: int | None = None
    products_path: Path | None = None  # simulator: read the catalog from here
    data_path: Path | None = None  # file source
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class SourceData:
    """What a source produced.

    ``n_units`` is :func:`count_units` of ``data`` when the source knows it without counting
    (``None`` otherwise).
    """

    data: pd.DataFrame
    products: pd.DataFrame | None
    simulated: bool
    info: dict[str, Any]
    n_units: int | None = None


# --------------------------------------------------------------------------- file reading


def read_table(path: Path) -> pd.DataFrame:
    """Read a CSV or Parquet file, or a directory of Parquet (or CSV) files."""
    if path.is_dir():
        parquet = sorted(path.rglob("*.parquet"))
        if parquet:
            return pd.read_parquet(path)
        csvs = sorted(path.rglob("*.csv"))
        if not csvs:
            raise SourceError(f"directory {path} holds no .parquet or .csv files")
        return pd.concat([pd.read_csv(p) for p in csvs], ignore_index=True)
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return pd.read_parquet(path)
    if suffix in (".csv", ".txt"):
        return pd.read_csv(path)
    if suffix == ".json":
        return pd.read_json(path)
    raise SourceError(f"unsupported data file format {suffix!r}: {path} (use .csv or .parquet)")


# --------------------------------------------------------------------------- planning


def plan_source(cfg: MeasureConfig, phase: str, sample_size: int | None) -> SourcePlan:
    """Resolve and validate the phase-specific choices of ``cfg``'s source."""
    if cfg.source_type not in SOURCE_PLANNERS:
        raise cfg.error(
            "DATA.SOURCE.type",
            f"Unknown source type {cfg.source_type!r}. Available: {sorted(SOURCE_PLANNERS)}",
        )
    return SOURCE_PLANNERS[cfg.source_type](cfg, phase, sample_size)


def _plan_simulator(cfg: MeasureConfig, phase: str, sample_size: int | None) -> SourcePlan:
    if sample_size is not None and sample_size < MIN_SAMPLE_SIZE:
        raise cfg.error(
            "sample_size",
            f"the event's sample_size must be >= {MIN_SAMPLE_SIZE} products, got {sample_size}",
        )
    products_path = cfg.data_path("path")
    file_exists = products_path is not None and products_path.is_file()
    treatment = cfg.treatment
    if phase == "pilot":
        seed = cfg.seed
        enrichment_seed = None if treatment is None else treatment.seed
    else:
        seed = derive_seed(cfg.seed, "scale")
        enrichment_seed = None if treatment is None else derive_seed(treatment.seed, "scale")
    info: dict[str, Any] = {"seed": seed, "phase": phase}
    if enrichment_seed is not None:
        info["enrichment_seed"] = enrichment_seed
    if sample_size is not None:
        info["catalog"] = f"generated: {sample_size} products (the event's sample_size)"
        return SourcePlan("simulator", phase, seed, enrichment_seed, sample_size, None, None, info)
    if phase == "pilot" and file_exists:
        info["catalog"] = f"products file {products_path}"
        return SourcePlan(
            "simulator", phase, seed, enrichment_seed, None, products_path, None, info
        )
    n_products = cfg.n_products
    if file_exists and products_path is not None:  # scale, no sample size: the pilot's size
        n_products = len(normalize_catalog(read_table(products_path), 0.5))
    elif products_path is not None:
        log.info(
            "initiative %s: products file %s not found; generating a catalog of %d products "
            "from seed %d",
            cfg.initiative_id,
            products_path,
            n_products,
            seed,
        )
        info["products_file_missing"] = str(products_path)
    info["catalog"] = f"generated: {n_products} products"
    return SourcePlan("simulator", phase, seed, enrichment_seed, n_products, None, None, info)


def _plan_file(cfg: MeasureConfig, phase: str, sample_size: int | None) -> SourcePlan:
    key = "path" if phase == "pilot" else "scale_path"
    path = cfg.data_path(key)
    if path is None:
        raise cfg.error(
            f"DATA.SOURCE.CONFIG.{key}",
            "the scale phase of a file source reads DATA.SOURCE.CONFIG.scale_path (the data "
            "of the scaled roll-out); none is given",
        )
    if not path.exists():
        raise cfg.error(f"DATA.SOURCE.CONFIG.{key}", f"Data file not found: {path}")
    info = {"data_path": str(path), "phase": phase}
    if sample_size is not None:
        info["requested_sample_size"] = sample_size
    return SourcePlan("file", phase, data_path=path, info=info)


SOURCE_PLANNERS: dict[str, Callable[[MeasureConfig, str, int | None], SourcePlan]] = {
    "simulator": _plan_simulator,
    "file": _plan_file,
}


# --------------------------------------------------------------------------- loading


def load_source(cfg: MeasureConfig, plan: SourcePlan) -> SourceData:
    """Produce the data described by ``plan``."""
    if plan.source_type == "simulator":
        return _load_simulator(cfg, plan)
    if plan.source_type == "file":
        return _load_file(cfg, plan)
    raise SourceError(f"Unknown source type {plan.source_type!r}")  # pragma: no cover


def _load_simulator(cfg: MeasureConfig, plan: SourcePlan) -> SourceData:
    if plan.seed is None or cfg.start_date is None or cfg.end_date is None:
        raise SourceError("simulator plan without a seed or dates")  # pragma: no cover
    if plan.products_path is not None:
        try:
            catalog = normalize_catalog(
                read_table(plan.products_path), cfg.funnel.default_quality_score
            )
        except (ValueError, OSError) as exc:
            raise cfg.error(
                "DATA.SOURCE.CONFIG.path", f"cannot use products file {plan.products_path}: {exc}"
            ) from exc
    else:
        catalog = generate_catalog(int(plan.n_products or cfg.n_products), plan.seed)
    treatment = cfg.treatment
    if treatment is not None and plan.enrichment_seed is not None:
        treatment = dataclasses.replace(treatment, seed=plan.enrichment_seed)
    panel = simulate_panel(catalog, cfg.start_date, cfg.end_date, plan.seed, cfg.funnel, treatment)
    info = {**plan.info, "n_products": len(catalog), "n_rows": len(panel)}
    # The panel is date-major, every catalog product once per date: the first date's rows are
    # the first len(catalog) rows, and (ids being unique) the distinct ids are the catalog's.
    if treatment is not None:
        info["n_enriched"] = int(panel["enriched"].to_numpy()[: len(catalog)].sum())
    n_units = len(catalog) if catalog["product_id"].notna().all() else None
    return SourceData(panel, catalog, True, info, n_units)


def _load_file(cfg: MeasureConfig, plan: SourcePlan) -> SourceData:
    if plan.data_path is None:
        raise SourceError("file plan without a data path")  # pragma: no cover
    key = "DATA.SOURCE.CONFIG." + ("path" if plan.phase == "pilot" else "scale_path")
    try:
        data = read_table(plan.data_path)
    except (ValueError, OSError) as exc:
        raise cfg.error(key, f"cannot read {plan.data_path}: {exc}") from exc
    date_column = cfg.source_config["date_column"]
    id_column = cfg.source_config["product_id_column"]
    if date_column in data.columns and _integer_periods(data[date_column]):
        # integer periods (a year, a month index): kept as numbers, never read as nanoseconds
        # since 1970; the models take them as periods (models/_time.py)
        if cfg.start_date is not None or cfg.end_date is not None:
            raise cfg.error(
                "DATA.SOURCE.CONFIG.start_date",
                f"column {date_column!r} of {plan.data_path} holds integer periods (e.g. "
                f"{data[date_column].iloc[0]}); start_date/end_date filter dates, so remove "
                "them (select periods in the file instead)",
            )
        if date_column != "date" and "date" not in data.columns:
            data["date"] = data[date_column]
    elif date_column in data.columns:
        try:
            data[date_column] = pd.to_datetime(data[date_column]).dt.normalize()
        except (ValueError, TypeError) as exc:
            raise cfg.error(
                "DATA.SOURCE.CONFIG.date_column",
                f"column {date_column!r} of {plan.data_path} does not parse as dates: {exc}",
            ) from exc
        mask = pd.Series(True, index=data.index)
        if cfg.start_date is not None:
            mask &= data[date_column] >= cfg.start_date
        if cfg.end_date is not None:
            mask &= data[date_column] <= cfg.end_date
        data = data[mask].reset_index(drop=True)
        if date_column != "date" and "date" not in data.columns:
            data["date"] = data[date_column]
    elif cfg.start_date is not None or cfg.end_date is not None:
        raise cfg.error(
            "DATA.SOURCE.CONFIG.date_column",
            f"start_date/end_date are set but {plan.data_path} has no column {date_column!r}",
        )
    if id_column in data.columns and id_column != "product_id":
        data["product_id"] = data[id_column]
    if "product_id" in data.columns:
        data["product_id"] = data["product_id"].astype(str)
    if data.empty:
        raise cfg.error(key, f"no rows left in {plan.data_path} after the date filter")
    info = {**plan.info, "n_rows": len(data)}
    if "product_id" in data.columns:
        info["n_products"] = int(data["product_id"].nunique())
    if plan.phase == "scale" and "requested_sample_size" in plan.info:
        log.info(
            "initiative %s: file source; the event's sample_size %s does not subsample %s",
            cfg.initiative_id,
            plan.info["requested_sample_size"],
            plan.data_path,
        )
    return SourceData(data, None, False, info)


def _integer_periods(series: pd.Series) -> bool:
    """Whether a time column holds integer periods (integers, or floats with integral values)."""
    if pd.api.types.is_bool_dtype(series) or not pd.api.types.is_numeric_dtype(series):
        return False
    values = series.to_numpy(dtype=float)
    values = values[~pd.isna(values)]
    return bool(values.size) and bool((values == values.round()).all())


def count_units(data: pd.DataFrame) -> int:
    """``MeasureResult.sample_size``: distinct ``product_id`` values, else the number of rows."""
    if "product_id" in data.columns:
        return int(data["product_id"].nunique())
    return len(data)
