"""The time axis of the time-series models (``interrupted_time_series``, ``synthetic_control``).

Both models name their time column with the parameter ``time_column`` (default ``date``). The
column may hold

* dates or datetimes (``datetime64`` values, ``date``/``datetime`` objects, or text such as
  ``2024-01-15`` / ``2024-01-15 08:00``), or
* integer periods (a year such as ``1989``, a month or week index ``1..N``), as integers or
  as floats with integral values (a CSV column with gaps reads as float).

The intervention/treatment time is given in the same type: a date for a date column, an integer
for a period column. A numeric column is **never** read as nanoseconds since 1970 (what
``pandas.to_datetime`` does with integers). A mismatch gives one message naming the column, the
parameter and an example of the right type.

:class:`TimeAxis` also turns the time values into a regular period index ``0, 1, 2, ...`` (the
``t`` of a segmented regression) and names the period (``day``, ``week``, ``month``,
``quarter``, ``year`` or ``period``), so that trends and effects are stated per period of the
data, not per day whatever the frequency.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from impact_assets.measure.models.base import ModelError

DATE_EXAMPLE = "2024-01-15"
PERIOD_EXAMPLE = "1989"


def _type_message(model: str, column: str, what: str) -> str:
    return (
        f"{model}: column {column!r} {what}; the time column must hold dates (e.g. "
        f"{DATE_EXAMPLE}), datetimes (e.g. {DATE_EXAMPLE} 08:00) or integer periods (e.g. "
        f"{PERIOD_EXAMPLE}, or a month index 1..N); name it with parameter 'time_column'"
    )


def time_param(params: Mapping[str, Any], key: str, model: str) -> int | pd.Timestamp:
    """An intervention/treatment time: an integer period, or a date/datetime (text or object).

    Whether it matches the time column's type is checked against the data
    (:meth:`TimeAxis.point`).
    """
    value = params.get(key)
    if value is None:
        raise ModelError(f"{model}: parameter {key!r} is required")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    bad = (
        f"must be a date (e.g. {DATE_EXAMPLE}), a datetime or an integer period (e.g. "
        f"{PERIOD_EXAMPLE}), in the type of the time column"
    )
    if isinstance(value, bool) or not isinstance(value, str | dt.date | pd.Timestamp):
        raise ModelError(f"{model}: parameter {key!r} {bad}, got {value!r}")
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError):
        raise ModelError(f"{model}: parameter {key!r} {bad}, got {value!r}") from None
    if pd.isna(stamp):
        raise ModelError(f"{model}: parameter {key!r} {bad}, got {value!r}")
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert(None)
    return stamp


def time_text(value: int | pd.Timestamp) -> str:
    """``1989`` or ``2024-01-15`` (or the full timestamp when it has a time of day)."""
    if isinstance(value, pd.Timestamp):
        return str(value.date()) if value == value.normalize() else str(value)
    return str(value)


@dataclass(frozen=True)
class TimeAxis:
    """A parsed time column: ``values`` (datetime64 or int64, one per row) and its kind."""

    column: str
    kind: str  # "date" or "period"
    values: np.ndarray

    @classmethod
    def parse(cls, data: pd.DataFrame, column: str, model: str) -> TimeAxis:
        """Parse ``data[column]``; raise :class:`ModelError` naming the column otherwise."""
        if column not in data.columns:
            available = ", ".join(map(str, data.columns))
            raise ModelError(
                f"{model}: column {column!r} (parameter 'time_column') not found in data. "
                f"Available columns: {available}"
            )
        series = data[column]
        n_missing = int(series.isna().sum())
        if n_missing:
            raise ModelError(
                f"{model}: column {column!r} has {n_missing} missing value(s) (NaN); "
                "every row needs a time"
            )
        if pd.api.types.is_bool_dtype(series):
            raise ModelError(_type_message(model, column, "holds booleans"))
        if pd.api.types.is_datetime64_any_dtype(series):
            values = pd.to_datetime(series)
            if getattr(values.dt, "tz", None) is not None:
                values = values.dt.tz_convert(None)
            return cls(column, "date", values.to_numpy(dtype="datetime64[ns]"))
        if pd.api.types.is_numeric_dtype(series):
            numbers = series.to_numpy(dtype=float)
            if not np.all(np.isfinite(numbers)) or not np.all(numbers == np.round(numbers)):
                example = next((v for v in numbers if v != round(v)), numbers[0])
                raise ModelError(
                    _type_message(model, column, f"holds non-integer numbers (e.g. {example!r})")
                )
            return cls(column, "period", numbers.astype(np.int64))
        # text or date objects
        sample = series.iloc[0]
        if isinstance(sample, str) and all(
            isinstance(v, str) and v.strip().lstrip("-").isdigit() for v in series
        ):
            return cls(column, "period", series.astype(str).str.strip().astype(np.int64).to_numpy())
        try:
            values = pd.to_datetime(series, format="mixed")
        except (TypeError, ValueError, OverflowError):
            raise ModelError(
                _type_message(model, column, f"does not parse as dates (e.g. {sample!r})")
            ) from None
        if getattr(values.dt, "tz", None) is not None:
            values = values.dt.tz_convert(None)
        return cls(column, "date", values.to_numpy(dtype="datetime64[ns]"))

    def point(self, value: int | pd.Timestamp, key: str, model: str) -> Any:
        """``value`` (a validated time parameter) as a value comparable with ``values``."""
        if self.kind == "period":
            if isinstance(value, pd.Timestamp):
                example = int(np.median(self.values))
                raise ModelError(
                    f"{model}: parameter {key!r} is a date ({time_text(value)}) but column "
                    f"{self.column!r} holds integer periods; give an integer period, e.g. "
                    f"{key}: {example}"
                )
            return np.int64(value)
        if not isinstance(value, pd.Timestamp):
            example = time_text(pd.Timestamp(np.sort(self.values)[len(self.values) // 2]))
            raise ModelError(
                f"{model}: parameter {key!r} is an integer ({value}) but column "
                f"{self.column!r} holds dates; give a date, e.g. {key}: '{example}'"
            )
        return np.datetime64(value.to_datetime64(), "ns")

    def label(self, value: Any) -> str:
        """Text of one time value of this axis."""
        if self.kind == "period":
            return str(int(value))
        return time_text(pd.Timestamp(value))

    def periods(self, unique_sorted: np.ndarray) -> tuple[np.ndarray, str]:
        """The period index (0 at the first value) of sorted unique times, and the period name.

        Integer periods: the values minus the first (one period = one unit of the column).
        Dates: the median spacing decides the period: 1 day, 7 days (weeks), 28-31 days
        (calendar months), 89-92 days (quarters), 365-366 days (years), counted on the calendar
        (``Period`` ordinals, so months of 28 to 31 days are one period each); any other spacing
        gives time in multiples of the median spacing.
        """
        if self.kind == "period":
            return (unique_sorted - unique_sorted[0]).astype(float), "period"
        index = pd.DatetimeIndex(unique_sorted)
        if index.size < 2:
            return np.zeros(index.size), "day"
        name, freq = None, None
        if name is None:
            step = float(np.median(np.diff(index.asi8))) / 86_400e9
            for low, high, period_name, period_freq in (
                (1, 1, "day", "D"),
                (7, 7, "week", "W"),
                (28, 31, "month", "M"),
                (89, 92, "quarter", "Q"),
                (365, 366, "year", "Y"),
            ):
                if low <= step <= high:
                    name, freq = period_name, period_freq
                    break
        if name is None:
            step = float(np.median(np.diff(index.asi8)))
            days = step / 86_400e9
            return (index.asi8 - index.asi8[0]) / step, f"{days:g} days"
        ordinals = index.to_period(freq).asi8
        return (ordinals - ordinals[0]).astype(float), name
