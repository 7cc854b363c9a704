"""``EvidenceEvaluate``: range, monotonicity, neutrality of absent inputs, rename invariance."""

from __future__ import annotations

import itertools
import json
import math

import pytest

from impact_assets.contracts import EvaluateResult, ModelType
from impact_assets.evaluate import (
    V1_RANGES,
    EvaluateConfigError,
    EvidenceEvaluate,
    EvidenceParams,
    evidence_confidence,
    evidence_quality,
    parse_event,
)
from impact_assets.registry import ComponentError, build_component

EFFECTS = [-40.0, -1.0, 0.0, 0.3, 2.0, 1e6]
HALF_WIDTHS = [1e6, 100.0, 10.0, 2.0, 1.0, 0.5, 0.1, 0.01, 0.0]  # wide to narrow
SAMPLES = [1, 30, 31, 99, 100, 101, 1000, 10**6]  # small to large
P_VALUES = [1.0, 0.5, 0.2, 0.05, 0.049, 0.001, 0.0]  # weak to strong
DIAGNOSTICS = [
    {},
    {"pre_period_rmse_relative": 0.3},
    {"max_abs_smd_after": 0.2},
    {"share_dropped": 0.25, "max_abs_smd_after": 0.05},
]


def event(**over):
    base = {
        "initiative_id": "alpha",
        "model_type": "experiment",
        "effect_estimate": 2.0,
        "ci_lower": 1.0,
        "ci_upper": 3.0,
        "p_value": 0.01,
        "sample_size": 200,
        "diagnostics": {},
        "cost_to_scale": 5.0,
    }
    base.update(over)
    return base


def conf(**over) -> float:
    m = parse_event(event(**over))
    return evidence_confidence(m, V1_RANGES[m.model_type])


def interval(effect: float, half: float) -> dict:
    return {"effect_estimate": effect, "ci_lower": effect - half, "ci_upper": effect + half}


def non_decreasing(values: list[float]) -> bool:
    return all(a <= b for a, b in itertools.pairwise(values))


# ------------------------------------------------------------------ the documented formula


def test_matches_the_documented_formula_on_a_hand_worked_example():
    # effect 2, CI [1, 3]: r = 1/2 -> precision 1/(1 + 0.5/0.5) = 1/2; p = 0.01 -> 0.99;
    # n = 200 -> 200/300; no diagnostics -> left out, weights 0.4/0.2/0.2 renormalised.
    q = (0.4 * 0.5 + 0.2 * 0.99 + 0.2 * 200 / 300) / 0.8
    out = EvidenceEvaluate().execute(event())
    assert out["details"]["evidence"]["quality"] == pytest.approx(q, rel=1e-12)
    assert out["confidence"] == pytest.approx(0.85 + 0.15 * q, rel=1e-12)
    assert out["strategy"] == "evidence"
    assert out["confidence_range"] == [0.85, 1.0]


def test_diagnostic_factors_follow_the_documented_formula():
    sc = evidence_quality(
        parse_event(
            event(
                model_type="synthetic_control",
                p_value=None,
                diagnostics={"pre_period_rmse_relative": 0.1},
            )
        )
    )
    assert sc.components["diagnostics"] == pytest.approx(0.5)  # rmse == pre_fit_scale
    sub = evidence_quality(
        parse_event(
            event(
                model_type="subclassification",
                p_value=None,
                diagnostics={"share_dropped": 0.2, "max_abs_smd_after": 0.05},
            )
        )
    )
    assert sub.components["diagnostics"] == pytest.approx(0.8 * (1 / (1 + 0.5)))
    fallback = evidence_quality(
        parse_event(
            event(
                model_type="subclassification", diagnostics={"n_strata": 10, "n_strata_dropped": 3}
            )
        )
    )
    assert fallback.components["diagnostics"] == pytest.approx(0.7)


def test_standard_error_gives_precision_without_an_interval():
    m = parse_event(event(ci_lower=None, ci_upper=None, standard_error=0.5))
    score = evidence_quality(m)
    assert score.inputs["precision_source"] == "standard_error"
    r = 1.959963984540054 * 0.5 / 2.0
    assert score.components["precision"] == pytest.approx(1 / (1 + r / 0.5))


