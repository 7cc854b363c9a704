"""The analysis unit of the cross-sectional models (matching, subclassification).

When ``unit_column`` (or, if that is not a column, ``product_id``) is a column that repeats,
e.g. a product-day panel over several days, the rows are **aggregated per unit**: the outcome
and numeric covariates become per-unit means (so the effect is "per row", e.g. revenue per
product-day, averaged over the window), categorical covariates take their first value, and the
treatment must be constant within a unit (use the unit-level ``enriched`` flag, not the
date-dependent ``treatment`` column). Otherwise each row is a unit. ``true_effect`` follows the same
aggregation, so estimate and truth refer to the same quantity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from impact_assets.measure.models._data import (
    binary_treatment,
    require_both_groups,
    require_columns,
    require_min_units,
    require_no_missing,
)
from impact_assets.measure.models.base import ModelError


@dataclass
class Units:
    """One row per analysis unit."""

    ids: np.ndarray
    treated: np.ndarray  # bool
    y: np.ndarray
    X: np.ndarray  # design matrix (numeric covariates, dummies of categorical ones)
    names: list[str]
    n_rows: int
    unit_column: str | None


def _is_categorical(series: pd.Series) -> bool:
    return not (pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series))


def _design(frame: pd.DataFrame, covariates: list[str]) -> tuple[np.ndarray, list[str]]:
    parts, names = [], []
    for column in covariates:
        series = frame[column]
        if _is_categorical(series):
            levels = sorted(series.astype(str).unique())
            for level in levels[1:]:
                parts.append((series.astype(str) == level).to_numpy(float))
                names.append(f"{column}[{level}]")
        else:
            parts.append(series.to_numpy(float))
            names.append(column)
    if not parts:
        return np.empty((len(frame), 0)), names
    return np.column_stack(parts), names


def aggregate_units(
    data: pd.DataFrame,
    model: str,
    *,
    treatment: str,
    covariates: list[str],
    outcome: str,
    unit_column: str | None,
    extra: tuple[str, ...] = (),
) -> tuple[pd.DataFrame, str | None]:
    """Per-unit frame (index = unit id) with treatment, outcome, covariates and ``extra``."""
    columns = list(dict.fromkeys([treatment, outcome, *covariates]))
    require_columns(data, columns, model)
    require_no_missing(data, columns, model)
    binary_treatment(data, treatment, model)
    unit = next((c for c in (unit_column, "product_id") if c and c in data.columns), None)
    if unit is None or not data[unit].duplicated().any():
        frame = data[columns + [c for c in extra if c in data.columns]].copy()
        frame.index = data[unit].astype(str) if unit else data.index.astype(str)
        return frame, unit
    require_no_missing(data, [unit], model)
    codes, labels = pd.factorize(data[unit], sort=True)
    counts = np.bincount(codes).astype(float)
    n_treated_rows = np.bincount(codes, weights=binary_treatment(data, treatment, model))
    if np.any((n_treated_rows > 0) & (n_treated_rows < counts)):
        raise ModelError(
            f"{model}: treatment column {treatment!r} varies within units of {unit!r}; use a "
            "unit-level indicator such as 'enriched' or restrict the window to the post period"
        )
    categorical = [c for c in columns if c != treatment and _is_categorical(data[c])]
    numeric = [c for c in columns if c not in categorical and c != treatment]
    numeric += [c for c in extra if c in data.columns and c not in numeric]
    _, first_rows = np.unique(codes, return_index=True)
    out = {treatment: data[treatment].to_numpy()[first_rows]}
    for column in categorical:
        out[column] = data[column].to_numpy()[first_rows]
    for column in numeric:
        values = data[column].to_numpy(dtype=float)
        out[column] = np.bincount(codes, weights=values) / counts
    frame = pd.DataFrame(out, index=pd.Index(np.asarray(labels).astype(str)))
    return frame, unit


def build_units(
    data: pd.DataFrame,
    model: str,
    *,
    treatment: str,
    covariates: list[str],
    outcome: str,
    unit_column: str | None,
) -> Units:
    """Validate and aggregate ``data`` into :class:`Units`."""
    frame, unit = aggregate_units(
        data,
        model,
        treatment=treatment,
        covariates=covariates,
        outcome=outcome,
        unit_column=unit_column,
    )
    y_series = frame[outcome]
    if not pd.api.types.is_numeric_dtype(y_series):
        raise ModelError(f"{model}: outcome column {outcome!r} must be numeric")
    treated = binary_treatment(frame, treatment, model)
    require_min_units(len(frame), "units", model)
    require_both_groups(treated, treatment, model)
    X, names = _design(frame, covariates)
    return Units(
        ids=frame.index.to_numpy(str),
        treated=treated,
        y=y_series.to_numpy(float),
        X=X,
        names=names,
        n_rows=len(data),
        unit_column=unit,
    )


def unit_effects(
    data: pd.DataFrame,
    model: str,
    *,
    treatment: str,
    covariates: list[str],
    outcome: str,
    unit_column: str | None,
) -> pd.DataFrame | None:
    """Per-unit true effects from the potential-outcome columns, or ``None`` without them.

    Columns: ``realized`` (mean of ``outcome - outcome_y0``; the effect the treated actually
    experienced) and ``potential`` (mean of ``outcome_y1 - outcome_y0``; the effect a control
    would have had). Same unit order as :func:`build_units`.
    """
    y0, y1 = f"{outcome}_y0", f"{outcome}_y1"
    if y0 not in data.columns:
        return None
    enriched = data.assign(
        _realized=data[outcome] - data[y0],
        _potential=(data[y1] - data[y0]) if y1 in data.columns else np.nan,
    )
    frame, _ = aggregate_units(
        enriched,
        model,
        treatment=treatment,
        covariates=covariates,
        outcome=outcome,
        unit_column=unit_column,
        extra=("_realized", "_potential"),
    )
    return frame[["_realized", "_potential"]].rename(
        columns={"_realized": "realized", "_potential": "potential"}
    )
