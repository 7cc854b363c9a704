"""Matching and subclassification on the shapes of published studies (issue 16).

Row-order invariance, Abadie-Imbens ties, the caliper's estimand, one set of defaults, the
balance warning and the 185-treated-among-16,000-controls case of the NSW/CPS data (the small
data shipped in ``benchmarks/data``, see its README).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from impact_assets.evaluate import V1_RANGES, evidence_confidence, parse_event
from impact_assets.measure.defaults import MATCHING_DEFAULTS, MEASURE_DEFAULTS
from impact_assets.measure.models import get_model
from impact_assets.measure.models._balance import SMD_POOR

DATA = Path(__file__).resolve().parents[2] / "benchmarks" / "data"
COVARIATES = ["age", "educ", "black", "hisp", "marr", "nodegree", "re74", "re75"]
RAW = {"treatment_column": "treat", "covariate_columns": COVARIATES, "dependent_variable": "re78"}
EXPERIMENTAL_ATT = 1794.34  # DW NSW sample, treated minus control mean of re78


@pytest.fixture(scope="module")
def nsw_cps() -> pd.DataFrame:
    """NSW treated (185) + CPS-1 controls (15,992): the issue's failure shape."""
    nsw = pd.read_csv(DATA / "nsw_dw.csv")
    cps = pd.read_csv(DATA / "cps1_controls.csv.gz")
    return pd.concat([nsw[nsw["treat"] == 1], cps], ignore_index=True)


def _fit(name: str, data: pd.DataFrame, raw: dict):
    model = get_model(name)
    params = model.validate_params(raw)
    return model.fit(data, params)


def _same(a, b) -> None:
    assert a.effect_estimate == b.effect_estimate
    assert a.standard_error == b.standard_error
    assert (a.ci_lower, a.ci_upper, a.p_value) == (b.ci_lower, b.ci_upper, b.p_value)
    assert a.diagnostics == b.diagnostics


@pytest.mark.parametrize("name", ["nearest_neighbour_matching", "subclassification"])
def test_shuffled_rows_give_the_identical_result(nsw_cps, name):
    first = _fit(name, nsw_cps, RAW)
    for seed in (1, 2):
        shuffled = nsw_cps.sample(frac=1.0, random_state=seed)
        _same(first, _fit(name, shuffled, RAW))  # index kept
        _same(first, _fit(name, shuffled.reset_index(drop=True), RAW))  # index lost
    assert first.ci_lower <= EXPERIMENTAL_ATT <= first.ci_upper


def test_shuffled_rows_with_unit_ids_give_identical_artifacts(nsw_cps):
    data = nsw_cps.assign(product_id=[f"U{i:05d}" for i in range(len(nsw_cps))]).head(3000)
    first = _fit("nearest_neighbour_matching", data, RAW)
    again = _fit("nearest_neighbour_matching", data.sample(frac=1.0, random_state=5), RAW)
    _same(first, again)
    pd.testing.assert_frame_equal(
        first.artifacts["matched_data_att"], again.artifacts["matched_data_att"]
    )


def _tie_data(order: list[int]) -> pd.DataFrame:
    """Treated unit T0 at x = 0 has two controls at distance 1 (x = -1 and x = 1), outcomes 10
    and 20; the other units are far away."""
    rows = [
        ("T0", 1, 0.0, 100.0),
        ("C_left", 0, -1.0, 10.0),
        ("C_right", 0, 1.0, 20.0),
        ("T1", 1, 50.0, 0.0),
        ("C_far", 0, 52.0, 0.0),
        ("T2", 1, 100.0, 0.0),
        ("C_far2", 0, 97.0, 0.0),
    ]
    frame = pd.DataFrame(rows, columns=["product_id", "treat", "x", "y"])
    return frame.iloc[order].reset_index(drop=True)


def test_ties_at_the_mth_distance_are_all_used_with_equal_weight():
    raw = {
        "treatment_column": "treat",
        "covariate_columns": ["x"],
        "dependent_variable": "y",
        "bias_correction": False,
    }
    forward = _fit("nearest_neighbour_matching", _tie_data(list(range(7))), raw)
    backward = _fit("nearest_neighbour_matching", _tie_data(list(range(6, -1, -1))), raw)
    _same(forward, backward)
    pairs = forward.artifacts["matched_data_att"]
    tied = pairs[pairs["treated_unit"] == "T0"]
    assert sorted(tied["control_unit"]) == ["C_left", "C_right"]
    assert tied["weight"].tolist() == [0.5, 0.5]
    # T0's imputed control outcome is the mean of the tied controls: 100 - 15 = 85
    assert forward.impact_estimates["att"] == pytest.approx((85.0 + 0.0 + 0.0) / 3)


