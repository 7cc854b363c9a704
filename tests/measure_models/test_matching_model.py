"""nearest_neighbour_matching: Abadie-Imbens matching."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from impact_assets.measure.models import ModelError, get_model

NAME = "nearest_neighbour_matching"
BASE = {"treatment_column": "treated", "covariate_columns": ["x1"], "replace": True}


def _spec_design(n=500, seed=42, effect=10.0, two_covariates=False):
    """x1 ~ N(50, 10), outcome = x1 (+ x2) + effect * treated + N(0, 1) (spec §7.2)."""
    rng = np.random.default_rng(seed)
    x1 = rng.normal(50, 10, n)
    x2 = rng.normal(0, 5, n)
    treated = rng.random(n) < 0.4
    y0 = x1 + (x2 if two_covariates else 0) + rng.normal(size=n)
    y1 = y0 + effect
    return pd.DataFrame(
        {
            "product_id": [f"P{i}" for i in range(n)],
            "x1": x1,
            "x2": x2,
            "treated": treated.astype(int),
            "revenue": np.where(treated, y1, y0),
            "revenue_y0": y0,
            "revenue_y1": y1,
        }
    )


def test_known_effect_and_ate_identity(fit):
    data = _spec_design()
    model, params, result = fit(NAME, data, BASE)
    est = result.impact_estimates
    assert result.ci_lower <= 10.0 <= result.ci_upper
    assert abs(est["att"] - 10) < 4 * est["att_se"]
    assert abs(est["atc"] - 10) < 4 * est["atc_se"]
    n_t = result.model_summary["n_matched_att"]
    n_c = result.model_summary["n_matched_atc"]
    assert est["ate"] == pytest.approx((n_t * est["att"] + n_c * est["atc"]) / (n_t + n_c))
    assert set(result.artifacts) == {"matched_data_att", "balance_before", "balance_after"}
    assert result.model_summary["n_observations"] == 500
    assert model.true_effect(data, params) == pytest.approx(10.0)


def test_two_covariates_and_headline_estimand(fit):
    data = _spec_design(effect=5.0, two_covariates=True)
    raw = {**BASE, "covariate_columns": ["x1", "x2"]}
    for estimand in ("att", "atc", "ate"):
        _, _, result = fit(NAME, data, {**raw, "estimand": estimand})
        assert result.estimand == estimand
        assert result.effect_estimate == result.impact_estimates[estimand]
        assert result.standard_error == result.impact_estimates[f"{estimand}_se"]
        assert result.ci_lower <= 5.0 <= result.ci_upper


@pytest.mark.parametrize("distance", ["standardized", "mahalanobis", "propensity"])
def test_distances_recover_effect_under_confounding(fit, dgp, distance):
    data, raw = dgp.matching_scenario(11)
    model, params, result = fit(NAME, data, {**raw, "distance": distance})
    truth = model.true_effect(data, params)
    assert abs(result.effect_estimate - truth) < 3.5 * result.standard_error
    assert result.diagnostics["max_abs_smd_after"] < result.diagnostics["max_abs_smd_before"]


def test_naive_matching_undercovers_under_confounding_and_ai_does_not(coverage, dgp):
    seeds = range(1, 41)
    naive, naive_z = coverage(NAME, dgp.naive_matching_scenario, seeds)
    ai, ai_z = coverage(NAME, dgp.confounded_matching_scenario, seeds)
    assert naive <= 0.75  # nominal 0.95; the matching bias dominates the naive SE
    assert naive_z > 1.0
    assert ai >= 0.85
    assert abs(ai_z) < 0.5


def test_coverage_on_panel_design(coverage, dgp):
    share, mean_z = coverage(NAME, dgp.matching_scenario, range(400, 430))
    assert share >= 0.8
    assert abs(mean_z) < 0.6


def test_variance_without_reuse_is_the_pair_difference_variance(fit):
    data = _spec_design(n=200, seed=5)
    raw = {**BASE, "replace": False, "bias_correction": False, "caliper": None}
    _, _, result = fit(NAME, data, raw)
    pairs = result.artifacts["matched_data_att"]
    assert pairs["control_unit"].is_unique  # no control is reused
    d = (pairs["outcome_treated"] - pairs["outcome_control"]).to_numpy()
    expected = np.sqrt(np.sum((d - d.mean()) ** 2)) / d.size
    assert result.impact_estimates["att"] == pytest.approx(d.mean())
    assert result.impact_estimates["att_se"] == pytest.approx(expected)


def test_reused_controls_widen_the_standard_error(fit, dgp):
    data, raw = dgp.confounded_matching_scenario(3)
    _, _, result = fit(NAME, data, {**raw, "bias_correction": False})
    pairs = result.artifacts["matched_data_att"]
    assert not pairs["control_unit"].is_unique
    d = (pairs["outcome_treated"] - pairs["outcome_control"]).to_numpy()
    pair_only = np.sqrt(np.sum((d - d.mean()) ** 2)) / d.size
    assert result.impact_estimates["att_se"] > pair_only


def test_ratio_two_gives_two_weighted_matches(fit):
    data = _spec_design(n=200, seed=8)
    _, _, result = fit(NAME, data, {**BASE, "ratio": 2})
    pairs = result.artifacts["matched_data_att"]
    assert (pairs.groupby("treated_unit").size() == 2).all()
    assert (pairs["weight"] == 0.5).all()


def test_caliper_drops_far_treated_units_and_truth_follows(fit):
    data = _spec_design(n=200, seed=9)
    outlier = data.index[data["treated"] == 1][0]
    data.loc[outlier, "x1"] = 500.0
    data.loc[outlier, ["revenue_y1"]] = data.loc[outlier, "revenue_y0"] + 1000.0
    data.loc[outlier, "revenue"] = data.loc[outlier, "revenue_y1"]
    model, params, result = fit(NAME, data, {**BASE, "caliper": 0.2})
    assert result.diagnostics["n_unmatched_treated"] == 1
    assert model.true_effect(data, params) == pytest.approx(10.0)


def test_no_overlap_is_an_error():
    model = get_model(NAME)
    data = _spec_design(n=100, seed=1)
    data["x1"] = np.where(data["treated"] == 1, 1000.0 + data["x1"], data["x1"])
    params = model.validate_params({**BASE, "caliper": 0.1})
    with pytest.raises(ModelError, match="no unit has a match within parameter 'caliper'"):
        model.fit(data, params)


def test_panel_rows_are_aggregated_per_product(fit, dgp):
    data, raw = dgp.matching_scenario(2)
    model, params, result = fit(NAME, data, raw)
    assert result.n_observations == data["product_id"].nunique()
    assert result.model_summary["n_rows"] == len(data)
    per_unit = data.groupby("product_id").agg(
        enriched=("enriched", "first"), eff=("revenue", "mean"), y0=("revenue_y0", "mean")
    )
    treated = per_unit[per_unit["enriched"]]
    assert model.true_effect(data, params) == pytest.approx((treated["eff"] - treated["y0"]).mean())
    full_panel = dgp.panel(2)  # pre and post rows: 'treatment' switches on mid-window
    with pytest.raises(ModelError, match="varies within units of 'product_id'"):
        model.fit(full_panel, {**params, "treatment_column": "treatment"})


def test_categorical_covariate_is_dummy_coded(fit, dgp):
    data, raw = dgp.matching_scenario(2)
    _, _, result = fit(NAME, data, {**raw, "covariate_columns": ["x1", "category"]})
    names = set(result.artifacts["balance_before"]["covariate"])
    assert "x1" in names and any(n.startswith("category[") for n in names)


def test_deterministic_without_replacement(fit, dgp):
    data, raw = dgp.matching_scenario(7)
    _, _, a = fit(NAME, data, {**raw, "replace": False})
    _, _, b = fit(NAME, data, {**raw, "replace": False})
    assert a.effect_estimate == b.effect_estimate and a.standard_error == b.standard_error


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            {**BASE, "caliper": -1},
            "nearest_neighbour_matching: parameter 'caliper' must be a positive number, got -1",
        ),
        ({**BASE, "ratio": 0}, "parameter 'ratio' must be a positive integer, got 0"),
        ({**BASE, "estimand": "foo"}, "parameter 'estimand' must be one of"),
        ({**BASE, "replace": "yes"}, "parameter 'replace' must be true or false"),
        ({**BASE, "distance": "cosine"}, "parameter 'distance' must be one of"),
        ({"covariate_columns": ["x1"]}, "parameter 'treatment_column' is required"),
        ({"treatment_column": "t"}, "parameter 'covariate_columns' is required"),
        ({**BASE, "covariate_columns": []}, "parameter 'covariate_columns' must be a column name"),
    ],
)
def test_param_validation_messages(raw, message):
    with pytest.raises(ModelError, match=message.replace("(", r"\(")):
        get_model(NAME).validate_params(raw)


def test_string_covariate_becomes_list():
    params = get_model(NAME).validate_params({**BASE, "covariate_columns": "x1"})
    assert params["covariate_columns"] == ["x1"]


def test_data_errors():
    model = get_model(NAME)
    params = model.validate_params(BASE)
    data = _spec_design(n=100)
    bad = data.copy()
    bad.loc[4, "x1"] = np.nan
    with pytest.raises(ModelError, match="column 'x1' has 1 missing"):
        model.fit(bad, params)
    bad = data.copy()
    bad.loc[4, "revenue"] = np.nan
    with pytest.raises(ModelError, match="column 'revenue' has 1 missing"):
        model.fit(bad, params)
    one_treated = pd.concat([data[data["treated"] == 1].head(1), data[data["treated"] == 0]])
    expected = (
        "nearest_neighbour_matching: treatment column 'treated' marks 1 treated and "
        f"{len(one_treated) - 1} control units; the model needs at least 2 of each"
    )
    with pytest.raises(ModelError) as info:
        model.check_minimum(one_treated, params)
    assert str(info.value) == expected
    with pytest.raises(ModelError, match="marks 1 treated"):
        model.fit(one_treated, params)
    # small samples are the contract's business (MEASURE), not the model's: 20 units fit
    assert model.sample_size(data.head(20), params) == 20
    model.check_minimum(data.head(20), params)
    with pytest.raises(ModelError, match="'treated' is constant"):
        model.fit(data.assign(treated=0), params)
    with pytest.raises(ModelError, match="must be boolean or 0/1"):
        model.fit(data.assign(treated=2), params)
    with pytest.raises(ModelError, match="column 'x9' not found"):
        model.fit(data, {**params, "covariate_columns": ["x9"]})


def _sequential_greedy(Z, source, target, ratio, limit):
    """Reference: walk all pairs closest first, skipping used targets and full sources."""
    from scipy.spatial.distance import cdist

    full = cdist(Z[source], Z[target])
    order = np.argsort(full, axis=None, kind="stable")
    taken, used, count = {}, set(), dict.fromkeys(range(source.size), 0)
    for r, c in zip(*np.unravel_index(order, full.shape), strict=True):
        if full[r, c] > limit:
            break
        if c in used or count[r] >= ratio:
            continue
        taken.setdefault(r, []).append(target[c])
        used.add(c)
        count[r] += 1
    return taken


@pytest.mark.parametrize(("ratio", "caliper"), [(1, None), (2, None), (1, 0.3), (3, 0.5)])
def test_greedy_without_replacement_matches_sequential_reference(ratio, caliper):
    from impact_assets.measure.models.matching import _match

    rng = np.random.default_rng(ratio * 10 + (caliper is None))
    Z = rng.normal(size=(90, 2))
    source, target = np.arange(30), np.arange(30, 90)
    got = _match(Z, source, target, ratio, caliper, replace=False)
    limit = np.inf if caliper is None else caliper * np.sqrt(2)
    expected = _sequential_greedy(Z, source, target, ratio, limit)
    for i in range(source.size):
        assert sorted(m for m in got.matches[i] if m >= 0) == sorted(expected.get(i, []))


@pytest.mark.parametrize(
    "extra",
    [{"replace": True}, {"replace": False}, {"replace": True, "estimand": "ate"}],
    ids=["att-replace", "att-no-replace", "ate"],
)
def test_standard_error_matches_sampling_spread_with_fixed_covariates(extra):
    """Fixed covariates and assignment, fresh outcome noise: SE ~ the estimator's spread."""
    model = get_model(NAME)
    rng = np.random.default_rng(5)
    n = 100
    x1, x2 = rng.normal(size=(2, n))
    treated = rng.random(n) < 1 / (1 + np.exp(-(np.log(0.3 / 0.7) + x1 + 0.5 * x2)))
    mu = 10 + 3 * x1 + 2 * x2 + 0.5 * x1**2
    raw = {"treatment_column": "t", "covariate_columns": ["x1", "x2"], "caliper": None, **extra}
    params = model.validate_params(raw)
    estimates, ses = [], []
    for _ in range(120):
        y0 = mu + rng.normal(scale=1.1, size=n)
        frame = pd.DataFrame({"x1": x1, "x2": x2, "t": treated, "revenue": y0 + 2.0 * treated})
        result = model.fit(frame, params)
        estimates.append(result.effect_estimate)
        ses.append(result.standard_error)
    spread = np.std(estimates, ddof=1)
    assert 0.8 < np.mean(ses) / spread < 1.3
    assert abs(np.mean(estimates) - 2.0) < 3 * spread / np.sqrt(len(estimates))
