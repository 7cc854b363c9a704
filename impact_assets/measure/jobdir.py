"""Job directories with atomic writes and a manifest written last.

A run's job directory is ``{storage_root}/{initiative_id}/{phase}/``. Its files are written into a
fresh hidden temp directory beside it (``.{phase}.tmp-<hex>``); ``manifest.json`` is written
last; then the temp directory replaces the job directory with renames. An earlier run's
directory is moved aside and deleted only after the swap, so a crash leaves either the old
complete directory, or the new complete one, never a mixture, and a directory without
``manifest.json`` is never a finished result.

JSON is strict: NaN and infinities become ``null``, numpy scalars plain numbers, floats are
rounded to 12 significant digits (stable text across processes and BLAS builds), keys sorted.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import functools
import json
import os
import shutil
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from impact_assets import config, contracts

#: Initiative ids become directory names (the pipeline manifest's rule).
INITIATIVE_ID_PATTERN = config.INITIATIVE_ID_PATTERN
SCHEMA_VERSION = "2.0"
FLOAT_DIGITS = 12
#: libyaml's dumper when available (several times faster), else the pure-Python one.
_YAML_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
#: Binary mode on platforms that distinguish it (Windows); 0 elsewhere.
_O_BINARY = getattr(os, "O_BINARY", 0)
#: Leftover temp/old directories older than this are removed by later runs of the same job.
STALE_SECONDS = 3600.0


def validate_initiative_id(initiative_id: Any) -> str:
    """Return ``initiative_id`` if it is a safe directory name, else raise ``ValueError``."""
    if not isinstance(initiative_id, str) or not INITIATIVE_ID_PATTERN.fullmatch(initiative_id):
        raise ValueError(
            f"invalid initiative_id {initiative_id!r}: ids must match "
            "[A-Za-z0-9][A-Za-z0-9_-]{0,63} (they become directory names)"
        )
    return initiative_id


def round_float(value: float) -> float:
    return float(f"{value:.{FLOAT_DIGITS}g}")


def json_safe(value: Any) -> Any:
    """:func:`impact_assets.contracts.json_safe` with floats rounded to :data:`FLOAT_DIGITS`."""
    return contracts.json_safe(value, FLOAT_DIGITS)


def dumps_json(value: Any) -> str:
    """Strict, sorted, indented JSON text of ``json_safe(value)`` with a final newline."""
    return (
        json.dumps(json_safe(value), sort_keys=True, indent=2, allow_nan=False, ensure_ascii=False)
        + "\n"
    )


#: Arrow schemas (with the pandas metadata) of the frame layouts written so far, keyed by the
#: column names and dtypes; the metadata depends only on those, not on the values.
_SCHEMA_CACHE: dict[tuple, Any] = {}
_SCHEMA_CACHE_SIZE = 256


def _plain_column(values: np.ndarray, kind: str) -> bool:
    """Whether a numpy column converts to Arrow without the pandas null rules (no NaN/NaT)."""
    if kind == "f":
        return not np.isnan(values).any()
    if kind == "M":
        return not np.isnat(values).any()
    return kind in "biu"


def arrow_table(frame: pd.DataFrame):
    """``pa.Table.from_pandas(frame, preserve_index=False)``, built column by column.

    The same table (types, values, nulls and pandas metadata) without the per-column cost of
    the pandas conversion layer: numpy columns without missing values are wrapped zero-copy,
    Arrow-backed string columns hand over their Arrow data, and the schema (with its pandas
    metadata) is computed once per column layout from the first row. Any other layout (object
    or categorical columns, timezones, an empty frame, ``attrs``, ...) goes through
    ``from_pandas``.
    """
    import pyarrow as pa

    columns = frame.columns
    plain_layout = len(frame) and not frame.attrs and columns.is_unique
    if not plain_layout or not all(isinstance(c, str) for c in columns):
        return pa.Table.from_pandas(frame, preserve_index=False, nthreads=1)
    dtypes = tuple(frame.dtypes)
    for dtype in dtypes:
        if isinstance(dtype, np.dtype):
            if dtype.kind not in "biufM" or (dtype.kind == "M" and dtype.str[-3:] != "ns]"):
                return pa.Table.from_pandas(frame, preserve_index=False, nthreads=1)
        elif not (isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow"):
            return pa.Table.from_pandas(frame, preserve_index=False, nthreads=1)
    key = (tuple(columns), dtypes, str(columns.dtype), columns.name)
    schema = _SCHEMA_CACHE.get(key)
    if schema is None:
        schema = pa.Table.from_pandas(frame.iloc[:1], preserve_index=False, nthreads=1).schema
        if len(_SCHEMA_CACHE) >= _SCHEMA_CACHE_SIZE:
            _SCHEMA_CACHE.clear()
        _SCHEMA_CACHE[key] = schema
    arrays = []
    for field, (_, series) in zip(schema, frame.items(), strict=True):
        if isinstance(series.dtype, np.dtype):
            values = series.to_numpy()
            plain = _plain_column(values, values.dtype.kind)
            arrays.append(pa.array(values, type=field.type, from_pandas=not plain))
        else:
            arrays.append(pa.array(series.array, type=field.type, from_pandas=True))
    return pa.Table.from_arrays(arrays, schema=schema)


def dumps_yaml(value: Any) -> str:
    """Block-style YAML text of ``json_safe(value)``, keys sorted.

    Memoized on the value's JSON text (cheap to compute): a pilot and its scale run write the
    same resolved config, and YAML's representer is the slow part.
    """
    return _yaml_from_json(json.dumps(json_safe(value), sort_keys=True, allow_nan=False))


@functools.lru_cache(maxsize=256)
def _yaml_from_json(text: str) -> str:
    # json_safe values hold only str/int/float/bool/None/list/dict: the JSON round trip is exact
    return yaml.dump(json.loads(text), Dumper=_YAML_DUMPER, sort_keys=True, allow_unicode=True)


def _arrow_safe(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    out.columns = [str(c) for c in out.columns]
    for column in out.columns:
        if out[column].dtype == object:
            out[column] = out[column].map(lambda v: None if v is None else str(v))
    return out


def parquet_options(schema) -> dict[str, Any]:
    """``pq.write_table`` settings for the job directory files (chosen by measurement).

    Snappy compression (the default) and dictionary encoding, except for integer columns, which
    use ``DELTA_BINARY_PACKED`` (as small, and cheaper to encode than a dictionary). No column
    statistics: nothing reads these files with predicate push-down, and computing them cost
    about a sixth of the write. The values, types and pandas metadata read back unchanged.
    """
    import pyarrow as pa

    integers = [f.name for f in schema if pa.types.is_integer(f.type)]
    options: dict[str, Any] = {"write_statistics": False}
    if integers:
        options["use_dictionary"] = [f.name for f in schema if f.name not in set(integers)]
        options["column_encoding"] = dict.fromkeys(integers, "DELTA_BINARY_PACKED")
    return options


class JobDir:
    """One run's job directory, built in a temp directory and swapped in by :meth:`commit`.

    Use as a context manager: an exception inside the block removes the temp directory and
    leaves any earlier result untouched.
    """

    def __init__(self, storage_root: Path | str, initiative_id: str, phase: str):
        validate_initiative_id(initiative_id)
        if phase not in ("pilot", "scale"):
            raise ValueError(f"phase must be 'pilot' or 'scale', got {phase!r}")
        self.initiative_id = initiative_id
        self.phase = phase
        self.parent = Path(storage_root) / initiative_id
        self.final = self.parent / phase
        self.parent.mkdir(parents=True, exist_ok=True)
        self._clean_stale()
        self.tmp = self.parent / f".{phase}.tmp-{uuid.uuid4().hex}"
        self.tmp.mkdir()
        self.files: dict[str, dict[str, str]] = {}
        self.committed = False

    # -- context manager
    def __enter__(self) -> JobDir:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if not self.committed:
            self.abort()

    # -- writing
    def _write_bytes(self, filename: str, payload: Any) -> Path:
        """Create ``filename`` in the temp directory holding ``payload`` (bytes or any buffer).

        No per-file ``.part`` rename: nothing reads the hidden temp directory, which becomes
        the job directory only once complete (:meth:`commit`).
        """
        target = self.tmp / filename
        view = memoryview(payload).cast("B")
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _O_BINARY, 0o666)
        try:
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        return target

    def write_json(self, key: str, filename: str, value: Any) -> None:
        self._write_bytes(filename, dumps_json(value).encode("utf-8"))
        self.files[key] = {"path": filename, "format": "json"}

    def write_yaml(self, key: str, filename: str, value: Any) -> None:
        text = dumps_yaml(value)
        self._write_bytes(filename, text.encode("utf-8"))
        self.files[key] = {"path": filename, "format": "yaml"}

    def write_parquet(self, key: str, filename: str, frame: pd.DataFrame) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            table = arrow_table(frame)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError):
            # one thread: cheaper for small frames, and no pool contention across runs
            table = pa.Table.from_pandas(_arrow_safe(frame), preserve_index=False, nthreads=1)
        buffer = pa.BufferOutputStream()
        pq.write_table(table, buffer, **parquet_options(table.schema))
        self._write_bytes(filename, buffer.getvalue())
        self.files[key] = {"path": filename, "format": "parquet"}

    def alias(self, key: str, existing_key: str) -> None:
        """Index ``key`` in the manifest as the file already written under ``existing_key``."""
        self.files[key] = dict(self.files[existing_key])

    # -- finishing
    def commit(self, manifest: Mapping[str, Any]) -> Path:
        """Write ``manifest.json`` (``manifest`` plus the file index) and swap the directory in."""
        body = {
            **dict(manifest),
            "schema_version": SCHEMA_VERSION,
            "initiative_id": self.initiative_id,
            "phase": self.phase,
            "files": dict(self.files),
        }
        self.write_json("manifest", "manifest.json", body)
        del self.files["manifest"]
        self._swap()
        self.committed = True
        return self.final

    def _swap(self) -> None:
        old: Path | None = None
        for _ in range(20):
            try:
                os.rename(self.tmp, self.final)
                break
            except OSError as exc:
                if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.EISDIR, errno.ENOTDIR):
                    raise
            aside = self.parent / f".{self.phase}.old-{uuid.uuid4().hex}"
            try:
                os.rename(self.final, aside)
            except FileNotFoundError:
                continue  # another run moved it away first; retry the rename
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
            old = aside
        else:  # pragma: no cover - needs a pathological race
            raise OSError(f"could not move {self.tmp} to {self.final}")
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def abort(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _clean_stale(self) -> None:
        now = time.time()
        for pattern in (f".{self.phase}.tmp-*", f".{self.phase}.old-*"):
            for path in self.parent.glob(pattern):
                with contextlib.suppress(OSError):
                    if now - path.stat().st_mtime > STALE_SECONDS:
                        shutil.rmtree(path, ignore_errors=True)


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()