def test_config_direct_call_and_benchmark_share_the_matching_defaults(dgp):
    model = get_model("nearest_neighbour_matching")
    direct = model.validate_params({"treatment_column": "t", "covariate_columns": ["x"]})
    config_params = {**MEASURE_DEFAULTS["MEASUREMENT"]["PARAMS"], "treatment_column": "t"}
    via_config = model.validate_params({**config_params, "covariate_columns": ["x"]})
    _, bench_raw = dgp.matching_scenario(0)
    bench = model.validate_params(bench_raw)
    for key, value in MATCHING_DEFAULTS.items():
        assert direct[key] == via_config[key] == bench[key] == value, key


def _outlier_data() -> pd.DataFrame:
    rng = np.random.default_rng(4)
    n = 300
    x = rng.normal(0, 1, n)
    treated = rng.random(n) < 0.3
    x[np.flatnonzero(treated)[:3]] = [8.0, 9.0, 10.0]  # three treated far from every control
    y = 2 * x + 5 * treated + rng.normal(size=n)
    return pd.DataFrame({"treat": treated.astype(int), "x": x, "y": y})


def test_caliper_reports_dropped_treated_and_the_estimand_it_estimates():
    data = _outlier_data()
    n_t = int(data["treat"].sum())
    raw = {"treatment_column": "treat", "covariate_columns": ["x"], "dependent_variable": "y"}
    full = _fit("nearest_neighbour_matching", data, raw)
    cut = _fit("nearest_neighbour_matching", data, {**raw, "caliper": 0.5})
    assert full.estimand == "att" and full.diagnostics["n_unmatched_treated"] == 0
    assert "warnings" not in full.diagnostics
    assert cut.diagnostics["n_unmatched_treated"] == 3
    assert cut.diagnostics["share_unmatched_treated"] == pytest.approx(3 / n_t)
    assert cut.estimand == f"ATT on the {n_t - 3} matched treated units (3 of {n_t} dropped)"
    assert cut.diagnostics["estimand_reported"] == cut.estimand
    assert any("left 3 of" in w for w in cut.diagnostics["warnings"])

    def confidence(fit) -> float:
        event = {
            "initiative_id": "nsw",
            "model_type": "nearest_neighbour_matching",
            "effect_estimate": 5.0,
            "ci_lower": 4.0,
            "ci_upper": 6.0,
            "p_value": 0.01,
            "sample_size": 300,
            "diagnostics": {**fit.diagnostics, "max_abs_smd_after": 0.05},
            "cost_to_scale": 1.0,
        }
        m = parse_event(event)
        return evidence_confidence(m, V1_RANGES[m.model_type])

    assert confidence(cut) < confidence(full)  # EVALUATE sees the dropped treated units


def _confounded(seed: int = 0, n: int = 2000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, n)
    treated = rng.random(n) < 1 / (1 + np.exp(-2.5 * x))
    y = 3 * x + 1.0 * treated + rng.normal(size=n)
    return pd.DataFrame({"treat": treated, "x": x, "y": y})


def test_poor_balance_is_warned_in_result_and_log_and_lowers_confidence(caplog):
    data = _confounded()
    raw = {"treatment_column": "treat", "covariate_columns": ["x"], "dependent_variable": "y"}
    with caplog.at_level(logging.WARNING, logger="impact_assets.measure.models"):
        coarse = _fit(
            "subclassification", data, {**raw, "n_strata": 1, "regression_adjustment": False}
        )
    fine = _fit("subclassification", data, {**raw, "n_strata": 10})
    smd = coarse.diagnostics["max_abs_smd_after"]
    assert smd > SMD_POOR and coarse.diagnostics["balance_poor"] is True
    expected = (
        "subclassification: poor covariate balance after adjustment: max absolute standardized "
        f"mean difference {smd:.2f} (covariate 'x') exceeds 0.25 (Stuart 2010); the estimate "
        "may be biased by the remaining imbalance"
    )
    assert coarse.diagnostics["warnings"] == [expected]
    assert expected in caplog.messages
    assert fine.diagnostics["max_abs_smd_after"] <= SMD_POOR
    assert fine.diagnostics["balance_poor"] is False and "warnings" not in fine.diagnostics

    def confidence(fit) -> float:
        event = {
            "initiative_id": "x",
            "model_type": "subclassification",
            "effect_estimate": 1.0,
            "ci_lower": 0.5,
            "ci_upper": 1.5,
            "p_value": 0.01,
            "sample_size": 2000,
            "diagnostics": fit.diagnostics,
            "cost_to_scale": 1.0,
        }
        m = parse_event(event)
        return evidence_confidence(m, V1_RANGES[m.model_type])

    assert confidence(coarse) < confidence(fine)


