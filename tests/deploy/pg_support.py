"""PostgreSQL for the instance-storage tests: connection settings from the environment, one fresh
database per test, and a ``DAGSTER_HOME`` holding ``deploy/dagster.yaml`` verbatim.

The tests skip when ``IMPACT_PG_HOST``/``PORT``/``USER``/``PASSWORD``/``DB`` are not set; ``.ci/run``
starts a local server, sets them and ``IMPACT_REQUIRE_POSTGRES=1``, and then a missing setting is
an error instead of a skip.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DAGSTER_YAML = ROOT / "deploy" / "dagster.yaml"
PG_VARS = (
    "IMPACT_PG_HOST",
    "IMPACT_PG_PORT",
    "IMPACT_PG_USER",
    "IMPACT_PG_PASSWORD",
    "IMPACT_PG_DB",
)
REQUIRED = os.environ.get("IMPACT_REQUIRE_POSTGRES") == "1"
MISSING = [name for name in PG_VARS if not os.environ.get(name)]
HAVE_EXTRA = importlib.util.find_spec("dagster_postgres") is not None

if MISSING and REQUIRED:
    raise RuntimeError(f"IMPACT_REQUIRE_POSTGRES=1 but {', '.join(MISSING)} not set")
if not HAVE_EXTRA and REQUIRED:
    raise RuntimeError(
        "IMPACT_REQUIRE_POSTGRES=1 but dagster-postgres is not installed: "
        "pip install -e '.[postgres]' (IMPACT_EXTRAS=postgres sh scripts/test.sh)"
    )

needs_postgres = pytest.mark.skipif(
    bool(MISSING) or not HAVE_EXTRA,
    reason=(
        f"needs PostgreSQL: set {', '.join(PG_VARS)} (.ci/run does)"
        if MISSING
        else "needs the postgres extra: pip install -e '.[postgres]'"
    ),
)


def _connect(dbname: str):
    import psycopg2

    return psycopg2.connect(
        host=os.environ["IMPACT_PG_HOST"],
        port=int(os.environ["IMPACT_PG_PORT"]),
        user=os.environ["IMPACT_PG_USER"],
        password=os.environ["IMPACT_PG_PASSWORD"],
        dbname=dbname,
        connect_timeout=10,
    )


@pytest.fixture
def pg_database(monkeypatch) -> Iterator[str]:
    """A fresh, empty database for one test; ``IMPACT_PG_DB`` points at it while the test runs."""
    from psycopg2 import sql

    name = f"impact_test_{uuid.uuid4().hex[:12]}"
    admin = _connect(os.environ["IMPACT_PG_DB"])
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        monkeypatch.setenv("IMPACT_PG_DB", name)
        yield name
    finally:
        with admin.cursor() as cursor:
            cursor.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
        admin.close()


def query(dbname: str, statement: str) -> list[tuple]:
    """Run one read-only statement directly against PostgreSQL."""
    connection = _connect(dbname)
    try:
        with connection.cursor() as cursor:
            cursor.execute(statement)
            return cursor.fetchall()
    finally:
        connection.close()


def postgres_home(home: Path) -> Path:
    """A DAGSTER_HOME whose dagster.yaml is ``deploy/dagster.yaml``, unchanged."""
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(DAGSTER_YAML, home / "dagster.yaml")
    return home


def strip_lineage(value: Any) -> Any:
    """A stored record without its ``lineage`` (run ids, storage ids, timestamps)."""
    if isinstance(value, dict):
        return {k: strip_lineage(v) for k, v in value.items() if k != "lineage"}
    if isinstance(value, list):
        return [strip_lineage(v) for v in value]
    return value


def stored_reports(storage: Path) -> dict[str, Any]:
    """Every ``outcome_report`` partition and the ``portfolio_report`` under a storage dir."""
    reports = {
        path.stem: strip_lineage(json.loads(path.read_text(encoding="utf-8")))
        for path in sorted((storage / "outcome_report").glob("*.json"))
    }
    summary = storage / "portfolio_report.json"
    if summary.exists():
        reports["<portfolio_report>"] = strip_lineage(json.loads(summary.read_text()))
    return reports
