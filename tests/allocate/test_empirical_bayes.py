"""Empirical-Bayes shrinkage (allocate/shrinkage.py) and EmpiricalBayesAllocate."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest

from impact_assets.allocate.empirical_bayes import EmpiricalBayesAllocate
from impact_assets.allocate.inputs import AllocationInputError
from impact_assets.allocate.shrinkage import ShrinkageConfigError, shrink, z_of
from impact_assets.config import load_stage_config
from impact_assets.contracts import AllocateResult
from impact_assets.registry import build_component

Z = z_of(0.95)
ROOT = Path(__file__).resolve().parents[2]


def evaluation(ident, cost, r, s=None, *, vpu=1.0, method="experiment", se_field=False):
    """An EVALUATE result dict with return per cost ``r`` and SE per cost ``s`` (None: no CI)."""
    median = r * cost
    details = {}
    if s is None:
        best = worst = median
    else:
        best, worst = median + Z * s * cost, median - Z * s * cost
        if se_field:
            details["standard_error"] = s * cost / vpu
    return {
        "initiative_id": ident,
        "cost": float(cost),
        "confidence": 0.9,
        "return_best": best,
        "return_median": median,
        "return_worst": worst,
        "model_type": method,
        "sample_size": 100,
        "returns_collapsed": s is None,
        "value_per_unit": vpu,
        "details": details,
    }


def test_hand_computed_example():
    # r = 0, 0, 0, 0, 1, 1, 2, 2, 4, 10 per unit cost, all with SE 1 per unit cost; costs 2.
    # DerSimonian-Laird with equal weights: mu_w = 2, Q = 16 + 2 + 0 + 4 + 64 = 86,
    # denominator = 10 - 10/10 = 9, tau2 = (86 - 9) / 9 = 77/9, mu = 2,
    # B = (77/9) / (77/9 + 1) = 77/86, var(mu) = 1 / (10 * 9/86) = 43/45,
    # posterior of r = 10: 2 + 77/86 * 8 = 394/43; variance 77/86 + (9/86)^2 * 43/45 = 779/860.
    returns = [0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 2.0, 2.0, 4.0, 10.0]
    items = [
        evaluation(f"i{k}", 2.0, r, 1.0, vpu=10.0, se_field=True) for k, r in enumerate(returns)
    ]
    posteriors, priors = shrink(items)
    assert priors["pooled"].mu == pytest.approx(2.0, rel=1e-12)
    assert priors["pooled"].tau2 == pytest.approx(77 / 9, rel=1e-12)
    assert priors["pooled"].var_mu == pytest.approx(43 / 45, rel=1e-12)
    last = posteriors[-1]
    assert last.se_source == "standard_error"
    assert last.reliability == pytest.approx(77 / 86, rel=1e-12)
    assert last.mean == pytest.approx(2 * 394 / 43, rel=1e-12)
    assert last.sd == pytest.approx(2 * math.sqrt(779 / 860), rel=1e-12)
    assert last.lower == pytest.approx(2 * (394 / 43 - Z * math.sqrt(779 / 860)), rel=1e-12)
    # the same numbers read from the CI instead of the standard error
    from_ci, _ = shrink([{**i, "details": {}} for i in items])
    assert from_ci[-1].se_source == "confidence_interval"
    assert from_ci[-1].mean == pytest.approx(last.mean, rel=1e-9)
    # fewer than 10 initiatives: no prior, the estimate with its own SE
    few, priors = shrink(items[-4:])
    assert priors["pooled"].mu is None
    assert few[-1].mean == pytest.approx(20.0) and few[-1].sd == pytest.approx(2.0)


def test_no_interval_estimate_is_never_certain():
    pairs = [(0.1, 0.2), (0.3, 0.4), (0.5, 0.3), (0.2, 0.3), (-0.1, 0.25), (0.6, 0.35)]
    pairs += [(0.0, 0.3), (0.4, 0.5), (0.2, 0.2), (0.5, 0.3)]
    measured = [evaluation(f"m{k}", 10.0, r, s) for k, (r, s) in enumerate(pairs)]
    approx = evaluation("approx", 10.0, 0.5, None, method="metrics_approximation")
    posteriors, _ = shrink([*measured, approx])
    by_id = {p.initiative_id: p for p in posteriors}
    a = by_id["approx"]
    # 2 x the median SE of the measured ones (0.3 per unit cost), in money
    assert a.se == pytest.approx(2.0 * 0.3 * 10.0)
    assert a.se_source == "no interval: prior uncertainty"
    assert 0.0 < a.reliability < 1.0 and a.sd > 0.0 and a.lower < a.mean < a.upper
    # an approximation is shrunk more than a measurement with the same raw return
    assert a.reliability < by_id["m2"].reliability
    assert abs(a.mean - a.raw_return) > abs(by_id["m2"].mean - by_id["m2"].raw_return)
    # a portfolio of approximations only, and a single one: still uncertain
    alone, _ = shrink([approx])
    assert alone[0].sd > 0 and alone[0].reliability == 1.0
    only = [evaluation(f"a{k}", 5.0, r, None) for k, r in enumerate([0.0, 0.0, 0.0])]
    assert all(p.sd > 0 for p in shrink(only)[0])


def test_shrinkage_config_errors():
    with pytest.raises(
        ShrinkageConfigError, match=r"field 'prior': must be one of \['pooled', 'method'\], got 'x'"
    ):
        EmpiricalBayesAllocate(prior="x")
    with pytest.raises(
        ShrinkageConfigError, match="field 'no_interval_se_multiple': must be > 0, got 0"
    ):
        EmpiricalBayesAllocate(no_interval_se_multiple=0)
    with pytest.raises(
        ShrinkageConfigError, match="field 'interval_level': must be > 0 and < 1, got 1.5"
    ):
        EmpiricalBayesAllocate(interval_level=1.5)
    with pytest.raises(ShrinkageConfigError, match="field 'objective'"):
        EmpiricalBayesAllocate(objective="max")
    with pytest.raises(AllocationInputError, match="initiative 'x': field 'cost': must be > 0"):
        EmpiricalBayesAllocate().execute(
            {"initiatives": [{**evaluation("x", 1.0, 1.0, 0.1), "cost": 0.0}], "budget": 1.0}
        )


def _portfolio():
    rng = random.Random(3)
    items = []
    for k in range(12):
        method = "metrics_approximation" if k % 4 == 3 else "experiment"
        s = None if method == "metrics_approximation" else rng.uniform(0.05, 0.8)
        items.append(
            evaluation(f"i{k:02d}", rng.uniform(5, 40), rng.gauss(0.3, 0.6), s, method=method)
        )
    return {"initiatives": items, "budget": 60.0}


def test_predictions_are_posterior_means_and_contract_holds():
    event = _portfolio()
    out = EmpiricalBayesAllocate().execute(event)
    result = AllocateResult.from_dict(out)
    assert out["rule"] == "empirical_bayes" and out["status"] == "optimal"
    shrunk = out["detail"]["shrinkage"]["initiatives"]
    raw = {i["initiative_id"]: i["return_median"] for i in event["initiatives"]}
    for ident in result.selected_initiatives:
        assert out["predicted_returns"][ident] == shrunk[ident]["posterior_mean"]
        assert out["detail"]["predicted_return_raw"][ident] == raw[ident]
        lo, hi = out["detail"]["predicted_return_interval"][ident]
        assert lo < out["predicted_returns"][ident] < hi
    # the knapsack maximises the posterior expected return: no unselected affordable initiative
    # with a positive posterior mean fits in the budget left
    left = out["detail"]["budget_left"]
    for ident, post in shrunk.items():
        if ident not in result.selected_initiatives and post["posterior_mean"] > 0:
            cost = next(i["cost"] for i in event["initiatives"] if i["initiative_id"] == ident)
            assert cost > left
    json.dumps(out)


def test_deterministic_and_independent_of_input_order():
    event = _portfolio()
    first = EmpiricalBayesAllocate().execute(event)
    assert EmpiricalBayesAllocate().execute(event) == first
    shuffled = list(event["initiatives"])
    random.Random(1).shuffle(shuffled)
    other = EmpiricalBayesAllocate().execute({**event, "initiatives": shuffled})
    assert set(other["selected_initiatives"]) == set(first["selected_initiatives"])
    assert other["predicted_returns"] == first["predicted_returns"]


def test_params_round_trip_and_registry():
    component = build_component("EmpiricalBayesAllocate", {"objective": "minimax_regret"})
    assert type(component)(**component.params()).params() == component.params()
    out = component.execute(_portfolio())
    assert out["detail"]["solver_rule"] == "minimax_regret"


def test_shipped_default_is_empirical_bayes():
    for path in (
        ROOT / "configs" / "stages" / "allocate.yaml",
        ROOT / "configs" / "examples" / "portfolio-30" / "stages" / "allocate.yaml",
    ):
        assert isinstance(load_stage_config(path, "allocate").build(), EmpiricalBayesAllocate)
