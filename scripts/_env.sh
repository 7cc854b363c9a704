# Shared by scripts/demo.sh and scripts/test.sh: create or reuse .venv and install the project.
set -eu
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "error: $PYTHON is not Python >= 3.11 (set PYTHON=/path/to/python3.11)" >&2
    exit 2
fi
if [ ! -x .venv/bin/python ]; then
    echo "==> creating .venv"
    "$PYTHON" -m venv .venv
fi
# Install (again) only when pyproject.toml or the extras changed since the last successful install.
# IMPACT_EXTRAS adds optional extras: .ci/run sets "postgres" for the PostgreSQL instance tests.
extras="dev${IMPACT_EXTRAS:+,$IMPACT_EXTRAS}"
stamp="$(cksum pyproject.toml) $extras"
if [ "$(cat .venv/.install-stamp 2>/dev/null)" != "$stamp" ]; then
    echo "==> installing impact-assets[$extras] into .venv (log: .venv/install.log)"
    if ! .venv/bin/python -m pip install --disable-pip-version-check -e ".[$extras]" >.venv/install.log 2>&1; then
        tail -n 40 .venv/install.log >&2
        echo "error: pip install failed; full log in .venv/install.log" >&2
        exit 1
    fi
    echo "$stamp" >.venv/.install-stamp
fi
export DAGSTER_HOME="${DAGSTER_HOME:-$PWD/.dagster}"
mkdir -p "$DAGSTER_HOME"
# Create the instance's storage once, before any command starts several processes on it
# (`dagster dev` starts a webserver and a daemon together, which race on a fresh SQLite schema).
.venv/bin/python -c 'import dagster; dagster.DagsterInstance.get().dispose()'
