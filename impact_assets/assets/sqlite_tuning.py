"""Faster local SQLite Dagster instances: ``PRAGMA synchronous`` for every SQLite connection.

Dagster's SQLite storage commits every event in its own transaction and, with SQLite's default
``synchronous=FULL``, waits for an fsync each time: about 10 ms per event on this machine, which
dominates a run over hundreds of initiatives (three to four events per initiative and asset).
With ``synchronous=OFF`` SQLite hands the data to the operating system and goes on. The database
stays intact when a *process* dies (SIGKILL included); only an operating-system crash or power
loss right after a write can lose the last transactions (https://sqlite.org/pragma.html#pragma_synchronous).

That trade is right for the project's local instance (``.dagster/``) and for tests; a shared
deployment uses PostgreSQL (docs/deploy.md). The JSON IO manager's files follow it
(:func:`impact_assets.assets.storage.flushes_to_disk`). Set ``IMPACT_SQLITE_SYNCHRONOUS=FULL`` to keep
SQLite's default. It applies in every process that loads this code location (the CLI, code
servers and run workers), and only to SQLite connections.
"""

import os
import sqlite3

from sqlalchemy import event
from sqlalchemy.engine import Engine

ENV = "IMPACT_SQLITE_SYNCHRONOUS"
_ALLOWED = ("OFF", "NORMAL", "FULL", "EXTRA")


def synchronous_mode() -> str:
    """The configured mode (default ``OFF``); unknown values are refused with a clear message."""
    mode = os.environ.get(ENV, "OFF").strip().upper()
    if mode not in _ALLOWED:
        raise ValueError(f"{ENV} must be one of {', '.join(_ALLOWED)}, got {mode!r}")
    return mode


@event.listens_for(Engine, "connect")
def _set_synchronous(dbapi_connection, _record) -> None:
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA synchronous={synchronous_mode()}")
        finally:
            cursor.close()
