"""The project's code location with every run executed in one process (``in_process_executor``).

The pinned Dagster's default executor starts a process per step, which costs seconds per step on
a small machine; the batched backfill test wants one process per *run*. This adds only the
executor when the project's ``Definitions`` sets none.
"""

import dagster as dg

from impact_assets import definitions as project


def _with_in_process_executor(defs: dg.Definitions) -> dg.Definitions:
    if defs.executor is not None:
        return defs
    return dg.Definitions.merge(defs, dg.Definitions(executor=dg.in_process_executor))


defs = _with_in_process_executor(project.defs)
