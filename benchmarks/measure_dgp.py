"""Simulated data with a known true effect, for validating the MEASURE models.

Used by ``benchmarks/measure_validity.py`` and by ``tests/measure_models`` (one place only).

The panel (``product_id`` x ``date``) follows an interactive fixed-effects model::

    y0_it = 10 + 3 x1_i + 2 x2_i + q x1_i^2 + u_i + (1 + 0.5 x2_i) f_t + trend * t + e_it

with unit covariates ``x1, x2 ~ N(0, 1)``, a unit effect ``u_i ~ N(0, 1)``, a common AR(1)
factor ``f_t`` (coefficient ``ar``), idiosyncratic noise ``e_it ~ N(0, noise^2)`` and
``q = nonlinearity``. Treatment (the unit-level ``enriched`` flag) is either random (exactly
``round(treated_share * n)`` units) or confounded: ``P(treated) = logistic(a + c (x1 + x2/2))``.
From ``start_day`` on, treated units gain ``effect * (1 + heterogeneity * x1_i) * ramp_t``
(``ramp_t = min(1, d / ramp_days)``, ``d`` days since the start, or 1 when ``ramp_days <= 0``).

Columns: ``product_id, date, category, price, x1, x2, enriched, treatment, revenue,
revenue_y0, revenue_y1`` (``revenue`` is observed: ``y1`` on treated post-start rows).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

START_DATE = pd.Timestamp("2024-10-01")
CATEGORIES = ("Books", "Clothing", "Electronics", "Toys & Games")


def panel(
    seed: int,
    *,
    n_units: int = 100,
    n_days: int = 92,
    start_day: int = 45,
    treated_share: float = 0.3,
    effect: float = 2.0,
    ramp_days: int = 0,
    confounding: float = 0.0,
    heterogeneity: float = 0.0,
    nonlinearity: float = 0.0,
    trend: float = 0.0,
    ar: float = 0.3,
    noise: float = 2.0,
) -> pd.DataFrame:
    """A product-day panel with potential outcomes; see the module docstring."""
    rng = np.random.default_rng(seed)
    x1, x2, u = rng.normal(size=(3, n_units))
    category = rng.choice(len(CATEGORIES), size=n_units)
    if confounding == 0.0:
        n_treated = round(treated_share * n_units)
        treated = np.zeros(n_units, dtype=bool)
        treated[rng.choice(n_units, size=n_treated, replace=False)] = True
    else:
        index = confounding * (x1 + 0.5 * x2)
        offset = np.log(treated_share / (1.0 - treated_share))
        treated = rng.random(n_units) < 1.0 / (1.0 + np.exp(-(offset + index)))
    factor = np.empty(n_days)
    factor[0] = rng.normal() / np.sqrt(max(1e-12, 1.0 - ar**2))
    shocks = rng.normal(size=n_days)
    for t in range(1, n_days):
        factor[t] = ar * factor[t - 1] + shocks[t]
    days = np.arange(n_days)
    level = 10 + 3 * x1 + 2 * x2 + nonlinearity * x1**2 + u
    loading = 1.0 + 0.5 * x2
    y0 = (
        level[:, None]
        + loading[:, None] * factor[None, :]
        + trend * days[None, :]
        + noise * rng.normal(size=(n_units, n_days))
    )
    since = days - start_day
    ramp = np.where(since < 0, 0.0, 1.0 if ramp_days <= 0 else np.minimum(1.0, since / ramp_days))
    tau = effect * (1.0 + heterogeneity * x1)
    y1 = y0 + tau[:, None] * ramp[None, :]
    post = since >= 0
    observed = np.where(treated[:, None] & post[None, :], y1, y0)
    ids = np.array([f"P{i:04d}" for i in range(n_units)])
    return pd.DataFrame(
        {
            "product_id": np.repeat(ids, n_days),
            "date": np.tile(START_DATE + pd.to_timedelta(days, unit="D"), n_units),
            "category": np.repeat(np.array(CATEGORIES)[category], n_days),
            "price": np.repeat(np.round(20.0 * np.exp(0.3 * x1), 2), n_days),
            "x1": np.repeat(x1, n_days),
            "x2": np.repeat(x2, n_days),
            "enriched": np.repeat(treated, n_days),
            "treatment": (treated[:, None] & post[None, :]).ravel().astype(int),
            "revenue": observed.ravel(),
            "revenue_y0": y0.ravel(),
            "revenue_y1": y1.ravel(),
        }
    )


def treatment_date(start_day: int = 45) -> pd.Timestamp:
    """The first treated date of :func:`panel` for a given ``start_day``."""
    return START_DATE + pd.Timedelta(days=start_day)


def aggregate_by_date(data: pd.DataFrame) -> pd.DataFrame:
    """Sum numeric columns per date (what the ``aggregate_by_date`` transform does)."""
    numeric = data.select_dtypes("number").columns.drop("treatment", errors="ignore")
    return data.groupby("date", as_index=False)[list(numeric)].sum()


def post_window(data: pd.DataFrame, start_day: int = 45) -> pd.DataFrame:
    """Rows on or after the treatment date (the measurement window of cross-sectional models)."""
    return data.loc[data["date"] >= treatment_date(start_day)].reset_index(drop=True)


# -- scenarios: (data, params) per model, shared by the benchmark and the tests ---------------
Scenario = Callable[[int], tuple[pd.DataFrame, dict[str, Any]]]


def experiment_scenario(seed: int) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Randomized unit-level assignment; OLS of revenue on enriched + price (full panel)."""
    data = panel(seed, heterogeneity=0.3)
    return data, {"formula": "revenue ~ enriched + price"}


