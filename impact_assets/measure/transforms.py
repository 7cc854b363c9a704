"""``DATA.TRANSFORM`` functions (measure-spec §2.5) and their registry.

A transform is ``(DataFrame, params) -> DataFrame``. Every transform carries the potential
outcome columns ``*_y0``/``*_y1`` through (summed where rows are aggregated), so models can
compute the true effect after the transform. Fixes relative to upstream:

* ``aggregate_by_date`` no longer sums ``price``/``quality_score`` (they are averaged) and keeps
  the treatment share: bool columns become counts ``n_<column>`` (e.g. ``n_enriched``), and
  ``n_rows`` counts the rows of each date (spec B13).
* ``prepare_simulator_for_approximation`` aligns the before and after aggregates by
  ``product_id`` rather than row position, and uses the *mean* quality of each period rather than
  the first value (spec B15).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

#: Numeric columns that are averaged, not summed, when rows are aggregated.
MEAN_COLUMNS = ("price", "quality_score")


class TransformError(ValueError):
    """The data do not fit the transform (a missing column, ...)."""


TransformFn = Callable[[pd.DataFrame, dict[str, Any]], pd.DataFrame]


@dataclass(frozen=True)
class TransformSpec:
    """A registered transform: the function and its parameters' defaults (``None`` = optional)."""

    function: TransformFn
    defaults: dict[str, Any] = field(default_factory=dict)
    required: tuple[str, ...] = ()


TRANSFORM_REGISTRY: dict[str, TransformSpec] = {}

#: Injected into every transform's params when ENRICHMENT is configured (upstream behaviour).
_ALWAYS_ALLOWED = ("enrichment_start",)


def register_transform(
    name: str,
    function: TransformFn,
    defaults: Mapping[str, Any] | None = None,
    required: tuple[str, ...] = (),
) -> None:
    """Register ``function`` under ``name`` with its parameter defaults."""
    if not callable(function):
        raise TypeError(f"transform {name!r} must be callable, got {function!r}")
    TRANSFORM_REGISTRY[name] = TransformSpec(function, dict(defaults or {}), tuple(required))


def available_transforms() -> list[str]:
    return sorted(TRANSFORM_REGISTRY)


def validate_transform(name: Any, params: Mapping[str, Any], check) -> dict[str, Any]:
    """Check the transform name and params (``check`` is the config's error factory).

    Returns the params merged over the transform's defaults, with ``enrichment_start`` as a
    ``YYYY-MM-DD`` string.
    """
    if name not in TRANSFORM_REGISTRY:
        raise check.fail(
            "DATA.TRANSFORM.FUNCTION",
            f"Unknown transform {name!r}. Available: {available_transforms()}",
        )
    spec = TRANSFORM_REGISTRY[name]
    valid = tuple(spec.defaults) + tuple(k for k in _ALWAYS_ALLOWED if k not in spec.defaults)
    check.keys("DATA.TRANSFORM.PARAMS", params, valid)
    merged = {**spec.defaults, **params}
    prefix = "DATA.TRANSFORM.PARAMS."
    for key, value in merged.items():
        if key == "enrichment_start":
            stamp = check.date(prefix + key, value, optional=True)
            merged[key] = None if stamp is None else stamp.date().isoformat()
        elif isinstance(spec.defaults.get(key), str):
            check.string(prefix + key, value)
    for key in spec.required:
        if merged.get(key) is None:
            raise check.fail(
                prefix + key,
                f"{key} is required by transform {name!r} (it is copied from "
                f"DATA.ENRICHMENT.PARAMS.{key} when ENRICHMENT is configured)",
            )
    return merged


def apply_transform(name: str, data: pd.DataFrame, params: Mapping[str, Any]) -> pd.DataFrame:
    """Run the registered transform ``name`` on ``data``."""
    if name not in TRANSFORM_REGISTRY:
        raise TransformError(f"Unknown transform {name!r}. Available: {available_transforms()}")
    spec = TRANSFORM_REGISTRY[name]
    return spec.function(data, {**spec.defaults, **dict(params)})


def _require(data: pd.DataFrame, columns: list[str], transform: str) -> None:
    missing = [c for c in columns if c not in data.columns]
    if missing:
        raise TransformError(
            f"transform {transform!r}: data must contain column(s) {missing}; "
            f"available: {list(data.columns)}"
        )


def potential_outcome_columns(data: pd.DataFrame) -> list[str]:
    """The ``*_y0``/``*_y1`` columns of ``data``, in column order."""
    return [c for c in data.columns if str(c).endswith(("_y0", "_y1"))]


# --------------------------------------------------------------------------- the transforms


