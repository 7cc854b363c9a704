"""Validation benchmark for the six MEASURE models (a script, not a timed test).

For each model, ``R`` replications of simulated data with a known true effect
(``benchmarks/measure_dgp.py``): bias, RMSE, mean standard error, |bias| / SE, 95% CI coverage,
mean CI width and mean fit time (inference included). A reference row shows naive matching (no
bias correction, plain two-sample SE) under confounding.

Targets: coverage in [0.90, 0.98] for the five statistical models, |bias| <= 0.1 x mean SE,
mean fit time <= 50 ms on 100 units x 92 days.

Usage::

    python benchmarks/measure_validity.py                 # 200 replications
    python benchmarks/measure_validity.py --quick         # 30 replications
    python benchmarks/measure_validity.py --replications 500 --out docs/measure_validity.md
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from measure_dgp import (
    SCENARIOS,
    confounded_matching_scenario,
    naive_matching_scenario,
)

from impact_assets.measure.models import get_model

COVERAGE_RANGE = (0.90, 0.98)
MAX_BIAS_PER_SE = 0.1
MAX_FIT_MS = 50.0
QUICK_REPLICATIONS = 30
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "docs" / "measure_validity.md"
#: Rows of the table: (label, registered model name, scenario, is a statistical target row).
ROWS = [
    ("experiment", "experiment", SCENARIOS["experiment"], True),
    (
        "interrupted_time_series",
        "interrupted_time_series",
        SCENARIOS["interrupted_time_series"],
        True,
    ),
    ("synthetic_control", "synthetic_control", SCENARIOS["synthetic_control"], True),
    (
        "nearest_neighbour_matching",
        "nearest_neighbour_matching",
        SCENARIOS["nearest_neighbour_matching"],
        True,
    ),
    ("subclassification", "subclassification", SCENARIOS["subclassification"], True),
    ("metrics_approximation", "metrics_approximation", SCENARIOS["metrics_approximation"], False),
    (
        "nearest_neighbour_matching, strong confounding",
        "nearest_neighbour_matching",
        confounded_matching_scenario,
        True,
    ),
    (
        "naive matching, strong confounding (reference)",
        "nearest_neighbour_matching",
        naive_matching_scenario,
        False,
    ),
]


METHODS = """## Inference per model (what the CI columns measure)

- experiment: OLS, t interval; by default cluster-robust by product on product-day panels.
  Truth: mean realized effect over the treated rows (the window includes 45 untreated days).
- interrupted_time_series: segmented regression with constant and trend, Newey-West HAC SE
  (maxlags = floor(4 (n/100)^(2/9))), t interval. Truth: the level-shift coefficient of the true
  per-date effect path (a 7-day ramp here), i.e. the quantity the regression targets.
- synthetic_control: simplex weights on the 45 pre-period days for the average of the 30
  treated units; SE = root mean square of 30 in-space placebo ATTs (placebo groups of 30 donors
  fitted on the remaining donors), CI = ATT -/+ t(30) SE; p-value = rank of the post/pre RMSPE
  ratio among the groups. (With one treated unit every donor is a placebo once and the CI comes
  from test inversion: docs/measure.md.)
- nearest_neighbour_matching: Abadie-Imbens bias-corrected matching with replacement (1
  neighbour, no caliper), Abadie-Imbens (2006) variance extended by the influence of the
  estimated bias regression, t interval (df = matched units - 1).
- subclassification: controls trimmed to the treated units' propensity-score range, 5 strata
  on the treated units' score quantiles, regression adjustment within strata (HC2), stratified
  SE, normal interval.
