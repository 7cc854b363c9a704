"""``EmpiricalBayesAllocate``: fund on posterior expected money return (the shipped default).

ALLOCATE is the pipeline's fan-in, the one step that sees every initiative, so the prior over
returns is estimated here (:mod:`impact_assets.allocate.shrinkage`). Each initiative's three
scenarios are replaced by its posterior (mean, and the central ``interval_level`` interval), with
confidence 1 because the posterior already carries the doubt (reliability replaces the
method-range confidence), and an existing rule chooses:

* ``objective="expected"`` (default): :class:`BayesianAllocate` with all weight on the median,
  i.e. a 0/1 knapsack on posterior means, which is Bayes-optimal for expected money return;
* ``objective="minimax_regret"``: :class:`MinimaxRegretAllocate` over the posterior scenarios, a
  robustness choice;
* ``min_portfolio_worst_return``: an optional floor on the sum of posterior lower bounds.

``predicted_returns`` are the posterior means (forecasts without the optimizer's curse);
``detail.predicted_return_raw`` keeps the raw pilot medians, ``detail.predicted_return_interval``
the posterior intervals and ``detail.shrinkage`` the prior and every initiative's reliability.
"""

from __future__ import annotations

from typing import Any

from impact_assets.allocate.bayesian import BayesianAllocate
from impact_assets.allocate.inputs import check_floor, parse_event
from impact_assets.allocate.minimax import MinimaxRegretAllocate
from impact_assets.allocate.shrinkage import (
    INTERVAL_LEVEL,
    NO_INTERVAL_SE_MULTIPLE,
    ShrinkageConfigError,
    check_params,
    shrink,
)
from impact_assets.allocate.solver import DEFAULT_CORE_SIZE, DEFAULT_NODE_LIMIT, DEFAULT_TIME_LIMIT
from impact_assets.component import PipelineComponent

OBJECTIVES = ("expected", "minimax_regret")
RULE = "empirical_bayes"
#: All weight on the posterior mean: expected value.
EXPECTED_WEIGHTS = {"best": 0.0, "med": 1.0, "worst": 0.0}


class EmpiricalBayesAllocate(PipelineComponent):
    """Shrink every pilot return towards the portfolio's prior, then optimise the posterior.

    Parameters
    ----------
    prior:
        ``"pooled"`` (one prior over all initiatives, default) or ``"method"`` (one per method
        with at least 5 initiatives, pooled for the rest).
    no_interval_se_multiple:
        Prior uncertainty of an estimate without an interval, as a multiple of the median
        standard error (per unit of cost) of the portfolio's measured initiatives. Default 2.0.
    interval_level:
        Level of the intervals: a CI is read as ``estimate +- z * SE`` and the posterior
        scenarios are written at the same level. Default 0.95.
    objective:
        ``"expected"`` (knapsack on posterior means) or ``"minimax_regret"``.
    min_portfolio_worst_return:
        Floor on the sum of the selected posterior lower bounds; ``None`` (default) = off.
    time_limit, core_size, search_node_limit:
        Passed to the solver (see :class:`~impact_assets.allocate.rule.OptimisingAllocate`); the
        same defaults as every optimising rule (``time_limit`` 8 s, ``None`` = proof at any cost).
    """

    RULE = RULE

    def __init__(
        self,
        prior: str = "pooled",
        no_interval_se_multiple: float = NO_INTERVAL_SE_MULTIPLE,
        interval_level: float = INTERVAL_LEVEL,
        objective: str = "expected",
        min_portfolio_worst_return: float | None = None,
        time_limit: float | None = DEFAULT_TIME_LIMIT,
        core_size: int = DEFAULT_CORE_SIZE,
        search_node_limit: int = DEFAULT_NODE_LIMIT,
    ) -> None:
        check_params(prior, no_interval_se_multiple, interval_level)
        if objective not in OBJECTIVES:
            raise ShrinkageConfigError(
                f"ALLOCATE config: field 'objective': must be one of {list(OBJECTIVES)}, "
                f"got {objective!r}"
            )
        self.prior = prior
        self.no_interval_se_multiple = float(no_interval_se_multiple)
        self.interval_level = float(interval_level)
        self.objective = objective
        self.min_portfolio_worst_return = check_floor(min_portfolio_worst_return)
        solver = {
            "min_confidence_threshold": 0.0,
            "min_portfolio_worst_return": self.min_portfolio_worst_return,
            "time_limit": time_limit,
            "core_size": core_size,
            "search_node_limit": search_node_limit,
        }
        self._rule = (
            BayesianAllocate(weights=EXPECTED_WEIGHTS, **solver)
            if objective == "expected"
            else MinimaxRegretAllocate(**solver)
        )

    def params(self) -> dict[str, Any]:
        solver = self._rule.params()
        return {
            "prior": self.prior,
            "no_interval_se_multiple": self.no_interval_se_multiple,
            "interval_level": self.interval_level,
            "objective": self.objective,
            "min_portfolio_worst_return": self.min_portfolio_worst_return,
            "time_limit": solver["time_limit"],
            "core_size": solver["core_size"],
            "search_node_limit": solver["search_node_limit"],
        }

    def posterior_event(self, event: dict[str, Any]) -> tuple[dict[str, Any], list, dict]:
        """The event the inner rule optimises: posterior scenarios, confidence 1."""
        candidates, budget = parse_event(event)  # validation, with its error messages
        items = list(event["initiatives"])
        posteriors, priors = shrink(
            items,
            prior=self.prior,
            no_interval_se_multiple=self.no_interval_se_multiple,
            interval_level=self.interval_level,
        )
        inner = [
            {
                "initiative_id": p.initiative_id,
                "cost": c.cost,
                "confidence": 1.0,
                "return_best": max(p.upper, p.mean),
                "return_median": p.mean,
                "return_worst": min(p.lower, p.mean),
            }
            for p, c in zip(posteriors, candidates, strict=True)
        ]
        return {"initiatives": inner, "budget": budget}, posteriors, priors

    def execute(self, event: dict[str, Any]) -> dict[str, Any]:
        inner_event, posteriors, priors = self.posterior_event(event)
        result = self._rule.execute(inner_event)
        selected = set(result["selected_initiatives"])
        by_id = {p.initiative_id: p for p in posteriors}
        detail = dict(result["detail"])
        detail.update(
            {
                "rule": RULE,
                "solver_rule": self._rule.RULE,
                "objective": self.objective,
                "predicted_return_raw": {i: by_id[i].raw_return for i in sorted(selected)},
                "predicted_return_interval": {
                    i: [by_id[i].lower, by_id[i].upper] for i in sorted(selected)
                },
                "predicted_return_choice": (
                    "posterior mean (empirical Bayes); raw pilot median in predicted_return_raw"
                ),
                "shrinkage": {
                    "prior": self.prior,
                    "no_interval_se_multiple": self.no_interval_se_multiple,
                    "interval_level": self.interval_level,
                    "units": "return per unit of cost",
                    "priors": {k: v.to_dict() for k, v in priors.items()},
                    "initiatives": {p.initiative_id: p.to_dict() for p in posteriors},
                },
            }
        )
        return {**result, "rule": RULE, "detail": detail}
