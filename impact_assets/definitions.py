"""The Dagster code location: ``dagster job execute -m impact_assets.definitions -j impact_pipeline``.

Loading it reads the manifest named by ``IMPACT_MANIFEST`` (default ``configs/pipeline.yaml``) and
builds one explicit :class:`dagster.Definitions` from it
(:func:`impact_assets.assets.code_location.build_definitions`); nothing else happens at import.
A manifest that does not load stops the load with its :class:`~impact_assets.config.ConfigError`,
whose message names the file, the initiative and the field (Dagster shows it as the code
location's load error). ``impact-assets validate`` prints the same message as one line with exit
status 2.
"""

from impact_assets.assets.code_location import build_definitions
from impact_assets.assets.manifest import backfill_policy_from_env, manifest_path
from impact_assets.config import load_config

defs = build_definitions(load_config(manifest_path()), backfill_policy_from_env())