# ------------------------------------------------------------------ range and finiteness


def test_confidence_stays_inside_the_method_range_on_a_grid():
    for model_type, effect, half, n, p, diag in itertools.product(
        ModelType, EFFECTS, HALF_WIDTHS[::2], SAMPLES[::3], P_VALUES[::2], DIAGNOSTICS
    ):
        m = parse_event(
            event(
                model_type=model_type.value,
                sample_size=n,
                p_value=p,
                diagnostics=diag,
                **interval(effect, half),
            )
        )
        lo, hi = V1_RANGES[model_type]
        q = evidence_quality(m).quality
        assert 0.0 <= q <= 1.0 and math.isfinite(q)
        assert lo <= evidence_confidence(m, (lo, hi)) <= hi


def test_zero_effect_is_finite():
    wide = evidence_quality(parse_event(event(**interval(0.0, 1.0))))
    assert wide.components["precision"] == 0.0
    assert wide.inputs["relative_half_width"] is None
    exact = evidence_quality(parse_event(event(**interval(0.0, 0.0))))
    assert exact.components["precision"] == 1.0
    out = EvidenceEvaluate().execute(event(**interval(0.0, 1.0)))
    assert json.loads(json.dumps(out, allow_nan=False)) == out


def test_better_evidence_scores_higher_than_poor_evidence():
    strong = conf(sample_size=5000, p_value=0.0001, **interval(2.0, 0.05))
    weak = conf(sample_size=30, p_value=0.8, **interval(2.0, 20.0))
    assert strong > weak
    assert strong > 0.95 and weak < 0.90


# ------------------------------------------------------------------ monotone properties


def test_narrower_interval_never_lowers_confidence():
    for model_type, effect, n, p, diag in itertools.product(
        ModelType, EFFECTS, SAMPLES[::2], P_VALUES[::3], DIAGNOSTICS
    ):
        values = [
            conf(
                model_type=model_type.value,
                sample_size=n,
                p_value=p,
                diagnostics=diag,
                **interval(effect, half),
            )
            for half in HALF_WIDTHS
        ]
        assert non_decreasing(values), (model_type, effect, n, p, diag, values)
    strictly = [conf(**interval(2.0, h)) for h in (4.0, 1.0, 0.1)]
    assert strictly[0] < strictly[1] < strictly[2]


def test_larger_effect_for_the_same_width_never_lowers_confidence():
    for half, n in itertools.product(HALF_WIDTHS, SAMPLES[::3]):
        for sign in (1.0, -1.0):
            values = [
                conf(sample_size=n, **interval(sign * e, half))
                for e in (0.0, 0.01, 0.5, 2.0, 30.0, 1e6)
            ]
            assert non_decreasing(values), (half, n, sign, values)


def test_smaller_standard_error_never_lowers_confidence_without_interval():
    values = [
        conf(ci_lower=None, ci_upper=None, standard_error=se, p_value=None)
        for se in (1e3, 10.0, 1.0, 0.1, 0.0)
    ]
    assert non_decreasing(values)
    assert values[0] < values[-1]


def test_larger_sample_never_lowers_confidence():
    for model_type, effect, half, p, diag in itertools.product(
        ModelType, EFFECTS[::2], HALF_WIDTHS[::3], P_VALUES[::3], DIAGNOSTICS
    ):
        values = [
            conf(
                model_type=model_type.value,
                sample_size=n,
                p_value=p,
                diagnostics=diag,
                **interval(effect, half),
            )
            for n in SAMPLES
        ]
        assert non_decreasing(values), (model_type, effect, half, p, diag, values)
    assert conf(sample_size=30) < conf(sample_size=3000)


