"""Shared fixtures for the measurement-model tests.

Simulated data come from ``benchmarks/measure_dgp.py`` (the one DGP module shared with the
validity benchmark).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))

import measure_dgp  # noqa: E402

from impact_assets.measure.models import get_model  # noqa: E402


@pytest.fixture(scope="session")
def dgp():
    """The shared DGP module."""
    return measure_dgp


def _fit(name: str, data: pd.DataFrame, raw: dict):
    """Validate ``raw`` and fit ``name``; returns (model, params, fit)."""
    model = get_model(name)
    params = model.validate_params(raw)
    return model, params, model.fit(data, params)


def _coverage(name: str, scenario, seeds) -> tuple[float, float]:
    """(share of CIs covering the truth, mean (estimate - truth) / SE) over ``seeds``."""
    model = get_model(name)
    hits, z = [], []
    for seed in seeds:
        data, raw = scenario(seed)
        params = model.validate_params(raw)
        result = model.fit(data, params)
        truth = model.true_effect(data, params)
        hits.append(result.ci_lower <= truth <= result.ci_upper)
        z.append((result.effect_estimate - truth) / result.standard_error)
    return float(np.mean(hits)), float(np.mean(z))


def _cross_section_ols(seed: int = 42, n: int = 100) -> pd.DataFrame:
    """y = 5 + 2 t + 1.5 x1 + N(0, 1) with a random 0/1 treatment (spec §7.2)."""
    rng = np.random.default_rng(seed)
    treatment = rng.integers(0, 2, n)
    x1 = rng.normal(size=n)
    return pd.DataFrame(
        {"y": 5 + 2 * treatment + 1.5 * x1 + rng.normal(size=n), "treatment": treatment, "x1": x1}
    )


@pytest.fixture(scope="session")
def fit():
    """``fit(name, data, raw_params) -> (model, params, ModelFit)``."""
    return _fit


@pytest.fixture(scope="session")
def coverage():
    """``coverage(name, scenario, seeds) -> (coverage, mean z)``."""
    return _coverage


@pytest.fixture(scope="session")
def ols_data():
    """``ols_data(seed=42, n=100)``: the spec's y = 5 + 2 t + 1.5 x1 + noise design."""
    return _cross_section_ols
