"""Fixtures of the measure-engine tests."""

from __future__ import annotations

import pytest

from tests.measure_engine.measure_support import register_test_model, unregister_test_model


@pytest.fixture(autouse=True)
def _test_model():
    register_test_model()
    yield
    unregister_test_model()