def test_smaller_p_value_never_lowers_confidence():
    for model_type, effect, half, n in itertools.product(
        ModelType, EFFECTS[::2], HALF_WIDTHS[::3], SAMPLES[::3]
    ):
        values = [
            conf(model_type=model_type.value, sample_size=n, p_value=p, **interval(effect, half))
            for p in P_VALUES
        ]
        assert non_decreasing(values), (model_type, effect, half, n, values)
    assert conf(p_value=0.9) < conf(p_value=0.001)


@pytest.mark.parametrize(
    ("model_type", "key", "worse_to_better"),
    [
        ("synthetic_control", "pre_period_rmse_relative", [5.0, 1.0, 0.3, 0.1, 0.02, 0.0]),
        ("nearest_neighbour_matching", "max_abs_smd_after", [2.0, 0.5, 0.1, 0.05, 0.0]),
        ("subclassification", "max_abs_smd_after", [2.0, 0.5, 0.1, 0.05, 0.0]),
        ("subclassification", "share_dropped", [1.0, 0.6, 0.2, 0.05, 0.0]),
        ("subclassification", "n_strata_dropped", [10, 6, 2, 1, 0]),
    ],
)
def test_better_diagnostics_never_lower_confidence(model_type, key, worse_to_better):
    for effect, half, n, p in itertools.product(
        EFFECTS[::2], HALF_WIDTHS[::3], SAMPLES[::3], [None, 0.04]
    ):
        extra = {"n_strata": 10} if key == "n_strata_dropped" else {}
        values = [
            conf(
                model_type=model_type,
                sample_size=n,
                p_value=p,
                diagnostics={key: v, **extra},
                **interval(effect, half),
            )
            for v in worse_to_better
        ]
        assert non_decreasing(values), (effect, half, n, p, values)
        assert values[0] < values[-1]


# ------------------------------------------------------------------ absent inputs


def test_absent_p_value_is_neutral_not_zero():
    for half, n in itertools.product(HALF_WIDTHS[1:-1], SAMPLES[::2]):
        weakest = conf(p_value=1.0, sample_size=n, **interval(2.0, half))
        absent = conf(p_value=None, sample_size=n, **interval(2.0, half))
        strongest = conf(p_value=0.0, sample_size=n, **interval(2.0, half))
        assert weakest <= absent <= strongest
    assert conf(p_value=None) != conf(p_value=0.0)
    score = evidence_quality(parse_event(event(p_value=None)))
    assert score.components["significance"] is None
    assert "significance" not in score.weights_used
    assert sum(score.weights_used.values()) == pytest.approx(1.0)


def test_absent_diagnostics_are_neutral():
    for model_type, key in [
        ("synthetic_control", "pre_period_rmse_relative"),
        ("nearest_neighbour_matching", "max_abs_smd_after"),
        ("subclassification", "share_dropped"),
    ]:
        worst = conf(model_type=model_type, diagnostics={key: 1.0})
        absent = conf(model_type=model_type, diagnostics={})
        perfect = conf(model_type=model_type, diagnostics={key: 0.0})
        assert worst < absent < perfect, model_type


def test_unusable_diagnostics_are_ignored_and_listed():
    score = evidence_quality(
        parse_event(
            event(
                model_type="subclassification",
                diagnostics={
                    "share_dropped": 1.5,
                    "max_abs_smd_after": "n/a",
                    "pre_period_rmse_relative": None,
                    "n_strata": 2,
                    "n_strata_dropped": 5,
                    "ci_method": "bootstrap",
                },
            )
        )
    )
    assert score.components["diagnostics"] is None
    assert sorted(score.inputs["ignored_diagnostics"]) == sorted(
        ["share_dropped", "max_abs_smd_after", "n_strata_dropped", "n_strata"]
    )
    assert score.inputs["diagnostics_used"] == {}
    assert (
        score.quality
        == evidence_quality(parse_event(event(model_type="subclassification"))).quality
    )


