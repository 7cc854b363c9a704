"""Grouped ``sum``/``mean``/``first`` that give exactly pandas' results, with less overhead.

``frame.groupby(key).sum()`` costs about a millisecond per call in pandas whatever the data
size (factorizing the key, sorting, building the result), which dominates the transforms on
pilot-sized panels. A :class:`Grouping` numbers the groups once (``codes``: one non-negative
integer per row) and reduces with numpy:

* float64 sums and means follow pandas' own algorithm, Kahan-compensated summation over each
  group's rows in row order (``pandas._libs.groupby.group_sum``/``group_mean``), vectorized
  across groups, so every float is bit-for-bit the one pandas computes (rows already sorted by
  group, where pandas >= 3.1 sums with ``ufunc.reduceat`` instead, are left to pandas);
* int64 sums are exact integer sums, as in pandas;
* ``first`` takes each group's first row when the columns have no missing values.

Anything else (other dtypes, missing values for ``first``, very large groups, where the loop
over positions within a group would be slow) is handed to pandas, so the result never differs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Groups with more rows than this are reduced by pandas (the numpy loop runs once per row of
#: the largest group).
MAX_GROUP_SIZE = 1024
#: Larger than any sum of finite float64 magnitudes that cannot overflow.
_SAFE_TOTAL = 1e300


def _kahan(values: np.ndarray, counts: np.ndarray, starts: np.ndarray, mean: bool):
    """Per-group Kahan sums and non-NaN counts of ``values`` (rows grouped contiguously, each
    group's rows in row order), column by column, as pandas' ``group_sum``/``group_mean``."""
    n_groups, k = counts.size, values.shape[1]
    sums = np.zeros((n_groups, k))
    comp = np.zeros((n_groups, k))
    longest = int(counts.max(initial=0))
    with np.errstate(all="ignore"):
        simple = bool(np.isfinite(values).all()) and float(np.abs(values).sum()) < _SAFE_TOTAL
    if simple and longest and counts.min() == longest:
        # Every group has the same number of rows and no value is missing, infinite or large
        # enough to overflow: plain Kahan steps on (group, column) blocks.
        blocks = values.reshape(n_groups, longest, k)
        for position in range(longest):
            y = blocks[:, position, :] - comp
            t = sums + y
            np.subtract(t, sums, out=comp)
            comp -= y
            sums = t
        return sums, np.broadcast_to(counts[:, None], (n_groups, k))
    nobs = np.zeros((n_groups, k), dtype=np.int64)
    with np.errstate(invalid="ignore", over="ignore"):
        for position in range(longest):
            groups = np.flatnonzero(counts > position)
            value = values[starts[groups] + position]
            present = ~np.isnan(value)
            old_sum = sums[groups]
            old_comp = comp[groups]
            y = value - old_comp
            t = old_sum + y
            new_comp = (t - old_sum) - y
            # pandas resets a compensation that stopped being a number (infinite values)
            new_comp[np.isnan(new_comp) if mean else ~np.isfinite(new_comp)] = 0.0
            sums[groups] = np.where(present, t, old_sum)
            comp[groups] = np.where(present, new_comp, old_comp)
            nobs[groups] += present
    return sums, nobs


class Grouping:
    """Rows numbered by group: ``codes[i] >= 0`` is the group of row ``i``.

    Reductions match ``frame.loc[mask, columns].groupby(codes[mask], sort=True).<how>()``:
    the same values, dtypes, and index (the observed codes, ascending).
    """

    def __init__(self, codes: np.ndarray):
        self.codes = np.asarray(codes)
        if self.codes.ndim != 1 or not np.issubdtype(self.codes.dtype, np.integer):
            raise ValueError("codes must be a 1-d integer array")
        if self.codes.size and int(self.codes.min()) < 0:
            raise ValueError("codes must be >= 0 (drop rows without a group first)")
        self.valid = self.codes.size > 0
        self.n_groups = int(self.codes.max()) + 1 if self.valid else 0
        if self.valid:
            # a stable sort lists each group's rows in row order (radix sort for small codes)
            small = self.n_groups <= np.iinfo(np.uint16).max
            keys = self.codes.astype(np.uint16) if small else self.codes
            self.order = np.argsort(keys, kind="stable")

    def _rows(self, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Row numbers grouped by code (stable), and the row count of every code."""
        if mask is None:
            order = self.order
        else:
            mask = np.asarray(mask, dtype=bool)
            order = self.order[mask[self.order]]
        return order, np.bincount(self.codes[order], minlength=self.n_groups)

    def _monotonic(self, mask: np.ndarray | None) -> bool:
        """Whether the (selected) codes never decrease: pandas then sums sorted segments with
        ``ufunc.reduceat`` instead of its Kahan loop (pandas >= 3.1, columns without NaN), so
        such groupings are left to pandas."""
        keys = self.codes if mask is None else self.codes[mask]
        return bool(np.all(keys[1:] >= keys[:-1]))

    def _pandas(self, frame, columns, mask, how):
        selected = frame[columns] if mask is None else frame.loc[mask, columns]
        keys = self.codes if mask is None else self.codes[mask]
        return getattr(selected.groupby(keys, sort=True), how)()

    def reduce(
        self,
        frame: pd.DataFrame,
        columns: list[str],
        how: str,
        mask: np.ndarray | None = None,
    ) -> pd.DataFrame:
        """Grouped ``sum`` or ``mean`` of ``columns`` over the rows in ``mask`` (all rows when
        ``None``)."""
        if how not in ("sum", "mean"):
            raise ValueError(f"how must be 'sum' or 'mean', got {how!r}")
        if len(frame) != self.codes.size:
            raise ValueError(f"frame has {len(frame)} rows, the grouping {self.codes.size}")
        dtypes = [frame[c].dtype for c in columns]
        plain = all(
            isinstance(d, np.dtype) and (d == np.float64 or (how == "sum" and d == np.int64))
            for d in dtypes
        )
        if not (plain and self.valid and columns and len(set(columns)) == len(columns)):
            return self._pandas(frame, columns, mask, how)
        order, counts = self._rows(mask)
        if order.size == 0 or counts.max() > MAX_GROUP_SIZE or self._monotonic(mask):
            return self._pandas(frame, columns, mask, how)
        observed = np.flatnonzero(counts)
        starts = np.cumsum(counts) - counts
        result: dict[str, np.ndarray] = {}
        floats = [c for c, d in zip(columns, dtypes, strict=True) if d == np.float64]
        if floats:
            values = np.column_stack([frame[c].to_numpy()[order] for c in floats])
            compact = counts[observed]  # empty groups hold no rows: drop them from the loop
            sums, nobs = _kahan(values, compact, np.cumsum(compact) - compact, how == "mean")
            if how == "mean":
                with np.errstate(invalid="ignore", divide="ignore"):
                    sums = np.where(nobs > 0, sums / nobs, np.nan)
            for j, column in enumerate(floats):
                result[column] = sums[:, j]
        for column, dtype in zip(columns, dtypes, strict=True):
            if dtype == np.int64:
                result[column] = np.add.reduceat(frame[column].to_numpy()[order], starts[observed])
        return pd.DataFrame({c: result[c] for c in columns}, index=pd.Index(observed))

    def first(self, frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
        """``frame[columns].groupby(codes, sort=True).first()``: each group's first row (pandas
        itself when a column has missing values, which ``first`` skips)."""
        if len(frame) != self.codes.size:
            raise ValueError(f"frame has {len(frame)} rows, the grouping {self.codes.size}")
        plain = all(
            (isinstance(d, np.dtype) and d.kind != "O") or isinstance(d, pd.StringDtype)
            for d in (frame[c].dtype for c in columns)
        )
        simple = plain and self.valid and columns and len(set(columns)) == len(columns)
        if not simple or any(frame[c].isna().any() for c in columns):
            return frame[columns].groupby(self.codes, sort=True).first()
        counts = np.bincount(self.codes, minlength=self.n_groups)
        observed = np.flatnonzero(counts)
        first_rows = self.order[(np.cumsum(counts) - counts)[observed]]
        return pd.DataFrame(
            {c: frame[c].take(first_rows).array for c in columns}, index=pd.Index(observed)
        )
