"""The Dagster code location: ``dagster job execute -m impact_assets.definitions -j impact_pipeline``.

Reads the manifest named by ``IMPACT_MANIFEST`` (default ``configs/pipeline.yaml``) when the code
location loads, and builds one explicit :class:`dagster.Definitions` from it
(:func:`impact_assets.assets.graph.build_definitions`).
"""

import sys
from pathlib import Path

from impact_assets.assets.graph import build_definitions
from impact_assets.assets.manifest import backfill_policy_from_env, manifest_path
from impact_assets.assets.warm_start import freeze_loaded_objects, prestart_measure_workers
from impact_assets.config import ConfigError, load_config

#: ``dagster <command>`` invocations run by a person in a shell; code servers and the webserver
#: load this module through ``dagster api ...``/``code-server`` and get the full exception.
_SHELL_COMMANDS = {"job", "asset", "definitions", "launch", "check", "list"}


def _from_a_shell() -> bool:
    program = Path(sys.argv[0]).name if sys.argv else ""
    return program in {"dagster", "dg"} and len(sys.argv) > 1 and sys.argv[1] in _SHELL_COMMANDS


try:
    _config = load_config(manifest_path())
    # In a process about to execute a run, the MEASURE workers import on the other core while
    # Dagster builds the definitions and plans the run (impact_assets/assets/warm_start.py).
    prestart_measure_workers(_config)
    defs = build_definitions(_config, backfill_policy_from_env())
except (ConfigError, ValueError) as exc:
    if not _from_a_shell():
        raise
    # One clear line naming the file and the field, not a wall of traceback.
    sys.stderr.write(f"error: {exc}\n")
    raise SystemExit(2) from None

freeze_loaded_objects()
