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

from impact_assets.measure.grouped import Grouping

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
    dates = pd.to_datetime(data["date"])
    columns = [c for c in data.columns if c != "date"]
    bools = [c for c in columns if pd.api.types.is_bool_dtype(data[c])]
    numeric = [c for c in columns if c not in bools and pd.api.types.is_numeric_dtype(data[c])]
    summed = [c for c in numeric if c not in MEAN_COLUMNS]
    averaged = [c for c in numeric if c in MEAN_COLUMNS]
    # Grouped by the date codes (sorted, factorized once), without copying the data: the same
    # groups, rows and order as grouping a copy with a parsed "date" column by name. Missing
    # dates (code -1) are left to that slower path, which drops them.
    codes, uniques = pd.factorize(dates.array, sort=True)
    if (codes < 0).any():
        grouped = data.groupby(dates.array, sort=True)
    else:
        grouped = data.groupby(codes, sort=True)
    parts = []
    if statistic == "mean" and summed and averaged:  # one pass; each column is reduced alone
        parts.append(grouped[summed + averaged].mean())
    else:
        if summed:
            parts.append(grouped[summed].sum() if statistic == "sum" else grouped[summed].mean())
        if averaged:
            parts.append(grouped[averaged].mean())
    if (codes < 0).any():
        if bools:
            counts = grouped[bools].sum().astype(np.int64)
            counts.columns = [f"n_{c}" for c in bools]
            parts.append(counts)
        parts.append(grouped.size().rename("n_rows").astype(np.int64).to_frame())
        return pd.concat(parts, axis=1).rename_axis("date").reset_index()
    index = pd.RangeIndex(len(uniques))
    for column in bools:
        values = data[column]
        if isinstance(values.dtype, np.dtype):  # numpy bools: exact counts
            count = np.bincount(codes, weights=values.to_numpy(), minlength=len(uniques))
        else:  # nullable booleans: pandas skips the missing values
            count = values.groupby(codes, sort=True).sum().to_numpy()
        parts.append(pd.DataFrame({f"n_{column}": count.astype(np.int64)}, index=index))
    sizes = np.bincount(codes, minlength=len(uniques)).astype(np.int64)
    parts.append(pd.DataFrame({"n_rows": sizes}, index=index))
    out = pd.concat(parts, axis=1) if len(parts) > 1 else parts[0]
    out.index = index
    out.insert(0, "date", uniques)
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
    outcomes = potential_outcome_columns(frame)
    if metric == "product_id" or not _string_ids(frame["product_id"]):
        return _approximation_by_labels(frame, metric, before_mask, after_mask, outcomes)

    # Grouped by integer codes of the sorted ids, factorized once (measure.grouped gives the
    # sums, means and first values pandas' groupby gives); each result is relabelled with its
    # ids and assigned with the usual index alignment (NaN for a product absent from a period).
    codes, uniques = pd.factorize(frame["product_id"], sort=True)
    products = pd.Index(np.asarray(uniques, dtype=object), name="product_id")
    groups = Grouping(codes)

    def by_product(mask: np.ndarray, columns: list[str], how: str) -> pd.DataFrame:
        result = groups.reduce(frame, columns, how, mask)
        return result.set_axis(products.take(result.index.to_numpy()), axis=0)

    def counts(mask: np.ndarray) -> np.ndarray:
        return np.bincount(codes[mask], minlength=len(products)).astype(np.int64)

    out = pd.DataFrame(index=products)
    quality_before = by_product(before_mask, ["quality_score"], "mean")["quality_score"]
    quality_after = by_product(after_mask, ["quality_score"], "mean")["quality_score"]
    # rounded so that a constant quality gives exactly delta 0 (no float residue from the mean)
    out["quality_before"] = quality_before.round(9)
    out["quality_after"] = quality_after.round(9)
    out["baseline_sales"] = by_product(before_mask, [metric], "sum")[metric]
    attributes = [
        c for c in ("category", "price", "enriched") if c in frame.columns and c != metric
    ]
    if attributes:
        if frame["date"].is_monotonic_increasing:  # a stable sort would leave every row in place
            firsts = groups.first(frame, attributes)
        else:
            order = (
                pd.Series(frame["date"].array, index=np.arange(len(frame)))
                .sort_values(kind="stable")
                .index.to_numpy()
            )
            firsts = Grouping(codes[order]).first(frame.take(order), attributes)
        firsts = firsts.set_axis(products.take(firsts.index.to_numpy()), axis=0)
        for column in attributes:
            out[column] = firsts[column]
    out["n_days_before"] = counts(before_mask)
    out["n_days_after"] = counts(after_mask)
    if outcomes:
        sums = by_product(after_mask, outcomes, "sum")
        for column in outcomes:
            out[column] = sums[column]
    return out.reset_index()


def _string_ids(ids: pd.Series) -> bool:
    """Whether ``ids`` holds only strings (so grouping by value and by ``str`` label agree)."""
    if isinstance(ids.dtype, pd.StringDtype):
        return not ids.isna().any()
    return ids.dtype == object and pd.api.types.infer_dtype(ids, skipna=False) == "string"


def _approximation_by_labels(
    frame: pd.DataFrame,
    metric: str,
    before_mask: np.ndarray,
    after_mask: np.ndarray,
    outcomes: list[str],
) -> pd.DataFrame:
    """``prepare_simulator_for_approximation`` for ids that are not all strings: grouped by the
    raw ids, aligned on their ``str`` labels."""
    before = frame[before_mask]
    after = frame[after_mask]
    by_before = before.groupby("product_id", sort=True)
    by_after = after.groupby("product_id", sort=True)
    products = pd.Index(np.unique(frame["product_id"].astype(str).to_numpy()), name="product_id")
    out = pd.DataFrame(index=products)
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
    out = data.copy(deep=False)  # a shallow copy: adding a column leaves ``data`` untouched
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
