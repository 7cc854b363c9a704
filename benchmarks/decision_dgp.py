"""Simulated initiatives with known true money returns, for ``benchmarks/decision_quality.py``.

One initiative = one data set from a standard simulation design of the causal-inference literature,
measured by the real MEASURE model of its method. The designs (``GENERATORS``):

* ``experiment``: the Kang & Schafer (2007) population (``Z ~ N(0, I_4)``,
  ``Y0 = 210 + 27.4 Z1 + 13.7 (Z2 + Z3 + Z4) + e``) with **randomised** assignment (p = 1/2); the
  analyst adjusts for the observed, non-linearly transformed covariates
  (``X1 = exp(Z1 / 2)``, ``X2 = Z2 / (1 + exp(Z1)) + 10``, ``X3 = (Z1 Z3 / 25 + 0.6)^3``,
  ``X4 = (Z2 + Z4 + 20)^2``), as in their design. OLS ``revenue ~ enriched + x1..x4``.
* ``nearest_neighbour_matching``: the same population with Kang & Schafer's **confounded**
  assignment ``P(T = 1) = expit(-Z1 + 0.5 Z2 - 0.25 Z3 - 0.1 Z4)``; bias-corrected
  Abadie-Imbens matching on ``Z1..Z4``.
* ``subclassification``: a LaLonde / Dehejia-Wahba-like job-training sample: age, education,
  black, hispanic, married, zero-inflated log-normal earnings ``re74``/``re75``; the less
  educated, younger, unmarried and low earners select into treatment; ``re78`` depends on all of
  them with heavy-tailed noise and 25% zeros. Five propensity strata, regression adjustment.
* ``synthetic_control``: the linear factor model of Abadie, Diamond & Hainmueller (2010)
  (``benchmarks/measure_dgp.panel``: unit fixed effects, an AR(1) common factor with unit
  loadings), 30% of 100 units treated, 45 pre / 47 post days.
* ``interrupted_time_series``: the same panel, every unit treated, a trend and a 7-day ramp,
  summed per date (the segmented-regression setting of Bernal, Cummins & Gasparrini 2017).
* ``metrics_approximation``: products with baseline sales (Gamma(2, 500)) and a quality change of
  0.3 for the enriched half; the **true** response is ``beta_true * delta_quality * baseline``
  (the potential outcomes carry it), while the analyst's configured coefficient is
  ``beta_assumed = beta_true + delta``, ``delta ~ N(0, (APPROX_SPREAD * s)^2)`` (see below).

Every generator takes the effect as ``d`` standard errors of its method at the reference design
(``REFERENCE_SE``: the median standard error per unit of effect, calibrated with
``--calibrate`` in ``decision_quality.py`` and fixed here), so that the money value of one unit of
estimate can be set without looking at the truth:

    value_per_unit = cost * kappa / (REFERENCE_SE * units_per_effect)

where ``kappa`` sets the noise: one standard error of the estimate is worth about
``kappa * cost`` (times ``sqrt(n_ref / n)`` for the sample size). For an approximation the
"standard error" is the spread of the assumed coefficient: ``s = REFERENCE_SE`` per unit of
``beta``, times ``APPROX_SPREAD``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure_dgp import aggregate_by_date, panel, treatment_date

#: Median standard error of each method's estimate per unit of the generator's effect parameter,
#: at the reference design (``REFERENCE_N`` units), from ``decision_quality.py --calibrate``
#: (20 seeds each). For ``metrics_approximation`` it is the unit of the coefficient spread.
REFERENCE_SE = {
    "experiment": 1.47,
    "nearest_neighbour_matching": 0.147,
    "subclassification": 308.0,
    "synthetic_control": 0.145,
    "interrupted_time_series": 0.498,
    "metrics_approximation": 1.0,
}
#: Reference sample sizes of the cross-sectional designs (units).
REFERENCE_N = {"experiment": 500, "nearest_neighbour_matching": 500, "subclassification": 600}
#: How far an approximation's assumed response coefficient is from the true one: the standard
#: deviation of ``beta_assumed - beta_true``, in the same noise units as a statistical method's
#: standard error at the reference design (1 = as noisy as a typical pilot).
APPROX_SPREAD = 1.5


@dataclass
class Simulated:
    """One initiative's data and its MEASURE parameters."""

    method: str
    data: pd.DataFrame
    params: dict[str, Any]
    n: int