def passthrough(data: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """The data unchanged."""
    return data


def aggregate_by_date(data: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """One row per date (sorted): additive numeric columns summed (potential outcomes included),
    ``price``/``quality_score`` averaged, bool columns counted as ``n_<col>``, plus ``n_rows``.

    ``statistic: mean`` (default ``sum``, the upstream behaviour) averages the additive columns
    per row instead, so the series is "per product per day": its level shift then means the same
    thing for a 100-product pilot and a 5,000-product scale run.
    """
    metric = params.get("metric", "revenue")
    statistic = params.get("statistic", "sum")
    if statistic not in ("sum", "mean"):
        raise ValueError(
            f"aggregate_by_date: parameter 'statistic' must be 'sum' or 'mean', got {statistic!r}"
        )
    _require(data, ["date"], "aggregate_by_date")
    _require(data, [metric], "aggregate_by_date")
    frame = data.copy()
    frame["date"] = pd.to_datetime(frame["date"])
    grouped = frame.groupby("date", sort=True)
    parts = []
    bools = [c for c in frame.columns if c != "date" and pd.api.types.is_bool_dtype(frame[c])]
    numeric = [
        c
        for c in frame.columns
        if c != "date" and c not in bools and pd.api.types.is_numeric_dtype(frame[c])
    ]
    summed = [c for c in numeric if c not in MEAN_COLUMNS]
    averaged = [c for c in numeric if c in MEAN_COLUMNS]
    if summed:
        parts.append(grouped[summed].sum() if statistic == "sum" else grouped[summed].mean())
    if averaged:
        parts.append(grouped[averaged].mean())
    if bools:
        counts = grouped[bools].sum().astype(np.int64)
        counts.columns = [f"n_{c}" for c in bools]
        parts.append(counts)
    parts.append(grouped.size().rename("n_rows").astype(np.int64).to_frame())
    out = pd.concat(parts, axis=1).reset_index()
    return out


def aggregate_for_approximation(data: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """``product_id, baseline_sales`` (the per-product sum of ``baseline_metric``), plus the
    per-product sums of any potential-outcome columns."""
    metric = params.get("baseline_metric", "revenue")
    _require(data, ["product_id", metric], "aggregate_for_approximation")
    extra = potential_outcome_columns(data)
    grouped = data.groupby("product_id", sort=True)
    out = grouped[[metric, *extra]].sum().rename(columns={metric: "baseline_sales"})
    return out.reset_index()[["product_id", "baseline_sales", *extra]]


def prepare_simulator_for_approximation(data: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """One row per product for ``metrics_approximation`` (spec §2.5 item 4, fixed).

    Output columns: ``product_id, quality_before, quality_after, baseline_sales,`` then the
    product attributes (``category``, ``price``, ``enriched`` when present: first value),
    ``n_days_before``, ``n_days_after``, and every potential-outcome column summed over the
    *after* period. ``quality_*`` is the mean quality_score of the period and ``baseline_sales``
    the sum of ``baseline_metric`` over the before period. Aggregates are joined on
    ``product_id``; a product absent from a period gets NaN there (the model filters it).
    If no row falls before the start, every row counts as "before"; if none falls after it, the
    before rows count as "after" (upstream fallbacks, logged).
    """
    name = "prepare_simulator_for_approximation"
    frame = data
    if "product_id" not in frame.columns and "product_identifier" in frame.columns:
        frame = frame.rename(columns={"product_identifier": "product_id"})
    metric = params.get("baseline_metric", "revenue")
    start_value = params.get("enrichment_start")
    if start_value is None:
        raise TransformError(f"transform {name!r}: enrichment_start is required")
    _require(frame, ["product_id", "date", "quality_score", metric], name)
    start = pd.Timestamp(start_value)
    dates = pd.to_datetime(frame["date"])
    before_mask = (dates < start).to_numpy()
    after_mask = ~before_mask
    if not before_mask.any():
        log.warning("%s: no rows before %s; using all rows as the before period", name, start)
        before_mask = np.ones(len(frame), dtype=bool)
    if not after_mask.any():
        log.warning("%s: no rows on or after %s; using the before rows as after", name, start)
        after_mask = before_mask
    before = frame[before_mask]
    after = frame[after_mask]
    outcomes = potential_outcome_columns(frame)

    by_before = before.groupby("product_id", sort=True)
    by_after = after.groupby("product_id", sort=True)
    products = pd.Index(np.unique(frame["product_id"].astype(str).to_numpy()), name="product_id")
    out = pd.DataFrame(index=products)
    # rounded so that a constant quality gives exactly delta 0 (no float residue from the mean)
    out["quality_before"] = by_before["quality_score"].mean().round(9)
    out["quality_after"] = by_after["quality_score"].mean().round(9)
    out["baseline_sales"] = by_before[metric].sum()
    ordered = frame.sort_values("date", kind="stable").groupby("product_id", sort=True)
    for column in ("category", "price", "enriched"):
        if column in frame.columns and column != metric:
            out[column] = ordered[column].first()
    out["n_days_before"] = by_before.size().reindex(products, fill_value=0).astype(np.int64)
    out["n_days_after"] = by_after.size().reindex(products, fill_value=0).astype(np.int64)
    if outcomes:
        sums = by_after[outcomes].sum()
        for column in outcomes:
            out[column] = sums[column]
    return out.reset_index()


def prepare_for_synthetic_control(data: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """The panel plus an int ``treatment`` column: 1 where ``enriched`` and ``date >=
    enrichment_start``, else 0 (all 0, with a warning, without ``enriched`` or a start date)."""
    out = data.copy()
    start_value = params.get("enrichment_start")
    if "enriched" not in out.columns or start_value is None or "date" not in out.columns:
        log.warning(
            "prepare_for_synthetic_control: no 'enriched' column, 'date' column or "
            "enrichment_start; the treatment column is all 0"
        )
        out["treatment"] = np.zeros(len(out), dtype=np.int64)
        return out
    start = pd.Timestamp(start_value)
    treated = (
        out["enriched"].astype(bool).to_numpy() & (pd.to_datetime(out["date"]) >= start).to_numpy()
    )
    out["treatment"] = treated.astype(np.int64)
    return out


register_transform("passthrough", passthrough)
register_transform(
    "aggregate_by_date", aggregate_by_date, {"metric": "revenue", "statistic": "sum"}
)
register_transform(
    "aggregate_for_approximation", aggregate_for_approximation, {"baseline_metric": "revenue"}
)
register_transform(
    "prepare_simulator_for_approximation",
    prepare_simulator_for_approximation,
    {"baseline_metric": "revenue", "enrichment_start": None},
    required=("enrichment_start",),
)
register_transform(
    "prepare_for_synthetic_control", prepare_for_synthetic_control, {"enrichment_start": None}
)
