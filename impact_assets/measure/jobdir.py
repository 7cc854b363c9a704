"""Job directories with atomic writes and a manifest written last.

A run's job directory is ``{storage_root}/{initiative_id}/{phase}/``. Its files are written into a
fresh hidden temp directory beside it (``.{phase}.tmp-<hex>``), each file to a ``.part`` name and
renamed; ``manifest.json`` is written last; then the temp directory replaces the job directory
with renames. An earlier run's directory is moved aside and deleted only after the swap, so a
crash leaves either the old complete directory, or the new complete one, never a mixture, and a
directory without ``manifest.json`` is never a finished result.

JSON is strict: NaN and infinities become ``null``, numpy scalars plain numbers, floats are
rounded to 12 significant digits (stable text across processes and BLAS builds), keys sorted.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import enum
import errno
import json
import math
import os
import re
import shutil
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

#: Initiative ids become directory names (the same rule as the pipeline manifest).
INITIATIVE_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
SCHEMA_VERSION = "2.0"
FLOAT_DIGITS = 12
#: libyaml's dumper when available (several times faster), else the pure-Python one.
_YAML_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
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
    """Plain JSON types, recursively: NaN/inf -> None, numpy -> python, dates -> ISO text."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, enum.Enum):
        return json_safe(value.value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        number = float(value)
        return round_float(number) if math.isfinite(number) else None
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset | np.ndarray | pd.Series):
        items = list(value) if not isinstance(value, set | frozenset) else sorted(value, key=str)
        return [json_safe(v) for v in items]
    if isinstance(value, pd.Timestamp | dt.datetime | dt.date):
        if pd.isna(value):
            return None
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if value is pd.NaT:
        return None
    if hasattr(value, "item") and callable(value.item):
        return json_safe(value.item())
    return str(value)


def dumps_json(value: Any) -> str:
    """Strict, sorted, indented JSON text of ``json_safe(value)`` with a final newline."""
    return (
        json.dumps(json_safe(value), sort_keys=True, indent=2, allow_nan=False, ensure_ascii=False)
        + "\n"
    )


def _arrow_safe(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    out.columns = [str(c) for c in out.columns]
    for column in out.columns:
        if out[column].dtype == object:
            out[column] = out[column].map(lambda v: None if v is None else str(v))
    return out


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
    def _write_bytes(self, filename: str, payload: bytes) -> Path:
        target = self.tmp / filename
        part = self.tmp / f".{filename}.part"
        with open(part, "wb") as handle:
            handle.write(payload)
        os.replace(part, target)
        return target

    def write_json(self, key: str, filename: str, value: Any) -> None:
        self._write_bytes(filename, dumps_json(value).encode("utf-8"))
        self.files[key] = {"path": filename, "format": "json"}

    def write_yaml(self, key: str, filename: str, value: Any) -> None:
        text = yaml.dump(json_safe(value), Dumper=_YAML_DUMPER, sort_keys=True, allow_unicode=True)
        self._write_bytes(filename, text.encode("utf-8"))
        self.files[key] = {"path": filename, "format": "yaml"}

    def write_parquet(self, key: str, filename: str, frame: pd.DataFrame) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        part = self.tmp / f".{filename}.part"
        try:
            # one thread: cheaper for small frames, and no pool contention across runs
            table = pa.Table.from_pandas(frame, preserve_index=False, nthreads=1)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError):
            table = pa.Table.from_pandas(_arrow_safe(frame), preserve_index=False, nthreads=1)
        pq.write_table(table, part)
        os.replace(part, self.tmp / filename)
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