def _expit(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _kang_schafer(rng: np.random.Generator, n: int, effect: float, randomised: bool):
    z = rng.normal(size=(n, 4))
    y0 = 210 + 27.4 * z[:, 0] + 13.7 * (z[:, 1] + z[:, 2] + z[:, 3]) + rng.normal(size=n)
    if randomised:
        treated = rng.random(n) < 0.5
    else:
        treated = rng.random(n) < _expit(-z[:, 0] + 0.5 * z[:, 1] - 0.25 * z[:, 2] - 0.1 * z[:, 3])
    tau = effect * (1.0 + 0.3 * z[:, 1])  # heterogeneous around the effect
    y1 = y0 + tau
    x = np.column_stack(
        [
            np.exp(z[:, 0] / 2),
            z[:, 1] / (1 + np.exp(z[:, 0])) + 10,
            (z[:, 0] * z[:, 2] / 25 + 0.6) ** 3,
            (z[:, 1] + z[:, 3] + 20) ** 2,
        ]
    )
    frame = pd.DataFrame({"product_id": [f"P{i:05d}" for i in range(n)]})
    for j in range(4):
        frame[f"x{j + 1}"] = x[:, j]
        frame[f"z{j + 1}"] = z[:, j]
    return frame.assign(
        enriched=treated, revenue=np.where(treated, y1, y0), revenue_y0=y0, revenue_y1=y1
    )


def experiment(rng: np.random.Generator, effect: float, n: int) -> Simulated:
    data = _kang_schafer(rng, n, effect, randomised=True)
    params = {"formula": "revenue ~ enriched + x1 + x2 + x3 + x4", "treatment_column": "enriched"}
    return Simulated("experiment", data, params, n)


def matching(rng: np.random.Generator, effect: float, n: int) -> Simulated:
    data = _kang_schafer(rng, n, effect, randomised=False)
    params = {
        "treatment_column": "enriched",
        "covariate_columns": ["z1", "z2", "z3", "z4"],
        "replace": True,
        "caliper": None,
    }
    return Simulated("nearest_neighbour_matching", data, params, n)


def job_training(rng: np.random.Generator, effect: float, n: int) -> Simulated:
    """LaLonde / Dehejia-Wahba-like observational sample (module docstring)."""
    age = 17 + rng.gamma(2.0, 6.0, n)
    educ = np.clip(np.round(rng.normal(10.5, 2.5, n)), 3, 17)
    black = rng.random(n) < 0.45
    hisp = (~black) & (rng.random(n) < 0.15)
    married = rng.random(n) < 0.35
    skill = rng.normal(size=n)
    employed74 = rng.random(n) < 0.6
    employed75 = rng.random(n) < np.where(employed74, 0.8, 0.3)
    base = np.exp(8.3 + 0.08 * (educ - 10) + 0.4 * skill)
    re74 = np.where(employed74, base * rng.lognormal(0, 0.5, n), 0.0)
    re75 = np.where(employed75, base * rng.lognormal(0, 0.5, n), 0.0)
    index = (
        0.5
        - 0.04 * (age - 25)
        - 0.15 * (educ - 10)
        + 0.6 * black
        - 0.7 * married
        - 0.00012 * re75
        - 0.00005 * re74
    )
    treated = rng.random(n) < _expit(index)
    level = 1500 + 0.45 * re75 + 0.25 * re74 + 350 * (educ - 10) + 40 * (age - 25) + 1200 * skill
    works = rng.random(n) < 0.75
    y0 = np.where(works, np.maximum(0.0, level + 3000 * rng.standard_t(5, n)), 0.0)
    y1 = y0 + effect * (1.0 + 0.3 * skill)
    data = pd.DataFrame(
        {
            "product_id": [f"P{i:05d}" for i in range(n)],
            "age": age,
            "educ": educ,
            "black": black.astype(float),
            "hisp": hisp.astype(float),
            "married": married.astype(float),
            "re74": re74,
            "re75": re75,
            "enriched": treated,
            "revenue": np.where(treated, y1, y0),
            "revenue_y0": y0,
            "revenue_y1": y1,
        }
    )
    params = {
        "treatment_column": "enriched",
        "covariate_columns": ["age", "educ", "black", "hisp", "married", "re74", "re75"],
        "n_strata": 5,
    }
    return Simulated("subclassification", data, params, n)


def synthetic_control(rng: np.random.Generator, effect: float, n: int) -> Simulated:
    seed = int(rng.integers(2**31))
    data = panel(seed, treated_share=0.3, effect=effect, noise=float(rng.uniform(1.5, 3.0)))
    params = {"treatment_time": str(treatment_date().date()), "outcome_column": "revenue"}
    return Simulated("synthetic_control", data, params, 100)


def interrupted_time_series(rng: np.random.Generator, effect: float, n: int) -> Simulated:
    seed = int(rng.integers(2**31))
    data = aggregate_by_date(
        panel(seed, treated_share=1.0, trend=0.02, ramp_days=7, ar=0.3, effect=effect)
    )
    return Simulated(
        "interrupted_time_series",
        data,
        {"intervention_date": str(treatment_date().date())},
        len(data),
    )


def approximation(
    rng: np.random.Generator, beta_true: float, n: int, beta_assumed: float
) -> Simulated:
    """Products, quality change and potential outcomes; the model uses ``beta_assumed``."""
    baseline = np.round(rng.gamma(2.0, 500.0, n), 2)
    before = np.round(rng.uniform(0.3, 0.7, n), 3)
    enriched = np.zeros(n, dtype=bool)
    enriched[rng.permutation(n)[: n // 2]] = True
    after = np.where(enriched, before + 0.3, before)
    y0 = baseline * rng.lognormal(0.0, 0.2, n)  # after-period sales without the change
    y1 = y0 + beta_true * (after - before) * baseline
    data = pd.DataFrame(
        {
            "product_id": [f"P{i:05d}" for i in range(n)],
            "quality_before": before,
            "quality_after": after,
            "baseline_sales": baseline,
            "enriched": enriched,
            "n_days_before": 28,
            "n_days_after": 28,
            "revenue_y0": y0,
            "revenue_y1": y1,
        }
    )
    params = {
        "RESPONSE": {"FUNCTION": "linear", "PARAMS": {"coefficient": float(beta_assumed)}},
        "aggregate": "mean",
    }
    return Simulated("metrics_approximation", data, params, n)


#: Units of estimate per unit of the effect parameter (ITS sums 100 units per date; an
#: approximation's estimate is ``beta * 0.15 * mean(baseline)`` = ``beta * 150``).
UNITS_PER_EFFECT = {"interrupted_time_series": 100.0, "metrics_approximation": 150.0}

GENERATORS = {
    "experiment": experiment,
    "nearest_neighbour_matching": matching,
    "subclassification": job_training,
    "synthetic_control": synthetic_control,
    "interrupted_time_series": interrupted_time_series,
}


def sample_size(method: str, rng: np.random.Generator) -> int:
    """Units of a pilot: uniform on [0.4, 2] x the reference size for cross-sections."""
    ref = REFERENCE_N.get(method)
    return 100 if ref is None else int(rng.integers(int(0.4 * ref), 2 * ref + 1))


def simulate(method: str, rng: np.random.Generator, d: float, n: int) -> Simulated:
    """Data for one initiative whose true effect is ``d`` reference standard errors."""
    if method == "metrics_approximation":
        beta_true = d * REFERENCE_SE[method]
        beta_assumed = beta_true + APPROX_SPREAD * REFERENCE_SE[method] * rng.normal()
        return approximation(rng, beta_true, max(n, 100), beta_assumed)
    return GENERATORS[method](rng, d * REFERENCE_SE[method], n)
