"""Parameter checks shared by the models.

Every helper reads one key of the merged ``MEASUREMENT.PARAMS`` and raises :class:`ModelError`
with a message that names the model and the parameter, e.g.
``"nearest_neighbour_matching: parameter 'caliper' must be a positive number, got -1"``.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from impact_assets.measure.models.base import ModelError


def param_error(model: str, key: str, requirement: str, value: Any) -> ModelError:
    """Build the standard message for a bad parameter value."""
    return ModelError(f"{model}: parameter {key!r} {requirement}, got {value!r}")


def get_str(
    params: Mapping[str, Any],
    key: str,
    model: str,
    *,
    default: str | None = None,
    required: bool = False,
) -> str | None:
    """A non-empty string, ``default`` when absent or ``None``."""
    value = params.get(key)
    if value is None:
        if required and default is None:
            raise ModelError(f"{model}: parameter {key!r} is required")
        return default
    if not isinstance(value, str) or not value.strip():
        raise param_error(model, key, "must be a non-empty string", value)
    return value.strip()


def get_bool(params: Mapping[str, Any], key: str, model: str, *, default: bool) -> bool:
    """A real boolean (``true``/``false`` in YAML); ``default`` when absent or ``None``."""
    value = params.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise param_error(model, key, "must be true or false", value)
    return value


def get_int(
    params: Mapping[str, Any], key: str, model: str, *, default: int | None, minimum: int = 1
) -> int | None:
    """An integer ``>= minimum`` (a float with an integral value is accepted)."""
    value = params.get(key)
    if value is None:
        return default
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise param_error(model, key, f"must be {what}", value)
    return value


def get_positive_number(
    params: Mapping[str, Any], key: str, model: str, *, default: float | None
) -> float | None:
    """A finite number ``> 0``."""
    value = params.get(key)
    if value is None:
        return default
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise param_error(model, key, "must be a positive number", value)
    return float(value)


def get_choice(
    params: Mapping[str, Any], key: str, model: str, *, choices: Sequence[str], default: str
) -> str:
    """One of ``choices`` (case-insensitive)."""
    value = params.get(key)
    if value is None:
        return default
    if isinstance(value, str) and value.strip().lower() in choices:
        return value.strip().lower()
    options = ", ".join(repr(c) for c in choices)
    raise param_error(model, key, f"must be one of {options}", value)


def get_str_list(
    params: Mapping[str, Any], key: str, model: str, *, required: bool = False
) -> list[str] | None:
    """A list of column names; a single string becomes a one-item list."""
    value = params.get(key)
    if value is None:
        if required:
            raise ModelError(f"{model}: parameter {key!r} is required")
        return None
    if isinstance(value, str):
        value = [value]
    if (
        not isinstance(value, list | tuple)
        or not value
        or not all(isinstance(v, str) and v.strip() for v in value)
    ):
        raise param_error(model, key, "must be a column name or a non-empty list of them", value)
    names = [v.strip() for v in value]
    if len(set(names)) != len(names):
        raise param_error(model, key, "must not repeat a column", value)
    return names


def get_timestamp(
    params: Mapping[str, Any], key: str, model: str, *, required: bool = True
) -> pd.Timestamp | None:
    """A date given as ``YYYY-MM-DD`` text, a ``date``/``datetime`` or a ``Timestamp``."""
    value = params.get(key)
    if value is None:
        if required:
            raise ModelError(f"{model}: parameter {key!r} is required")
        return None
    if isinstance(value, bool) or not isinstance(value, str | dt.date | pd.Timestamp):
        raise param_error(model, key, "must be a date (YYYY-MM-DD)", value)
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError):
        raise param_error(model, key, "must be a date (YYYY-MM-DD)", value) from None
    if pd.isna(stamp):
        raise param_error(model, key, "must be a date (YYYY-MM-DD)", value)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert(None)
    return stamp