def test_no_interval_gets_the_conservative_precision_and_never_beats_an_interval():
    no_ci = parse_event(
        event(model_type="metrics_approximation", ci_lower=None, ci_upper=None, p_value=None)
    )
    score = evidence_quality(no_ci)
    assert score.inputs["precision_source"] == "unknown"
    assert score.components["precision"] == 0.0
    for half in HALF_WIDTHS:
        with_ci = conf(model_type="metrics_approximation", p_value=None, **interval(2.0, half))
        assert (
            conf(model_type="metrics_approximation", ci_lower=None, ci_upper=None, p_value=None)
            <= with_ci
        )
    generous = evidence_quality(no_ci, EvidenceParams(unknown_precision=0.5))
    assert generous.components["precision"] == 0.5


def test_collapsed_output_with_evidence():
    out = EvidenceEvaluate().execute(
        event(model_type="metrics_approximation", ci_lower=None, ci_upper=None, p_value=None)
    )
    assert out["returns_collapsed"] is True
    assert 0.20 <= out["confidence"] <= 0.39
    EvaluateResult.from_dict(out)


# ------------------------------------------------------------------ invariance and determinism


def test_renaming_an_initiative_does_not_change_anything_but_the_id():
    base = EvidenceEvaluate().execute(event(initiative_id="alpha"))
    for name in ("beta", "init-001", "recommendation-engine-v2", "ü-unicode", "x" * 300):
        out = EvidenceEvaluate().execute(event(initiative_id=name))
        assert out["confidence"] == base["confidence"]
        assert {**out, "initiative_id": "alpha"} == base


def test_value_per_unit_does_not_change_confidence():
    assert conf(value_per_unit=1000.0) == conf()


def test_deterministic_and_input_not_mutated():
    ev = event(diagnostics={"max_abs_smd_after": 0.07})
    snapshot = json.loads(json.dumps(ev))
    a = EvidenceEvaluate().execute(ev)
    b = EvidenceEvaluate().execute(ev)
    assert a == b
    assert ev == snapshot


# ------------------------------------------------------------------ configuration


def test_weights_change_the_result_as_documented():
    insensitive = EvidenceEvaluate(weights={"significance": 0.0})
    a = insensitive.execute(event(p_value=0.9))["confidence"]
    b = insensitive.execute(event(p_value=0.0001))["confidence"]
    assert a == b
    only_sample = EvidenceEvaluate(weights={"precision": 0, "significance": 0, "diagnostics": 0})
    out = only_sample.execute(event(sample_size=100))
    assert out["details"]["evidence"]["quality"] == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"weights": {"luck": 1.0}}, "weights: unknown component(s) ['luck']"),
        ({"weights": {"precision": -1}}, "weights['precision']: must be a finite number >= 0"),
        ({"weights": {"precision": 0, "sample": 0}}, "precision + sample must be > 0"),
        ({"weights": [0.1]}, "weights: must be a mapping"),
        ({"precision_scale": 0}, "precision_scale: must be > 0, got 0"),
        ({"sample_scale": -5}, "sample_scale: must be > 0, got -5"),
        ({"pre_fit_scale": math.nan}, "pre_fit_scale: must be a finite number"),
        ({"balance_scale": "0.1"}, "balance_scale: must be a finite number"),
        ({"unknown_precision": 1.5}, "unknown_precision: must be within [0, 1], got 1.5"),
    ],
)
def test_parameters_are_validated(kwargs, expected):
    with pytest.raises(EvaluateConfigError) as info:
        EvidenceEvaluate(**kwargs)
    assert expected in str(info.value)
    with pytest.raises(ComponentError):
        build_component("EvidenceEvaluate", kwargs)


def test_built_through_the_registry_and_params_round_trip():
    component = build_component(
        "EvidenceEvaluate", {"weights": {"sample": 0.5}, "sample_scale": 50, "ranges": None}
    )
    assert isinstance(component, EvidenceEvaluate)
    params = component.describe()["params"]
    assert params["weights"] == {
        "precision": 0.4,
        "significance": 0.2,
        "sample": 0.5,
        "diagnostics": 0.2,
    }
    assert params["sample_scale"] == 50.0
    assert json.loads(json.dumps(params)) == params
    assert EvidenceEvaluate(**params).execute(event()) == component.execute(event())
