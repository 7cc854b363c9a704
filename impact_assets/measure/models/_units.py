"""The analysis unit of the cross-sectional models (matching, subclassification).

When ``unit_column`` (or, if that is not a column, ``product_id``) is a column that repeats,
e.g. a product-day panel over several days, the rows are **aggregated per unit**: the outcome
and numeric covariates become per-unit means (so the effect is "per row", e.g. revenue per
product-day, averaged over the window), categorical covariates take their first value, and the
treatment must be constant within a unit (use the unit-level ``enriched`` flag, not the
date-dependent ``treatment`` column). Otherwise each row is a unit. ``true_effect`` follows the same
aggregation, so estimate and truth refer to the same quantity.

Canonical order: the units are always put in one order that does not depend on the order of the
rows, so that the same data in any row order give the same result to the last bit: by unit id
(aggregated ids are sorted; unique ids are sorted too), or, without a unit column, by the row
contents (treatment, outcome, covariates, then the index). Every later step (standardization,
the propensity fit, nearest-neighbour searches, sums) then sees the same numbers in the same
order.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from impact_assets.measure.models._data import (
    binary_treatment,
    require_both_groups,
    require_columns,
    require_no_missing,
)
from impact_assets.measure.models.base import Model, ModelError, ModelFit

#: The fewest treated and the fewest control units a cross-sectional model fits: two in each
#: arm, the least for a within-arm variance (the contract's ``sample_size >= 30`` on the whole
#: sample is checked by MEASURE, not here).
MIN_PER_ARM = 2


def require_arm_minimum(
    treated: np.ndarray, column: str, model: str, what: str = "units"
) -> tuple[int, int]:
    """Raise unless ``treated`` holds at least :data:`MIN_PER_ARM` treated and control units;
    return ``(n_treated, n_control)``."""
    require_both_groups(treated, column, model)
    n_t = int(np.sum(treated))
    n_c = int(treated.size - n_t)
    if n_t < MIN_PER_ARM or n_c < MIN_PER_ARM:
        raise ModelError(
            f"{model}: treatment column {column!r} marks {n_t} treated and {n_c} control "
            f"{what}; the model needs at least {MIN_PER_ARM} of each"
        )
    return n_t, n_c


def require_numbers(data: pd.DataFrame, column: str, model: str, *, always: bool) -> None:
    """Raise when a text column holds numbers mixed with text (``always``: any text column).

    A CSV column of numbers with one stray word (``n/a``, ``12,5``) is read as text; as a
    covariate it would silently become one dummy per distinct value. A text column counts as
    numbers mixed with text when at least half of its values parse as numbers.
    """
    series = data[column]
    if not _is_categorical(series):
        return
    parsed = pd.to_numeric(series, errors="coerce")
    bad = parsed.isna()
    if not always and bad.mean() > 0.5:
        return  # a genuine categorical covariate
    first = bad.to_numpy().argmax()
    raise ModelError(
        f"{model}: column {column!r} must be numeric, but data row {first + 1} (header not "
        f"counted) holds {series.iloc[first]!r}, which is not a number "
        f"({int(bad.sum())} such value(s))"
    )


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


class UnitTable:
    """The per-unit aggregation of one dataset, validated once.

    ``frame()`` is the per-unit frame (index = unit id) of :func:`aggregate_units`, ``units()``
    the :class:`Units` of :func:`build_units` and ``effects()`` the frame of
    :func:`unit_effects`; a model that needs several of them (its fit and its true effect)
    builds the table once. The checks, and the errors they raise, are those of
    :func:`aggregate_units`, in the same order.
    """

    def __init__(
        self,
        data: pd.DataFrame,
        model: str,
        *,
        treatment: str,
        covariates: list[str],
        outcome: str,
        unit_column: str | None,
    ):
        columns = list(dict.fromkeys([treatment, outcome, *covariates]))
        require_columns(data, columns, model)
        require_no_missing(data, columns, model)
        treated_rows = binary_treatment(data, treatment, model)
        require_numbers(data, outcome, model, always=True)
        for column in covariates:
            require_numbers(data, column, model, always=False)
        self.data = data
        self.model = model
        self.treatment = treatment
        self.covariates = list(covariates)
        self.outcome = outcome
        self.columns = columns
        self.unit = next((c for c in (unit_column, "product_id") if c and c in data.columns), None)
        self.codes: np.ndarray | None = None  # None: every row is a unit
        self.order: np.ndarray | None = None  # canonical row order when every row is a unit
        if self.unit is None:
            self.order = _content_order(data, columns)
            return
        codes, labels = _factorize_sorted(data[self.unit])
        if codes is not None and (codes < 0).any():
            codes = None  # missing ids: decided (and reported) exactly as before
        if codes is None:
            if not data[self.unit].duplicated().any():
                self.order = _id_order(data[self.unit])
                return
            require_no_missing(data, [self.unit], model)
            codes, labels = pd.factorize(data[self.unit], sort=True)
        elif len(labels) == len(data):  # no id repeats: every row is a unit
            self.order = np.argsort(codes, kind="stable")
            return
        counts = np.bincount(codes).astype(float)
        n_treated_rows = np.bincount(codes, weights=treated_rows)
        if np.any((n_treated_rows > 0) & (n_treated_rows < counts)):
            raise ModelError(
                f"{model}: treatment column {treatment!r} varies within units of {self.unit!r}; "
                "use a unit-level indicator such as 'enriched' or restrict the window to the "
                "post period"
            )
        first_rows = np.full(len(labels), len(data))
        np.minimum.at(first_rows, codes, np.arange(len(data)))
        self.codes, self.labels = codes, labels
        self.counts, self.first_rows = counts, first_rows

    @property
    def n_units(self) -> int:
        """The number of analysis units (rows, or distinct unit ids when they repeat)."""
        return len(self.data) if self.codes is None else len(self.labels)

    def frame(self, extra: dict[str, pd.Series] | None = None) -> pd.DataFrame:
        """Per-unit frame with treatment, outcome, covariates and the ``extra`` columns (row
        values, aggregated like the numeric columns)."""
        data, extra = self.data, dict(extra or {})
        if self.codes is None:
            order = self.order
            frame = data[self.columns].iloc[order].copy()
            for name, values in extra.items():
                frame[name] = values.array.take(order)
            ids = data[self.unit] if self.unit else data.index.to_series()
            frame.index = pd.Index(ids.astype(str).to_numpy()[order])
            return frame
        columns, treatment = self.columns, self.treatment
        categorical = [c for c in columns if c != treatment and _is_categorical(data[c])]
        numeric = [c for c in columns if c not in categorical and c != treatment]
        first_rows = self.first_rows
        out = {treatment: data[treatment].to_numpy()[first_rows]}
        for column in categorical:
            out[column] = data[column].to_numpy()[first_rows]
        for column in numeric:
            out[column] = _unit_means(data[column], self.codes, self.counts)
        for name, values in extra.items():
            if name not in numeric:
                out[name] = _unit_means(values, self.codes, self.counts)
        return pd.DataFrame(out, index=pd.Index(np.asarray(self.labels).astype(str)))

    def units(self) -> Units:
        """Validated :class:`Units` (the checks of :func:`build_units`)."""
        model, treatment = self.model, self.treatment
        frame = self.frame()
        y_series = frame[self.outcome]
        if not pd.api.types.is_numeric_dtype(y_series):
            raise ModelError(f"{model}: outcome column {self.outcome!r} must be numeric")
        treated = binary_treatment(frame, treatment, model)
        require_arm_minimum(treated, treatment, model)
        X, names = _design(frame, self.covariates)
        return Units(
            ids=frame.index.to_numpy(str),
            treated=treated,
            y=y_series.to_numpy(float),
            X=X,
            names=names,
            n_rows=len(self.data),
            unit_column=self.unit,
        )

    def effects(self, realized: pd.Series, potential: pd.Series) -> pd.DataFrame:
        """Per-unit ``realized``/``potential`` effects (see :func:`unit_effects`): the two
        columns of ``frame({"_realized": realized, "_potential": potential})``, renamed, built
        without the rest of the frame."""
        data = self.data
        if self.codes is None:
            order = self.order
            ids = data[self.unit] if self.unit else data.index.to_series()
            columns = {
                "realized": realized.to_numpy(dtype=float)[order],
                "potential": potential.to_numpy(dtype=float)[order],
            }
            return pd.DataFrame(columns, index=pd.Index(ids.astype(str).to_numpy()[order]))
        return pd.DataFrame(
            {
                "realized": _unit_means(realized, self.codes, self.counts),
                "potential": _unit_means(potential, self.codes, self.counts),
            },
            index=pd.Index(np.asarray(self.labels).astype(str)),
        )


def _factorize_sorted(ids: pd.Series) -> tuple[np.ndarray | None, object]:
    """``pd.factorize(ids, sort=True)`` for ids that sort (``(None, None)`` otherwise)."""
    try:
        return pd.factorize(ids, sort=True)
    except TypeError:
        return None, None


def _sort_codes(values: pd.Series | pd.Index) -> np.ndarray:
    """Integer codes that sort like ``values`` (numbers by value, anything else as text)."""
    try:
        codes, _ = pd.factorize(values, sort=True)
    except TypeError:
        codes, _ = pd.factorize(pd.Index(values).astype(str), sort=True)
    return np.asarray(codes)


def _id_order(ids: pd.Series) -> np.ndarray:
    """Rows sorted by unique unit id (ids that do not sort among themselves: as text)."""
    return np.argsort(_sort_codes(ids), kind="stable")


def _content_order(data: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """Rows sorted by their contents in ``columns`` (first column first), then by index."""
    keys = [_sort_codes(data.index)]
    keys += [_sort_codes(data[c]) for c in reversed(columns)]
    return np.lexsort(keys)


def _unit_means(values: pd.Series, codes: np.ndarray, counts: np.ndarray) -> np.ndarray:
    return np.bincount(codes, weights=values.to_numpy(dtype=float)) / counts


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
    table = UnitTable(
        data,
        model,
        treatment=treatment,
        covariates=covariates,
        outcome=outcome,
        unit_column=unit_column,
    )
    present = [c for c in extra if c in data.columns and c not in table.columns]
    return table.frame({c: data[c] for c in dict.fromkeys(present)}), table.unit


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
    return UnitTable(
        data,
        model,
        treatment=treatment,
        covariates=covariates,
        outcome=outcome,
        unit_column=unit_column,
    ).units()


def effect_columns(data: pd.DataFrame, outcome: str) -> tuple[pd.Series, pd.Series] | None:
    """Row-level ``outcome - outcome_y0`` and ``outcome_y1 - outcome_y0`` (NaN without
    ``outcome_y1``), or ``None`` when the data carry no ``outcome_y0``."""
    y0, y1 = f"{outcome}_y0", f"{outcome}_y1"
    if y0 not in data.columns:
        return None
    realized = data[outcome] - data[y0]
    if y1 in data.columns:
        potential = data[y1] - data[y0]
    else:
        potential = pd.Series(np.full(len(data), np.nan), index=data.index)
    return realized, potential


def unit_effects(
    data: pd.DataFrame,
    model: str,
    *,
    treatment: str,
    covariates: list[str],
    outcome: str,
    unit_column: str | None,
    table: UnitTable | None = None,
) -> pd.DataFrame | None:
    """Per-unit true effects from the potential-outcome columns, or ``None`` without them.

    Columns: ``realized`` (mean of ``outcome - outcome_y0``; the effect the treated actually
    experienced) and ``potential`` (mean of ``outcome_y1 - outcome_y0``; the effect a control
    would have had). Same unit order as :func:`build_units`. ``table`` is the data's
    :class:`UnitTable` when the caller already built it.
    """
    columns = effect_columns(data, outcome)
    if columns is None:
        return None
    if table is None:
        table = UnitTable(
            data,
            model,
            treatment=treatment,
            covariates=covariates,
            outcome=outcome,
            unit_column=unit_column,
        )
    return table.effects(*columns)


class UnitCovariateModel(Model):
    """A model on per-unit data with a treatment, covariates and an outcome (matching,
    subclassification) that prepares the units once for both its fit and its true effect.

    Subclasses validate ``treatment_column``, ``covariate_columns``, ``dependent_variable`` and
    ``unit_column`` and give ``_prepare`` (returning an object with the ``table``), ``_fit`` and
    ``_true_effect``.
    """

    def _table(self, data: pd.DataFrame, params: Mapping[str, Any]) -> UnitTable:
        return UnitTable(
            data,
            self.name,
            treatment=params["treatment_column"],
            covariates=params["covariate_columns"],
            outcome=params["dependent_variable"],
            unit_column=params["unit_column"],
        )

    @abstractmethod
    def _prepare(self, table: UnitTable, params: Mapping[str, Any]) -> Any:
        """What the fit and the true effect share; has the ``table`` it was built from."""

    @abstractmethod
    def _fit(self, prepared: Any, params: Mapping[str, Any]) -> ModelFit: ...

    @abstractmethod
    def _true_effect(
        self, prepared: Any, effects: pd.DataFrame, params: Mapping[str, Any]
    ) -> float | None: ...

    def sample_size(self, data: pd.DataFrame, params: Mapping[str, Any]) -> int:
        """Independent observations the inference rests on: the analysis units (treated plus
        control; rows, or distinct ``unit_column`` values when they repeat)."""
        return self._table(data, params).n_units

    def check_minimum(self, data: pd.DataFrame, params: Mapping[str, Any]) -> None:
        """Raise :class:`ModelError` unless the data hold at least :data:`MIN_PER_ARM` treated
        and control units (and the columns the model needs), naming the field and the counts."""
        self._table(data, params).units()

    def fit(self, data: pd.DataFrame, params: Mapping[str, Any]) -> ModelFit:
        return self._fit(self._prepare(self._table(data, params), params), params)

    def true_effect(self, data: pd.DataFrame, params: Mapping[str, Any]) -> float | None:
        columns = effect_columns(data, params["dependent_variable"])
        if columns is None:
            return None
        table = self._table(data, params)
        return self._true_effect(self._prepare(table, params), table.effects(*columns), params)

    def fit_and_true_effect(
        self, data: pd.DataFrame, params: Mapping[str, Any], *, simulated: bool
    ) -> tuple[ModelFit, float | None]:
        prepared = self._prepare(self._table(data, params), params)
        fit = self._fit(prepared, params)
        columns = effect_columns(data, params["dependent_variable"]) if simulated else None
        if columns is None:
            return fit, None
        return fit, self._true_effect(prepared, prepared.table.effects(*columns), params)
