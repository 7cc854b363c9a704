"""The Dagster code location: ``dagster job execute -m impact_assets.definitions -j impact_pipeline``.

Reads the manifest named by ``IMPACT_MANIFEST`` (default ``configs/pipeline.yaml``) when the code
location loads, and builds one explicit :class:`dagster.Definitions` from it
(:func:`impact_assets.assets.graph.build_definitions`).
"""

import sys
from pathlib import Path
from typing import NoReturn

from impact_assets.assets.manifest import backfill_policy_from_env, manifest_path
from impact_assets.assets.warm_start import freeze_loaded_objects, prestart_for_manifest
from impact_assets.config import ConfigError, load_config

#: ``dagster <command>`` invocations run by a person in a shell; code servers and the webserver
#: load this module through ``dagster api ...``/``code-server`` and get the full exception.
_SHELL_COMMANDS = {"job", "asset", "definitions", "launch", "check", "list"}


def _from_a_shell() -> bool:
    program = Path(sys.argv[0]).name if sys.argv else ""
    return program in {"dagster", "dg"} and len(sys.argv) > 1 and sys.argv[1] in _SHELL_COMMANDS


def _refuse(exc: Exception) -> NoReturn:
    if not _from_a_shell():
        raise exc
    # One clear line naming the file and the field, not a wall of traceback.
    sys.stderr.write(f"error: {exc}\n")
    raise SystemExit(2) from None


_manifest = manifest_path()
try:
    # First, in a process about to execute a run: the MEASURE workers start importing on the
    # other core while the rest of the code location loads (impact_assets/assets/warm_start.py).
    prestart_for_manifest(_manifest)
except ValueError as exc:
    _refuse(exc)

# Dagster's own modules, loaded by now, live as long as the process: freezing them keeps the
# collections triggered by the imports below from scanning them again (warm_start).
freeze_loaded_objects()

# after the workers have started: this imports the stage packages (pandas, scipy)
from impact_assets.assets.graph import build_definitions  # noqa: E402

try:
    _config = load_config(_manifest)
    defs = build_definitions(_config, backfill_policy_from_env())
except (ConfigError, ValueError) as exc:
    _refuse(exc)

freeze_loaded_objects()
