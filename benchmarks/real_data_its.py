"""Real data: the Sicily smoking ban (Lopez Bernal, Cummins & Gasparrini 2017) through MEASURE.

The series (``benchmarks/data/sicily.csv``, the authors' file; source and licence in
``benchmarks/data/README.md``): monthly counts of acute coronary events (``aces``) in Sicily,
ages 0-69, January 2002 to November 2006 (59 months), with the age-standardised population
``stdpop``. Italy's ban on smoking in public places took effect in January 2005 (``smokban``
= 1 from month 37 on).

The published analysis (the tutorial's worked example, and the authors' code ``Rcode.R`` in
github.com/gasparrini/2017_lopezbernal_IJE_codedata) is a Poisson segmented regression of the
counts with ``log(stdpop)`` as offset, a linear trend and a step at the ban; its headline is the
rate ratio of the step, ``exp(b_smokban)``, unadjusted (``model1``) and then quasi-Poisson with
two harmonic pairs for seasonality (``model3``).

Our ``interrupted_time_series`` is linear OLS with Newey-West errors, so it is run on the
**log** of the standardised rate ``aces / stdpop * 1e5``: its level change ``b2`` then is the
log rate ratio of the step, and ``exp(b2)`` is on the published scale. Log-linear OLS and a
Poisson log-link GLM target the same multiplicative step; they weight the months differently
(equally vs. by their expected count) and the variances differ (HAC vs. Poisson/quasi-Poisson),
so the estimates agree closely but not to the digit. Our model has no seasonal terms, so the
comparable published specification is the unadjusted step model; the seasonally adjusted one is
shown beside it.

Rows (see :func:`rows`), each run through the ``Measure`` component from a measure config and a
CSV as a user would (a ``month`` date column and a ``log_rate`` column, the one a user adds):

* level change only (the published step model);
* level + slope change (``slope_change: true``; the authors' "additional material" model4).

References on the same data: statsmodels OLS + HAC on the same design (the reference library,
same ``maxlags``), and statsmodels GLM for the published Poisson specifications (the published
model refitted; see ``published_source``).

Usage::

    python benchmarks/real_data_its.py        # prints the table (~2 s)
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from impact_assets.measure.component import Measure  # noqa: E402
from impact_assets.measure.models.interrupted_time_series import default_maxlags  # noqa: E402

DATA = Path(__file__).resolve().parent / "data" / "sicily.csv"
STUDY = "Sicily smoking ban, ACEs ages 0-69, 2002-01 to 2006-11 (Lopez Bernal et al. 2017)"
INTERVENTION = "2005-01-01"
PARAMS: dict[str, Any] = {
    "intervention_date": INTERVENTION,
    "dependent_variable": "log_rate",
    "time_column": "month",
}
PUBLISHED_SOURCE = (
    "Lopez Bernal, Cummins & Gasparrini (2017), IJE 46(1) 348-355, worked example; "
    "specification of the authors' Rcode.R (model1: Poisson, offset log(stdpop), time + "
    "smokban; model3: quasi-Poisson + 2 harmonic pairs), refitted with statsmodels GLM on "
    "their sicily.csv"
)


def user_csv(path: Path) -> Path:
    """The CSV a user writes from the authors' file: a month date and the log standardised rate
    per 100,000 (``aces / stdpop * 1e5``, the rate of the tutorial)."""
    data = pd.read_csv(DATA)
    frame = pd.DataFrame(
        {
            "month": pd.to_datetime({"year": data["year"], "month": data["month"], "day": 1}),
            "aces": data["aces"],
            "stdpop": data["stdpop"],
            "log_rate": np.log(data["aces"] / data["stdpop"] * 1e5),
        }
    )
    frame["month"] = frame["month"].dt.strftime("%Y-%m-%d")
    frame.to_csv(path, index=False)
    return path


def _measure(workdir: Path, name: str, data: Path, params: dict[str, Any]) -> dict[str, Any]:
    """Run the Measure component on a CSV with one measure config."""
    config = {
        "DATA": {"SOURCE": {"type": "file", "CONFIG": {"path": str(data)}}},
        "MEASUREMENT": {"MODEL": "interrupted_time_series", "PARAMS": params},
    }
    path = workdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    measure = Measure(storage_url=str(workdir / "store"))
    return measure.execute({"initiative_id": name, "measure_config": str(path)})


def statsmodels_ols(slope_change: bool) -> dict[str, Any]:
    """statsmodels OLS + HAC on the same design, written from the tutorial's variables
    (``time`` 1..59, ``smokban``, ``(time - 37) * smokban``), not from our design matrix."""
    import statsmodels.formula.api as smf

    data = pd.read_csv(DATA)
    data["log_rate"] = np.log(data["aces"] / data["stdpop"] * 1e5)
    data["slope"] = (data["time"] - 37) * data["smokban"]
    formula = "log_rate ~ time + smokban" + (" + slope" if slope_change else "")
    maxlags = default_maxlags(len(data))
    fit = smf.ols(formula, data=data).fit(
        cov_type="HAC", cov_kwds={"maxlags": maxlags, "use_correction": True}, use_t=True
    )
    lo, hi = fit.conf_int().loc["smokban"]
    out = {
        "estimate": float(fit.params["smokban"]),
        "se": float(fit.bse["smokban"]),
        "ci_lower": float(lo),
        "ci_upper": float(hi),
        "p_value": float(fit.pvalues["smokban"]),
        "maxlags": maxlags,
    }
    if slope_change:
        out["slope_change"] = float(fit.params["slope"])
    return out


def published_glm(seasonal: bool) -> dict[str, float]:
    """The authors' Poisson specification refitted with statsmodels GLM: rate ratio of the step
    and its 95% CI (Wald, as R's ``ci.lin``). ``seasonal``: quasi-Poisson (Pearson scale) with
    two harmonic pairs of the month (``harmonic(month, 2, 12)``), the tutorial's model3."""
    import statsmodels.api as sm
    import statsmodels.formula.api as smf

    data = pd.read_csv(DATA)
    terms = ["smokban", "time"]
    if seasonal:
        for k in (1, 2):
            angle = 2 * np.pi * k * data["month"] / 12
            data[f"sin{k}"], data[f"cos{k}"] = np.sin(angle), np.cos(angle)
            terms += [f"sin{k}", f"cos{k}"]
    model = smf.glm(
        "aces ~ " + " + ".join(terms),
        data=data,
        family=sm.families.Poisson(),
        offset=np.log(data["stdpop"]),
    )
    fit = model.fit(scale="X2") if seasonal else model.fit()
    lo, hi = fit.conf_int().loc["smokban"]
    return {
        "rate_ratio": float(np.exp(fit.params["smokban"])),
        "ci_lower": float(np.exp(lo)),
        "ci_upper": float(np.exp(hi)),
    }


def rows() -> list[dict[str, Any]]:
    """Ours (through ``Measure``) beside statsmodels OLS + HAC and the published Poisson model;
    estimates on the log scale, with ``rate_ratio`` = exp(estimate) on the published scale."""
    unadjusted = published_glm(seasonal=False)
    seasonal = published_glm(seasonal=True)
    published_range = (seasonal["ci_lower"], seasonal["ci_upper"])
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        csv = user_csv(workdir / "sicily_log_rate.csv")
        for name, spec, slope in (
            ("sicily-level", "log rate, level change (the published step model)", False),
            ("sicily-slope", "log rate, level + slope change", True),
        ):
            result = _measure(workdir, name, csv, {**PARAMS, "slope_change": slope})
            reference = statsmodels_ols(slope)
            envelope = json.loads((Path(result["job_dir"]) / "impact_results.json").read_text())
            estimates = envelope["data"]["impact_estimates"]
            out.append(
                {
                    "study": STUDY,
                    "model": "interrupted_time_series",
                    "specification": spec,
                    "method": f"interrupted_time_series: {spec}",
                    "estimate": result["effect_estimate"],
                    "se": result["standard_error"],
                    "ci_lower": result["ci_lower"],
                    "ci_upper": result["ci_upper"],
                    "p_value": result["p_value"],
                    "sample_size": result["sample_size"],
                    "n": result["sample_size"],
                    "ci_method": result["diagnostics"].get("ci_method"),
                    "period": result["diagnostics"].get("period"),
                    "slope_change": estimates.get("slope_change"),
                    "rate_ratio": float(np.exp(result["effect_estimate"])),
                    "rate_ratio_ci": (
                        float(np.exp(result["ci_lower"])),
                        float(np.exp(result["ci_upper"])),
                    ),
                    "published_estimate": unadjusted["rate_ratio"] if not slope else None,
                    "published_range": published_range,
                    "published_p_value": None,
                    "published_unadjusted": unadjusted,
                    "published_seasonal": seasonal,
                    "published_source": PUBLISHED_SOURCE,
                    "published": (
                        f"rate ratio {unadjusted['rate_ratio']:.3f} "
                        f"[{unadjusted['ci_lower']:.3f}, {unadjusted['ci_upper']:.3f}] "
                        f"(Poisson); seasonally adjusted {seasonal['rate_ratio']:.3f} "
                        f"[{seasonal['ci_lower']:.3f}, {seasonal['ci_upper']:.3f}]"
                    ),
                    "reference_library": "statsmodels OLS + HAC (same design and maxlags)",
                    "reference": "statsmodels OLS + HAC (same design and maxlags)",
                    "reference_estimate": reference["estimate"],
                    "reference_p_value": reference["p_value"],
                    "ref_estimate": reference["estimate"],
                    "ref_se": reference["se"],
                    "ref_ci_lower": reference["ci_lower"],
                    "ref_ci_upper": reference["ci_upper"],
                    "ref_p_value": reference["p_value"],
                    "digits": 4,
                    "checks": (
                        f"exp(estimate) = {np.exp(result['effect_estimate']):.3f} in the "
                        f"published range [{published_range[0]:.3f}, {published_range[1]:.3f}]: "
                        + (
                            "yes"
                            if published_range[0]
                            <= np.exp(result["effect_estimate"])
                            <= published_range[1]
                            else "NO"
                        )
                    ),
                }
            )
    return out


def main() -> None:
    print(
        "| specification | n | ours: level change, log (SE) | ours: rate ratio [95% CI] | "
        "p | statsmodels OLS+HAC: log [95% CI] | published (Poisson) rate ratio |"
    )
    print("|---|---|---|---|---|---|---|")
    for row in rows():
        lo, hi = row["rate_ratio_ci"]
        print(
            f"| {row['specification']} | {row['n']} | {row['estimate']:.4f} ({row['se']:.4f}) "
            f"| {row['rate_ratio']:.3f} [{lo:.3f}, {hi:.3f}] | {row['p_value']:.4f} | "
            f"{row['ref_estimate']:.4f} [{row['ref_ci_lower']:.4f}, {row['ref_ci_upper']:.4f}] "
            f"| {row['published']} |"
        )
        if row["slope_change"] is not None:
            print(f"  slope change per {row['period']}: {row['slope_change']:.5f} (log scale)")
    print(f"\npublished: {PUBLISHED_SOURCE}")


if __name__ == "__main__":
    main()
