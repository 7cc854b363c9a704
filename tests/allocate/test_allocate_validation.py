"""Input and configuration validation messages (spec Part D item 8, §B4)."""

from __future__ import annotations

import re

import pytest

from impact_assets.allocate.bayesian import BayesianAllocate
from impact_assets.allocate.inputs import AllocationInputError
from impact_assets.allocate.minimax import MinimaxRegretAllocate
from impact_assets.allocate.mock import MockAllocate
from tests.allocate.allocate_reference import initiative

RULES = [MinimaxRegretAllocate, BayesianAllocate, MockAllocate]


def _event(**override):
    item = initiative("x1", 3, 10, 7, 1, 0.9)
    item.update(override)
    return {"initiatives": [item], "budget": 10}


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"budget": 1}, "ALLOCATE input: missing required field 'initiatives'"),
        ({"initiatives": []}, "ALLOCATE input: missing required field 'budget'"),
        (
            {"initiatives": [initiative("a", 1, 2, 1, 0, 0.5)] * 2, "budget": 1},
            "ALLOCATE input: initiative 'a': field 'initiative_id': duplicate id",
        ),
        (_event(cost=0), "ALLOCATE input: initiative 'x1': field 'cost': must be > 0, got 0.0"),
        (_event(cost=-2), "ALLOCATE input: initiative 'x1': field 'cost': must be > 0, got -2.0"),
        (
            _event(return_median=float("nan")),
            "ALLOCATE input: initiative 'x1': field 'return_median': must be finite, got nan",
        ),
        (
            _event(return_best=float("inf")),
            "ALLOCATE input: initiative 'x1': field 'return_best': must be finite, got inf",
        ),
        (
            _event(confidence=1.5),
            "ALLOCATE input: initiative 'x1': field 'confidence': must be within [0, 1], got 1.5",
        ),
        (
            _event(confidence=-0.1),
            "ALLOCATE input: initiative 'x1': field 'confidence': must be within [0, 1], got -0.1",
        ),
        (
            _event(return_worst=8),
            "ALLOCATE input: initiative 'x1': field 'return_median': must satisfy "
            "return_worst <= return_median <= return_best, got 8.0 <= 7.0 <= 10.0",
        ),
        (
            _event(cost="3"),
            "ALLOCATE input: initiative 'x1': field 'cost': must be a number, got '3'",
        ),
        (
            {"initiatives": [], "budget": float("nan")},
            "ALLOCATE input: initiative '<portfolio>': field 'budget': must be finite, got nan",
        ),
        (
            {"initiatives": [], "budget": -5},
            "ALLOCATE input: field 'budget': must be >= 0, got -5.0",
        ),
    ],
)
def test_event_validation_messages(rule, event, message):
    with pytest.raises(AllocationInputError, match=re.escape(message)):
        rule().execute(event)


def test_negative_confidence_is_rejected_not_silently_dropped():
    # Upstream drops c < 0 silently with the default threshold 0 (spec §B2); we reject it.
    with pytest.raises(AllocationInputError, match="confidence"):
        MinimaxRegretAllocate().execute(_event(confidence=-0.5))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"min_confidence_threshold": 1.2},
            "ALLOCATE config: field 'min_confidence_threshold': must be within [0, 1], got 1.2",
        ),
        (
            {"min_portfolio_worst_return": float("nan")},
            "field 'min_portfolio_worst_return': must be finite, got nan",
        ),
        ({"time_limit": 0}, "ALLOCATE config: field 'time_limit': must be > 0 seconds, got 0.0"),
        ({"core_size": -1}, "ALLOCATE config: field 'core_size': must be an integer >= 0, got -1"),
    ],
)
def test_config_validation_messages(kwargs, message):
    for rule in (MinimaxRegretAllocate, BayesianAllocate):
        with pytest.raises(AllocationInputError, match=re.escape(message)):
            rule(**kwargs)


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ({"best": 0.5, "med": 0.5}, "weights keys must be exactly ['best', 'med', 'worst']"),
        (
            {"best": 0.5, "med": 0.5, "worst": 0.0, "extra": 0.0},
            "weights keys must be exactly ['best', 'med', 'worst']",
        ),
        ({"best": -0.1, "med": 0.6, "worst": 0.5}, "Weights must be non-negative."),
        ({"best": 0.5, "med": 0.5, "worst": 0.5}, "Weights must sum to 1."),
        ([0.3, 0.3, 0.4], "weights must be a mapping"),
    ],
)
def test_bayesian_weight_validation(weights, message):
    with pytest.raises(AllocationInputError, match=re.escape(message)):
        BayesianAllocate(weights=weights)


def test_bayesian_weights_within_1e9_of_one_are_accepted():
    rule = BayesianAllocate(weights={"best": 0.2, "med": 0.3, "worst": 0.5 + 5e-10})
    assert rule.params()["weights"]["worst"] == 0.5 + 5e-10
