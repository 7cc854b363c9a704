"""Fixtures for the PostgreSQL instance tests."""

from tests.deploy.pg_support import pg_database as pg_database
