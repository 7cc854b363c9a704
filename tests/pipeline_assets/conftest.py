"""Fixtures for the Dagster layer: a small manifest with fake components and a test instance."""

from pathlib import Path

import dagster as dg
import pytest

from impact_assets.assets.code_location import build_definitions
from impact_assets.config import load_config
from tests.support import write_manifest


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        yield inst


def make_defs(root: Path, initiatives=None, **manifest):
    path = write_manifest(root, initiatives, **manifest)
    return build_definitions(load_config(path))


@pytest.fixture
def defs(tmp_path):
    return make_defs(tmp_path / "project")


def stored(instance: dg.DagsterInstance, asset: str, partition: str | None = None) -> dict:
    import json

    root = Path(instance.storage_directory()) / "impact_assets"
    path = root / f"{asset}.json" if partition is None else root / asset / f"{partition}.json"
    return json.loads(path.read_text())


def materialize(defs, instance, selection, partition_key=None, **kwargs):
    """Materialize ``selection`` (asset names) from the full graph; each asset's checks run in its step."""
    return dg.materialize(
        list(defs.assets),
        selection=selection,
        partition_key=partition_key,
        instance=instance,
        resources=defs.resources,
        raise_on_error=False,
        **kwargs,
    )
