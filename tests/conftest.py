"""Shared fixtures: small manifests on disk and deterministic fake components."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import FakeEvaluate, FakeMeasure, write_manifest


@pytest.fixture(autouse=True)
def _fake_components():
    from impact_assets.registry import register_component, unregister_component

    register_component("FakeMeasure", FakeMeasure)
    register_component("FakeEvaluate", FakeEvaluate)
    yield
    unregister_component("FakeMeasure")
    unregister_component("FakeEvaluate")


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    return write_manifest(tmp_path / "project")
