"""Fixtures of the foundation tests."""

from __future__ import annotations
