"""Process start and exit for a process that executes a run: workers started early, fast exit.

Two things cost seconds in a ``dagster job execute`` of a few hundred initiatives, and neither is
work of the pipeline:

1. **Starting the MEASURE worker processes** (about 2 s of imports each) happened when the pilot
   step submitted its first task, while Dagster had spent the seconds before that loading the
   code location and planning the run on one core. In a process that is about to execute a run,
   :func:`prestart_for_manifest` starts them as the code location starts loading (from a first
   look at the manifest file), so that they import on the other core meanwhile. It does so only
   when a run's pilot stage would use worker processes (``parallelism``, and the number of
   initiatives or the backfill batch size ``IMPACT_BACKFILL_BATCH_SIZE``, as
   :func:`impact_assets.parallel.use_processes` decides) and only in processes that execute
   runs:

   - ``dagster job execute`` and ``dagster asset materialize`` from a shell;
   - ``dagster api execute_run`` / ``execute_step`` (Dagster's run and step workers);
   - the run subprocess a code server starts for a run launched from the UI or by the daemon
     (a ``multiprocessing`` child that loads the definitions).

   Code servers, the webserver, the daemon, ``dg``/``dagster definitions validate`` and tests
   that import the definitions do not start workers. ``IMPACT_PRESTART_WORKERS=1`` starts them in
   any process, ``0`` never. A run that then measures too few initiatives for processes (a
   one-initiative refresh from the shell) leaves them unused; they are terminated at exit, not
   waited for, so that costs some CPU on the other core and no wall time.
2. **The garbage collector.** Loading Dagster and the code location leaves about a million
   long-lived objects that every full collection scans again (about 1.3 s over a 200-initiative
   run), and the interpreter's final collection at exit scans them once more (about 2 s).
   :func:`freeze_loaded_objects` moves them out of the collector's reach (``gc.freeze()``) as
   the code location starts loading (Dagster's own modules: the collections that importing the
   stage packages triggers then no longer scan them, 0.13-0.16 s at N = 1,000), once the
   definitions are built, and again at exit. Objects freed by reference counting are still freed
   at once; at exit, open files and database connections are closed by their owners' own exit
   handlers (logging, Dagster's instance, the process pools), which run before the interpreter's
   final collection.
"""

from __future__ import annotations

import atexit
import gc
import multiprocessing
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

from impact_assets.assets.manifest import backfill_policy_from_env
from impact_assets.config import run_settings
from impact_assets.parallel import prestart_process_pool, use_processes, worker_nice
from impact_assets.yaml_safe import safe_load_text

PRESTART_ENV = "IMPACT_PRESTART_WORKERS"

#: ``dagster <group> <command>`` invocations that execute a run in the same process.
_EXECUTING_COMMANDS = {
    ("job", "execute"),
    ("asset", "materialize"),
    ("api", "execute_run"),
    ("api", "execute_step"),
    ("api", "resume_run"),
}


def executes_runs(argv: Sequence[str] | None = None) -> bool:
    """Whether this process is one that executes a run (see the module docstring)."""
    argv = list(sys.argv if argv is None else argv)
    if argv:
        program = Path(argv[0])
        is_dagster = program.name == "dagster" or (
            program.name == "__main__.py" and program.parent.name == "dagster"
        )
        if is_dagster and tuple(argv[1:3]) in _EXECUTING_COMMANDS:
            return True
    # A code server starts each run in a spawned child process that loads the definitions (and
    # inherits the server's argv); the MEASURE workers themselves never load them.
    return multiprocessing.parent_process() is not None


def prestart_for_manifest(path: Path, argv: Sequence[str] | None = None) -> bool:
    """Start the MEASURE worker processes now if this process is about to execute a run whose
    pilot stage will use them; return whether it did.

    It takes a first look at the manifest file alone (its ``parallelism``, ``max_workers`` and
    number of initiatives), before anything heavy is imported or the stage and measure configs
    are read: the workers' imports then overlap the whole loading of the code location. A
    manifest that does not read as expected starts nothing; loading it properly then reports
    the problem."""
    try:
        data = safe_load_text(Path(path).read_text(encoding="utf-8"))
        max_workers, parallelism = run_settings(Path(path), data)  # ConfigError is a ValueError
        initiatives = data["initiatives"]
        if not isinstance(initiatives, list):
            return False
    except (OSError, UnicodeError, ValueError, yaml.YAMLError, AttributeError, KeyError):
        return False
    return _prestart(parallelism, max_workers, len(initiatives), argv)


def _prestart(
    parallelism: str, max_workers: int, n_initiatives: int, argv: Sequence[str] | None
) -> bool:
    worker_nice()  # a bad IMPACT_WORKER_NICE fails here, as the code location loads
    setting = os.environ.get(PRESTART_ENV, "auto").strip().lower()
    if setting not in ("auto", "0", "1"):
        raise ValueError(f"{PRESTART_ENV} must be auto, 0 or 1, got {setting!r}")
    if setting == "0" or (setting == "auto" and not executes_runs(argv)):
        return False
    if not use_processes(parallelism, _initiatives_per_run(n_initiatives)):
        return False
    prestart_process_pool(max_workers)
    return True


def _initiatives_per_run(n_initiatives: int) -> int:
    """The most initiatives one run measures: all of them, or a backfill batch."""
    batch = backfill_policy_from_env().max_partitions_per_run
    return n_initiatives if not batch else min(batch, n_initiatives)


_freeze_at_exit_registered = False


def freeze_loaded_objects() -> None:
    """``gc.freeze()`` the objects alive now, and again at exit (see the module docstring)."""
    global _freeze_at_exit_registered
    gc.freeze()
    if not _freeze_at_exit_registered:
        atexit.register(gc.freeze)
        _freeze_at_exit_registered = True


__all__ = [
    "PRESTART_ENV",
    "executes_runs",
    "freeze_loaded_objects",
    "prestart_for_manifest",
]
