"""The Dagster code location: ``dagster job execute -m impact_assets.definitions -j impact_pipeline``.

Reads the manifest named by ``IMPACT_MANIFEST`` (default ``configs/pipeline.yaml``) when the code
location loads, and builds one explicit :class:`dagster.Definitions` from it
(:func:`impact_assets.assets.graph.build_definitions`).
"""

from impact_assets.assets.graph import build_definitions
from impact_assets.assets.manifest import backfill_policy_from_env, manifest_path
from impact_assets.config import load_config

defs = build_definitions(load_config(manifest_path()), backfill_policy_from_env())