def test_issue_case_185_treated_among_16000_controls(nsw_cps):
    """Pooled-score quintiles left three of five strata without a treated unit and a max |SMD|
    of 1.79; strata on the treated units' scores after trimming hold both arms everywhere."""
    fit = _fit("subclassification", nsw_cps, RAW)
    details = fit.artifacts["stratum_details"]
    d = fit.diagnostics
    assert d["n_strata"] == 5 and d["n_strata_dropped"] == 0 and d["share_dropped"] == 0.0
    assert (details["n_treated"] >= 30).all() and (details["n_control"] >= 1).all()
    assert details["n_treated"].sum() == 185
    assert d["n_trimmed"] > 0  # controls outside the treated units' score range
    assert d["max_abs_smd_after"] < SMD_POOR < d["max_abs_smd_before"]
    assert fit.estimand == "att"
    assert fit.ci_lower <= EXPERIMENTAL_ATT <= fit.ci_upper


def test_nsw_experiment_difference_in_means_and_published_se():
    nsw = pd.read_csv(DATA / "nsw_dw.csv")
    model = get_model("experiment")
    neyman = model.fit(nsw, model.validate_params({"formula": "re78 ~ treat"}))
    pooled = model.fit(
        nsw, model.validate_params({"formula": "re78 ~ treat", "cov_type": "nonrobust"})
    )
    diff = nsw.groupby("treat")["re78"].mean()
    assert neyman.effect_estimate == pytest.approx(diff[1] - diff[0])
    arms = nsw.groupby("treat")["re78"]
    assert neyman.standard_error == pytest.approx(np.sqrt((arms.var() / arms.size()).sum()))
    assert neyman.model_summary["cov_type"] == "HC2"
    assert round(pooled.standard_error) == 633  # Dehejia & Wahba (1999), Table 3
    assert model.sample_size(nsw, model.validate_params({"formula": "re78 ~ treat"})) == 445


def test_measure_warnings_reach_the_outcome_report():
    from impact_assets import reporting, steps

    def record(phase: str, warnings: list[str]) -> dict:
        return {
            "initiative_id": "nsw",
            "phase": phase,
            "effect_estimate": 2.0,
            "ci_lower": 1.0,
            "ci_upper": 3.0,
            "p_value": 0.01,
            "sample_size": 100 if phase == "pilot" else 200,
            "model_type": "subclassification",
            "diagnostics": {"warnings": warnings} if warnings else {},
        }

    text = "subclassification: poor covariate balance after adjustment: max absolute ..."
    report = steps.build_outcome_report(
        record("pilot", [text]),
        {"initiative_id": "nsw", "confidence": 0.5},
        {
            "selected_initiatives": ["nsw"],
            "predicted_returns": {"nsw": 2.0},
            "budget_allocated": {"nsw": 1.0},
        },
        record("scale", []),
    )
    assert report["details"]["warnings"] == [f"pilot: {text}"]
    markdown = reporting.outcome_markdown({**report, "status": "ok"})
    assert f"| warning | pilot: {text} |" in markdown


def test_identical_controls_are_all_matched_as_one_group():
    """A discrete covariate: every control with the treated unit's value is a tie at distance
    0, so the ATT without bias correction is the mean over treated units of (own outcome minus
    the mean outcome of the controls with the same value), the Abadie-Imbens estimator."""
    rng = np.random.default_rng(1)
    n = 600
    x = rng.integers(0, 3, n).astype(float)
    treated = rng.random(n) < 0.4
    y = 2 * x + 1.5 * treated + rng.normal(size=n)
    data = pd.DataFrame({"treat": treated, "x": x, "y": y})
    raw = {
        "treatment_column": "treat",
        "covariate_columns": ["x"],
        "dependent_variable": "y",
        "bias_correction": False,
    }
    fit = _fit("nearest_neighbour_matching", data, raw)
    control_means = data[~data["treat"]].groupby("x")["y"].mean()
    expected = data.loc[data["treat"], "y"] - data.loc[data["treat"], "x"].map(control_means)
    assert fit.effect_estimate == pytest.approx(expected.mean(), rel=1e-12)
    pairs = fit.artifacts["matched_data_att"]
    # one row per treated unit (its group of identical controls), not one per control
    assert len(pairs) == int(treated.sum())
    assert pairs["n_controls"].sum() == sum(int((~treated & (x == v)).sum()) for v in x[treated])
