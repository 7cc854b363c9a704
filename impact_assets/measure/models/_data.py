"""Data checks shared by the models.

Policy for missing values (all statistical models): a NaN in the outcome, the treatment or a
covariate is an error naming the column and the number of missing values. We never drop rows
silently, because dropping changes the estimand. ``metrics_approximation`` is the documented
exception: it drops incomplete rows and reports them (upstream behaviour).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from impact_assets.measure.models.base import ModelError

#: The smallest number of units (rows, dates or products, per model) a statistical model fits.
MIN_UNITS = 30


def require_columns(data: pd.DataFrame, columns: Iterable[str], model: str) -> None:
    """Raise if ``data`` is not a non-empty DataFrame holding ``columns``."""
    if not isinstance(data, pd.DataFrame):
        raise ModelError(f"{model}: data must be a pandas DataFrame, got {type(data).__name__}")
    if data.empty:
        raise ModelError(f"{model}: data are empty")
    for column in columns:
        if column not in data.columns:
            available = ", ".join(map(str, data.columns))
            raise ModelError(
                f"{model}: column {column!r} not found in data. Available columns: {available}"
            )


def _may_hold_missing(series: pd.Series) -> bool:
    """False when ``series`` certainly holds no missing value (checked without ``isna``)."""
    dtype = getattr(series, "dtype", None)  # a DataFrame (repeated column name) has none
    if isinstance(dtype, np.dtype):
        if dtype.kind in "biu":  # numpy integers and bools have no missing value
            return False
        if dtype.kind == "f":
            return bool(np.isnan(series.to_numpy()).any())
        if dtype.kind in "mM":
            return bool(np.isnat(series.to_numpy()).any())
    return True


def require_no_missing(data: pd.DataFrame, columns: Iterable[str], model: str) -> None:
    """Raise naming the first column of ``columns`` that holds missing values."""
    for column in columns:
        series = data[column]
        if not _may_hold_missing(series):
            continue
        n_missing = int(series.isna().sum())
        if n_missing:
            raise ModelError(
                f"{model}: column {column!r} has {n_missing} missing value(s) (NaN); "
                "remove or impute them before measuring"
            )


def numeric_column(data: pd.DataFrame, column: str, model: str) -> np.ndarray:
    """``data[column]`` as float, raising if it is not numeric (bool counts as numeric)."""
    series = data[column]
    if not (pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)):
        raise ModelError(f"{model}: column {column!r} must be numeric, got dtype {series.dtype}")
    values = series.to_numpy(dtype=float, na_value=np.nan)
    if not np.all(np.isfinite(values)):
        raise ModelError(f"{model}: column {column!r} has missing or infinite values")
    return values


def binary_treatment(data: pd.DataFrame, column: str, model: str) -> np.ndarray:
    """The treatment column as a bool array; it must be bool or 0/1."""
    series = data[column]
    require_no_missing(data, [column], model)
    if pd.api.types.is_bool_dtype(series):
        return series.to_numpy(dtype=bool)
    if pd.api.types.is_numeric_dtype(series):
        values = series.to_numpy(dtype=float)
        if np.isin(values, (0.0, 1.0)).all():
            return values == 1.0
    raise ModelError(f"{model}: treatment column {column!r} must be boolean or 0/1")


def require_both_groups(treated: np.ndarray, column: str, model: str) -> None:
    """Raise when the treatment is constant (no treated or no control units)."""
    n_treated = int(np.sum(treated))
    if n_treated == 0 or n_treated == treated.size:
        kind = "no treated" if n_treated == 0 else "no control"
        raise ModelError(
            f"{model}: treatment column {column!r} is constant ({kind} units); "
            "a treatment effect needs both treated and control units"
        )


def require_min_units(n_units: int, what: str, model: str) -> None:
    """Raise when fewer than :data:`MIN_UNITS` units are available."""
    if n_units < MIN_UNITS:
        raise ModelError(
            f"{model}: needs at least {MIN_UNITS} {what}, got {n_units}; "
            "the sample is too small for reliable inference"
        )


def normal_p_value(estimate: float, standard_error: float) -> float | None:
    """Two-sided normal p-value; ``None`` when the standard error is not positive and finite."""
    if not np.isfinite(standard_error) or standard_error <= 0:
        return None
    from scipy import stats  # lazy: see models/__init__

    return float(2.0 * stats.norm.sf(abs(estimate) / standard_error))


def normal_interval(
    estimate: float, standard_error: float, level: float = 0.95
) -> tuple[float | None, float | None]:
    """Symmetric normal CI; ``(None, None)`` when the standard error is unusable."""
    if not np.isfinite(standard_error) or standard_error <= 0:
        return None, None
    from scipy import stats  # lazy: see models/__init__

    half = float(stats.norm.ppf(0.5 + level / 2.0)) * standard_error
    return float(estimate - half), float(estimate + half)
