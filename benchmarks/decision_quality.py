"""Decision-quality benchmark: do the allocation rules fund what truly pays, and are their
predictions honest? (a script, not a timed test; docs/decision_quality.md keeps the table).

K simulated portfolios (default 50) of N initiatives (default 20) cycle over the six methods
(``--no-approximations``: the five statistical ones). Each initiative has its own data from a
standard design of the causal-inference literature (``benchmarks/decision_dgp.py``), its own
sample size, noise, cost and ``value_per_unit``, and a true money return drawn with fat tails
(Azevedo et al. 2020): return per unit of cost ``rho = RHO_MEAN + RHO_SCALE * t_3``, so about 30%
of initiatives truly lose value and a few return several times their cost. The noise of each
measurement, in return-per-cost units, is ``kappa ~ LogUniform(KAPPA_LOW, KAPPA_HIGH)`` (times
``sqrt(n_ref / n)`` for the sample size). The budget is 30% of the portfolio's total cost.

Each initiative is measured once by the real MEASURE model (``get_model(method)``), evaluated by
the real EVALUATE components (``Evaluate`` and ``EvidenceEvaluate``) and every rule allocates with
the real ALLOCATE components. Truth is the simulated true effect of the pilot's estimand (from the
potential outcomes; for approximations through the model's ``true_effect``) times
``value_per_unit``. The oracle is a 0/1 knapsack on the true returns under the same budget.

Per rule: realised true return / oracle's (mean, median, 10th percentile over portfolios), the
share of funded initiatives whose true return is negative, the mean of (predicted - true) / cost
over funded initiatives with its standard error (clustered by portfolio), and the budget used.

Usage::

    python benchmarks/decision_quality.py                       # K=50, N=20, seed 2026
    python benchmarks/decision_quality.py --no-approximations
    python benchmarks/decision_quality.py --calibrate           # the REFERENCE_SE constants
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import decision_dgp as dgp

from impact_assets.config import load_stage_config
from impact_assets.contracts import MeasureResult
from impact_assets.measure.models import get_model
from impact_assets.registry import build_component
from impact_assets.synthetic_portfolio import METHODS

ROOT = Path(__file__).resolve().parents[1]
RHO_MEAN, RHO_SCALE, RHO_DF = 0.3, 0.5, 3
KAPPA_LOW, KAPPA_HIGH = 0.15, 1.5
BUDGET_SHARE = 0.3
EXPECTED = {"best": 0.0, "med": 1.0, "worst": 0.0}


@dataclass
class Initiative:
    initiative_id: str
    method: str
    cost: float
    value_per_unit: float
    true_return: float
    measurement: dict[str, Any]
    evaluations: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: the true noise of the estimate in return-per-cost units (for the reference row only)
    true_se: float = 0.0


def measure(initiative_id: str, sim: dgp.Simulated) -> tuple[dict[str, Any], float | None]:
    """The real MEASURE model on the simulated data: a MeasureResult dict and the truth."""
    model = get_model(sim.method)
    params = model.validate_params(sim.params)
    fit, truth = model.fit_and_true_effect(sim.data, params, simulated=True)
    result = MeasureResult(
        initiative_id=initiative_id,
        effect_estimate=fit.effect_estimate,
        ci_lower=fit.ci_lower,
        ci_upper=fit.ci_upper,
        p_value=fit.p_value,
        sample_size=max(int(fit.n_observations), 30),
        model_type=sim.method,
        diagnostics=fit.diagnostics,
        standard_error=fit.standard_error,
        true_effect=truth,
    )
    return result.to_dict(), truth


def portfolio(
    seed: int,
    k: int,
    n: int,
    methods: tuple[str, ...],
    evaluators,
    noise_scale: float = 1.0,
) -> list[Initiative]:
    """One simulated portfolio (deterministic in ``seed`` and ``k``)."""
    rng = np.random.default_rng([seed, k])
    order = [methods[j % len(methods)] for j in range(n)]
    rng.shuffle(order)
    out = []
    for j, method in enumerate(order):
        ident = f"k{k:03d}-{j:02d}-{method[:6]}"
        cost = float(np.round(rng.uniform(5_000, 40_000) / 500) * 500)
        rho = RHO_MEAN + RHO_SCALE * rng.standard_t(RHO_DF)
        kappa = noise_scale * math.exp(rng.uniform(math.log(KAPPA_LOW), math.log(KAPPA_HIGH)))
        size = dgp.sample_size(method, rng)
        sim = dgp.simulate(method, rng, rho / kappa, size)
        units = dgp.REFERENCE_SE[method] * dgp.UNITS_PER_EFFECT.get(method, 1.0)
        vpu = cost * kappa / units
        measurement, truth = measure(ident, sim)
        item = Initiative(ident, method, cost, vpu, float(truth) * vpu, measurement)
        if method == "metrics_approximation":
            item.true_se = dgp.APPROX_SPREAD * kappa
        else:
            se = measurement["standard_error"]
            if se is None:
                se = (measurement["ci_upper"] - measurement["ci_lower"]) / 3.92
            item.true_se = se * vpu / cost
        event = {**measurement, "cost_to_scale": cost, "value_per_unit": vpu}
        item.evaluations = {name: ev.execute(dict(event)) for name, ev in evaluators.items()}
        out.append(item)
    return out


# --------------------------------------------------------------------------- the rules


def _allocate(component, evaluations: list[dict[str, Any]], budget: float) -> dict[str, Any]:
    return component.execute({"initiatives": evaluations, "budget": budget})


def _point(e: dict[str, Any]) -> dict[str, Any]:
    """The evaluation with confidence 1: its raw point estimate, undiscounted."""
    return {**e, "confidence": 1.0}


def rules() -> dict[str, tuple[str, Callable]]:
    """Rule label -> (evaluator, function(evaluations, budget) -> AllocateResult dict)."""
    evaluate_cfg = load_stage_config(ROOT / "configs" / "stages" / "evaluate.yaml", "evaluate")
    allocate_cfg = load_stage_config(ROOT / "configs" / "stages" / "allocate.yaml", "allocate")
    shipped = allocate_cfg.build()
    knapsack = build_component(
        "BayesianAllocate", {"weights": EXPECTED, "min_portfolio_worst_return": None}
    )
    previous = build_component("MinimaxRegretAllocate", {"min_portfolio_worst_return": None})
    parity = build_component("MinimaxRegretAllocate", {})
    bayes = build_component("BayesianAllocate", {"min_portfolio_worst_return": None})
    eb_mmr = build_component("EmpiricalBayesAllocate", {"objective": "minimax_regret"})
    eb_method = build_component("EmpiricalBayesAllocate", {"prior": "method"})

    def significant(evals, budget):
        kept = [_point(e) for e in evals if not e["returns_collapsed"] and e["return_worst"] > 0]
        return _allocate(knapsack, kept, budget)

    return {
        f"shipped default ({evaluate_cfg.component} + {allocate_cfg.component})": (
            evaluate_cfg.component,
            lambda ev, b: _allocate(shipped, ev, b),
        ),
        "previous default (EvidenceEvaluate + MinimaxRegretAllocate, floor off)": (
            "EvidenceEvaluate",
            lambda ev, b: _allocate(previous, ev, b),
        ),
        "upstream parity (Evaluate + MinimaxRegretAllocate, floor 0)": (
            "Evaluate",
            lambda ev, b: _allocate(parity, ev, b),
        ),
        "naive: knapsack on point estimates x value_per_unit": (
            "EvidenceEvaluate",
            lambda ev, b: _allocate(knapsack, [_point(e) for e in ev], b),
        ),
        "significant only (CI above zero), knapsack on point estimates": (
            "EvidenceEvaluate",
            significant,
        ),
        "Bayesian (EvidenceEvaluate + BayesianAllocate, equal weights, floor off)": (
            "EvidenceEvaluate",
            lambda ev, b: _allocate(bayes, ev, b),
        ),
        "empirical Bayes, minimax regret on the posterior": (
            "EvidenceEvaluate",
            lambda ev, b: _allocate(eb_mmr, ev, b),
        ),
        "empirical Bayes, prior per method": (
            "EvidenceEvaluate",
            lambda ev, b: _allocate(eb_method, ev, b),
        ),
        "reference, not a rule: Bayes with the true prior and true noise": (
            None,
            known_prior_rule,
        ),
    }


def known_prior_rule(items: list[Initiative], budget: float) -> dict[str, Any]:
    """Reference (not a usable rule): Bayes with the simulation's true prior and true noise.

    Posterior mean of ``rho`` under ``rho = RHO_MEAN + RHO_SCALE * t_3`` and
    ``rho_hat ~ N(rho, true_se^2)`` by quadrature, times cost; knapsack on it.
    """
    from scipy import stats

    grid = np.linspace(-15, 15, 6001)
    prior = stats.t.pdf((grid - RHO_MEAN) / RHO_SCALE, RHO_DF)
    knapsack = build_component(
        "BayesianAllocate", {"weights": EXPECTED, "min_portfolio_worst_return": None}
    )
    posterior = []
    for i in items:
        rho_hat = i.measurement["effect_estimate"] * i.value_per_unit / i.cost
        weights = prior * stats.norm.pdf((rho_hat - grid) / i.true_se)
        mean = float(np.sum(weights * grid) / np.sum(weights)) * i.cost
        posterior.append(
            {
                "initiative_id": i.initiative_id,
                "cost": i.cost,
                "confidence": 1.0,
                "return_best": mean,
                "return_median": mean,
                "return_worst": mean,
            }
        )
    return _allocate(knapsack, posterior, budget)


def oracle(items: list[Initiative], budget: float) -> tuple[set[str], float]:
    knapsack = build_component(
        "BayesianAllocate", {"weights": EXPECTED, "min_portfolio_worst_return": None}
    )
    truth = [
        {
            "initiative_id": i.initiative_id,
            "cost": i.cost,
            "confidence": 1.0,
            "return_best": i.true_return,
            "return_median": i.true_return,
            "return_worst": i.true_return,
        }
        for i in items
    ]
    chosen = set(_allocate(knapsack, truth, budget)["selected_initiatives"])
    return chosen, math.fsum(i.true_return for i in items if i.initiative_id in chosen)


# --------------------------------------------------------------------------- the run


@dataclass
class Tally:
    ratios: list[float] = field(default_factory=list)
    funded: int = 0
    negative: int = 0
    errors: list[list[float]] = field(default_factory=list)  # per portfolio
    budget_used: list[float] = field(default_factory=list)


def run(
    k: int, n: int, seed: int, methods: tuple[str, ...], noise_scale: float = 1.0
) -> dict[str, Any]:
    started = time.perf_counter()
    evaluators = {name: build_component(name) for name in ("Evaluate", "EvidenceEvaluate")}
    table = rules()
    tallies = {label: Tally() for label in table}
    skipped = 0
    measure_s = 0.0
    for p in range(k):
        t0 = time.perf_counter()
        items = portfolio(seed, p, n, methods, evaluators, noise_scale)
        measure_s += time.perf_counter() - t0
        budget = round(BUDGET_SHARE * math.fsum(i.cost for i in items), 2)
        _, best = oracle(items, budget)
        if best <= 0:
            skipped += 1
            continue
        by_id = {i.initiative_id: i for i in items}
        for label, (evaluator, allocate) in table.items():
            if evaluator is None:
                result = allocate(items, budget)
            else:
                result = allocate([i.evaluations[evaluator] for i in items], budget)
            chosen = result["selected_initiatives"]
            tally = tallies[label]
            realised = math.fsum(by_id[c].true_return for c in chosen)
            tally.ratios.append(realised / best)
            tally.funded += len(chosen)
            tally.negative += sum(1 for c in chosen if by_id[c].true_return < 0)
            tally.errors.append(
                [
                    (result["predicted_returns"][c] - by_id[c].true_return) / by_id[c].cost
                    for c in chosen
                ]
            )
            tally.budget_used.append(math.fsum(result["budget_allocated"].values()) / budget)
    naive = next(t for label, t in tallies.items() if label.startswith("naive"))
    rows = [summary(label, t, naive) for label, t in tallies.items()]
    return {
        "rows": rows,
        "skipped": skipped,
        "seconds": time.perf_counter() - started,
        "measure_seconds": measure_s,
    }


def clustered_mean(groups: list[list[float]]) -> tuple[float | None, float | None]:
    """Mean over all values and its standard error clustered by group (portfolio)."""
    values = [v for g in groups for v in g]
    if not values:
        return None, None
    mean = math.fsum(values) / len(values)
    scores = [math.fsum(v - mean for v in g) for g in groups if g]
    g = len(scores)
    if g < 2:
        return mean, None
    se = math.sqrt(g / (g - 1) * math.fsum(s * s for s in scores)) / len(values)
    return mean, se


def summary(label: str, t: Tally, naive: Tally) -> dict[str, Any]:
    ratios = np.array(t.ratios)
    paired = ratios - np.array(naive.ratios)
    mean_error, se = clustered_mean(t.errors)
    return {
        "rule": label,
        "mean": float(ratios.mean()),
        "median": float(np.median(ratios)),
        "p10": float(np.quantile(ratios, 0.1)),
        "negative": t.negative / t.funded if t.funded else None,
        "funded": t.funded,
        "error": mean_error,
        "error_se": se,
        "budget_used": float(np.mean(t.budget_used)),
        "vs_naive": float(paired.mean()),
        "vs_naive_se": float(paired.std(ddof=1) / math.sqrt(len(paired)))
        if len(paired) > 1
        else None,
    }


def markdown(result: dict[str, Any], k: int, n: int) -> str:
    lines = [
        f"| rule ({k} portfolios of {n}) | realised / oracle: mean | median | p10 | "
        "funded with negative true return | (predicted - true) / cost, mean (s.e.) | "
        "budget used | mean minus naive's (paired s.e.) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        error = "–" if r["error"] is None else f"{r['error']:+.3f} ({r['error_se']:.3f})"
        negative = "–" if r["negative"] is None else f"{100 * r['negative']:.1f}% of {r['funded']}"
        lines.append(
            f"| {r['rule']} | {r['mean']:.3f} | {r['median']:.3f} | {r['p10']:.3f} | "
            f"{negative} | {error} | {100 * r['budget_used']:.0f}% | "
            f"{r['vs_naive']:+.3f} ({r['vs_naive_se']:.3f}) |"
        )
    return "\n".join(lines)


def calibrate(seeds: int = 20) -> None:
    """Median standard error per unit of effect at the reference design, per method."""
    for method in METHODS:
        if method == "metrics_approximation":
            continue
        ses = []
        for s in range(seeds):
            rng = np.random.default_rng([99, s])
            n = dgp.REFERENCE_N.get(method, 100)
            sim = dgp.GENERATORS[method](rng, 1.0, n)
            m, _ = measure(f"c{s}", sim)
            ses.append(m["standard_error"] or (m["ci_upper"] - m["ci_lower"]) / 3.92)
        units = dgp.UNITS_PER_EFFECT.get(method, 1.0)
        print(f"{method}: median SE per unit of effect = {np.median(ses) / units:.4g}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--portfolios", type=int, default=50)
    parser.add_argument("--initiatives", type=int, default=20)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--no-approximations", action="store_true")
    parser.add_argument("--calibrate", action="store_true")
    parser.add_argument(
        "--noise-scale",
        type=float,
        default=1.0,
        help="multiply every measurement's noise (kappa) by this factor (sensitivity)",
    )
    args = parser.parse_args(argv)
    # an empty significant-only list logs the rule's "no eligible initiatives" warning, and the
    # models log their balance warnings (counted in the results, not needed a thousand times)
    logging.getLogger("impact_assets.allocate").setLevel(logging.ERROR)
    logging.getLogger("impact_assets.measure.models").setLevel(logging.ERROR)
    if args.calibrate:
        calibrate()
        return 0
    methods = tuple(
        m for m in METHODS if not (args.no_approximations and m == "metrics_approximation")
    )
    result = run(args.portfolios, args.initiatives, args.seed, methods, args.noise_scale)
    print(markdown(result, args.portfolios, args.initiatives))
    print(
        f"\nseed {args.seed}, noise scale {args.noise_scale:g}, methods: {', '.join(methods)}; portfolios skipped (no positive "
        f"oracle): {result['skipped']}; {result['seconds']:.1f} s "
        f"(measurement and evaluation {result['measure_seconds']:.1f} s)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
