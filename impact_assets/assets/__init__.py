"""The Dagster layer: initiative-partitioned assets that wire the stage components together.

The stage logic lives in plain Python (``impact_assets.steps`` and the stage packages); these
modules only wire it into Dagster assets, checks, resources, storage and lineage.
"""