def its_scenario(seed: int) -> tuple[pd.DataFrame, dict[str, Any]]:
    """All units treated, trend, 7-day ramp, AR(1) factor; series summed per date."""
    data = aggregate_by_date(panel(seed, treated_share=1.0, trend=0.02, ramp_days=7, ar=0.3))
    return data, {"intervention_date": str(treatment_date().date())}


def synthetic_control_scenario(seed: int) -> tuple[pd.DataFrame, dict[str, Any]]:
    """30 of 100 units treated at random; factor loadings vary by unit."""
    data = panel(seed, treated_share=0.3)
    return data, {"treatment_time": str(treatment_date().date()), "outcome_column": "revenue"}


def observational_scenario(seed: int) -> pd.DataFrame:
    """Confounded assignment on x1, x2 with heterogeneous effects (post window, 47 days)."""
    return post_window(
        panel(seed, treated_share=0.3, confounding=1.0, heterogeneity=0.3, nonlinearity=0.5)
    )


def matching_scenario(seed: int) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Bias-corrected matching with replacement on x1, x2 (the defaults of
    ``MATCHING_DEFAULTS``: the benchmark sets no matching parameter of its own)."""
    params = {"treatment_column": "enriched", "covariate_columns": ["x1", "x2"]}
    return observational_scenario(seed), params


def cross_section(
    seed: int,
    *,
    n_units: int = 500,
    n_covariates: int = 4,
    confounding: float = 1.5,
    slope: float = 3.0,
    effect: float = 2.0,
    noise: float = 1.0,
) -> pd.DataFrame:
    """One row per product; strong confounding through ``s = sum(x) / sqrt(k)``.

    ``P(treated) = logistic(-1 + confounding * s)``, ``y0 = slope * s + noise * e``,
    ``y1 = y0 + effect``.
    """
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_units, n_covariates))
    index = X.sum(axis=1) / np.sqrt(n_covariates)
    treated = rng.random(n_units) < 1.0 / (1.0 + np.exp(1.0 - confounding * index))
    y0 = slope * index + noise * rng.normal(size=n_units)
    y1 = y0 + effect
    frame = pd.DataFrame({f"x{j + 1}": X[:, j] for j in range(n_covariates)})
    frame.insert(0, "product_id", [f"P{i:04d}" for i in range(n_units)])
    return frame.assign(
        enriched=treated,
        revenue=np.where(treated, y1, y0),
        revenue_y0=y0,
        revenue_y1=y1,
    )


def confounded_matching_scenario(seed: int) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Abadie-Imbens matching on the strongly confounded cross-section."""
    data = cross_section(seed)
    covariates = [c for c in data.columns if c.startswith("x")]
    params = {"treatment_column": "enriched", "covariate_columns": covariates}
    return data, params


def naive_matching_scenario(seed: int) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Same data, no bias correction and the naive two-sample SE (upstream style)."""
    data, params = confounded_matching_scenario(seed)
    return data, {**params, "bias_correction": False, "se_method": "naive"}


def subclassification_scenario(seed: int) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Propensity strata with regression adjustment on x1, x2."""
    params = {"treatment_column": "enriched", "covariate_columns": ["x1", "x2"]}
    return observational_scenario(seed), params


def approximation_scenario(seed: int) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Per-product quality before/after and baseline sales; the response is deterministic."""
    rng = np.random.default_rng(seed)
    n = 100
    before = np.round(rng.uniform(0.3, 0.7, n), 3)
    treated = rng.random(n) < 0.3
    after = np.where(treated, np.minimum(1.0, before + 0.15), before)
    data = pd.DataFrame(
        {
            "product_id": [f"P{i:04d}" for i in range(n)],
            "quality_before": before,
            "quality_after": after,
            "baseline_sales": np.round(rng.gamma(2.0, 500.0, n), 2),
        }
    )
    return data, {"RESPONSE": {"FUNCTION": "linear", "PARAMS": {"coefficient": 0.5}}}


SCENARIOS: dict[str, Scenario] = {
    "experiment": experiment_scenario,
    "interrupted_time_series": its_scenario,
    "synthetic_control": synthetic_control_scenario,
    "nearest_neighbour_matching": matching_scenario,
    "subclassification": subclassification_scenario,
    "metrics_approximation": approximation_scenario,
}