- metrics_approximation: deterministic; CI and p-value are None by design.
"""


@dataclass
class Row:
    """Replication results for one table row."""

    label: str
    statistical: bool
    estimates: list[float] = field(default_factory=list)
    truths: list[float] = field(default_factory=list)
    ses: list[float] = field(default_factory=list)
    covered: list[bool] = field(default_factory=list)
    widths: list[float] = field(default_factory=list)
    ms: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, float | None]:
        """Bias, RMSE, coverage etc.; ``None`` where the model has no such quantity."""
        ms = float(np.mean(self.ms))
        if not self.truths:
            return {"ms": ms}
        err = np.array(self.estimates) - np.array(self.truths)
        out = {
            "truth": float(np.mean(self.truths)),
            "bias": float(err.mean()),
            "bias_mc_se": float(err.std(ddof=1) / np.sqrt(err.size)) if err.size > 1 else None,
            "rmse": float(np.sqrt(np.mean(err**2))),
            "ms": ms,
        }
        if self.ses:
            out["se"] = float(np.mean(self.ses))
            out["bias_per_se"] = abs(out["bias"]) / out["se"]
            out["coverage"] = float(np.mean(self.covered))
            out["width"] = float(np.mean(self.widths))
        return out


def run_row(label: str, model_name: str, scenario, statistical: bool, replications: int) -> Row:
    """Fit ``replications`` simulated data sets (seeds 1..R) and collect the results."""
    model = get_model(model_name)
    row = Row(label, statistical)
    for seed in range(1, replications + 1):
        data, raw = scenario(seed)
        params = model.validate_params(raw)
        start = time.perf_counter()
        fit = model.fit(data, params)
        row.ms.append((time.perf_counter() - start) * 1000.0)
        truth = model.true_effect(data, params)
        if truth is None:
            continue
        row.estimates.append(fit.effect_estimate)
        row.truths.append(truth)
        if fit.ci_lower is not None and fit.standard_error is not None:
            row.ses.append(fit.standard_error)
            row.covered.append(fit.ci_lower <= truth <= fit.ci_upper)
            row.widths.append(fit.ci_upper - fit.ci_lower)
    return row


def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _verdicts(row: Row, stats: dict) -> str:
    parts = []
    if row.statistical:
        cov = stats.get("coverage")
        ok = cov is not None and COVERAGE_RANGE[0] <= cov <= COVERAGE_RANGE[1]
        parts.append(f"coverage {'PASS' if ok else 'FAIL'}")
        ok = stats.get("bias_per_se") is not None and stats["bias_per_se"] <= MAX_BIAS_PER_SE
        verdict = "PASS" if ok else "FAIL"
        mc = stats.get("bias_mc_se")
        if not ok and mc is not None and abs(stats["bias"]) <= 2 * mc:
            verdict += " (within 2 MC s.e. of zero)"
        parts.append(f"bias {verdict}")
    parts.append(f"time {'PASS' if stats['ms'] <= MAX_FIT_MS else 'FAIL'}")
    if not row.statistical and "coverage" in stats:
        parts.append("(reference row, no target)")
    return ", ".join(parts)


def render(rows: list[Row], replications: int, elapsed: float) -> str:
    """The Markdown report."""
    header = (
        "| model | true effect | bias | bias MC s.e. | RMSE | mean SE | abs(bias)/SE | "
        "95% coverage | mean CI width | mean fit ms | verdict |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for row in rows:
        s = row.summary()
        lines.append(
            f"| {row.label} | {_fmt(s.get('truth'))} | {_fmt(s.get('bias'))} | "
            f"{_fmt(s.get('bias_mc_se'))} | {_fmt(s.get('rmse'))} | {_fmt(s.get('se'))} | "
            f"{_fmt(s.get('bias_per_se'), 3)} | {_fmt(s.get('coverage'), 3)} | "
            f"{_fmt(s.get('width'))} | {s['ms']:.1f} | {_verdicts(row, s)} |"
        )
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        "# MEASURE model validity benchmark\n\n"
        f"Generated by `benchmarks/measure_validity.py` on {when}: **{replications} "
        f"replications** per model (seeds 1..{replications}), Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs (shared with other jobs, so times are noisy); total "
        f"{elapsed:.0f} s.\n\n"
        "Data: `benchmarks/measure_dgp.py` (100 units x 92 days, 45 pre / 47 post; ITS uses the "
        "per-date sums, matching and subclassification the 47-day post window aggregated per "
        "unit under confounded assignment; the two 'strong confounding' rows use a 500-unit "
        "cross-section with 4 covariates, `measure_dgp.cross_section`). Targets: coverage in "
        f"[{COVERAGE_RANGE[0]:.2f}, {COVERAGE_RANGE[1]:.2f}] for the five statistical models, "
        f"abs(bias) <= {MAX_BIAS_PER_SE} x mean SE, mean fit time (inference included) <= "
        f"{MAX_FIT_MS:.0f} ms. `bias MC s.e.` is the Monte Carlo standard error of the bias "
        "column: a bias within about two of them is indistinguishable from zero at this "
        "replication count. metrics_approximation is deterministic (no CI, no p-value, no "
        "potential outcomes), so only its time is checked. The naive matching row (no bias "
        "correction, two-sample SE ignoring reused controls) is a reference and is expected "
        "to under-cover.\n\n" + header + "\n".join(lines) + "\n\n" + METHODS
    )


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print the table and write it to ``--out``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replications", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_REPLICATIONS} replications")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="Markdown report ('' = none)")
    parser.add_argument("--only", nargs="*", help="labels of the rows to run (default: all)")
    args = parser.parse_args(argv)
    replications = QUICK_REPLICATIONS if args.quick else args.replications
    start = time.perf_counter()
    rows = []
    for label, name, scenario, statistical in ROWS:
        if args.only and label not in args.only:
            continue
        rows.append(run_row(label, name, scenario, statistical, replications))
        print(f"done {label}", file=sys.stderr, flush=True)
    report = render(rows, replications, time.perf_counter() - start)
    print(report)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(report, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
