"""Fixtures of the foundation tests."""

from __future__ import annotations

import pytest

from impact_assets import parallel


@pytest.fixture
def no_pools():
    """No kept worker processes before the test, and none left after it."""
    parallel.shutdown_pools()
    yield
    parallel.shutdown_pools()
