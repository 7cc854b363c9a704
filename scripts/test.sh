#!/bin/sh
# README command 2: set up and run the whole test suite, then ruff lint and format checks.
. "$(dirname "$0")/_env.sh"
echo "==> pytest"
.venv/bin/python -m pytest -n 2 "$@"
echo "==> ruff check"
.venv/bin/ruff check .
echo "==> ruff format --check"
.venv/bin/ruff format --check .
