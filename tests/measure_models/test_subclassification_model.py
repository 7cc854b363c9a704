"""subclassification: propensity strata, regression adjustment, stratified SE."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from impact_assets.measure.models import ModelError, get_model

NAME = "subclassification"
BASE = {"treatment_column": "treated", "covariate_columns": ["x1"]}


def _spec_design(n=1000, seed=42, effect=10.0, confounded=False):
    rng = np.random.default_rng(seed)
    x1 = rng.normal(50, 10, n)
    x2 = rng.normal(0, 5, n)
    p = 1 / (1 + np.exp(-(x1 - 50) / 5)) if confounded else np.full(n, 0.4)
    treated = rng.random(n) < p
    y0 = x1 + x2 + rng.normal(size=n)
    y1 = y0 + effect
    return pd.DataFrame(
        {
            "x1": x1,
            "x2": x2,
            "treated": treated,
            "revenue": np.where(treated, y1, y0),
            "revenue_y0": y0,
            "revenue_y1": y1,
        }
    )


@pytest.mark.parametrize("stratify_on", ["propensity", "covariates"])
@pytest.mark.parametrize("estimand", ["att", "ate"])
def test_known_effect(fit, stratify_on, estimand):
    data = _spec_design(confounded=True)
    raw = {**BASE, "covariate_columns": ["x1", "x2"], "n_strata": 5, "estimand": estimand}
    model, params, result = fit(NAME, data, {**raw, "stratify_on": stratify_on})
    assert result.ci_lower <= 10.0 <= result.ci_upper
    assert abs(result.effect_estimate - 10.0) < 4 * result.standard_error
    # the ATT keeps every treated unit; the ATE is trimmed to common support and says so
    assert result.estimand == estimand or (
        estimand == "ate" and result.estimand.startswith("ATE on the ")
    )
    assert model.true_effect(data, params) == pytest.approx(10.0)
    assert result.impact_estimates["treatment_effect"] == result.effect_estimate
    details = result.artifacts["stratum_details"]
    assert {"stratum", "n_treated", "n_control", "effect", "weight"} <= set(details.columns)
    assert details["weight"].sum() == pytest.approx(1.0)


def test_regression_adjustment_removes_within_stratum_confounding(fit):
    data = _spec_design(n=2000, confounded=True)
    raw = {**BASE, "n_strata": 2}
    _, _, adjusted = fit(NAME, data, raw)
    _, _, raw_means = fit(NAME, data, {**raw, "regression_adjustment": False})
    assert abs(adjusted.effect_estimate - 10) < 4 * adjusted.standard_error
    # two coarse strata leave confounding that plain differences in means do not remove
    assert abs(raw_means.effect_estimate - 10) > 4 * raw_means.standard_error
    assert raw_means.diagnostics["max_abs_smd_after"] < raw_means.diagnostics["max_abs_smd_before"]


def test_coverage_on_panel_design(coverage, dgp):
    share, mean_z = coverage(NAME, dgp.subclassification_scenario, range(500, 530))
    assert share >= 0.8
    assert abs(mean_z) < 0.6


def test_no_overlap_is_an_error():
    model = get_model(NAME)
    data = pd.DataFrame(
        {
            "x1": np.r_[np.linspace(1, 4, 20), np.linspace(100, 103, 20)],
            "treated": np.r_[np.ones(20), np.zeros(20)].astype(int),
            "revenue": np.arange(40.0),
        }
    )
    for stratify_on in ("propensity", "covariates"):
        params = model.validate_params({**BASE, "n_strata": 4, "stratify_on": stratify_on})
        with pytest.raises(ModelError, match="no overlap"):
            model.fit(data, params)


def test_identical_covariate_gives_one_stratum(fit):
    data = _spec_design(n=200).assign(x1=3.0)
    for stratify_on in ("propensity", "covariates"):
        _, _, result = fit(NAME, data, {**BASE, "stratify_on": stratify_on})
        assert result.diagnostics["n_strata"] == 1
        assert result.ci_lower <= 10.0 <= result.ci_upper


def test_dropped_stratum_is_reported_and_truth_follows(fit, tmp_path):
    data = _spec_design(n=400, seed=3)
    # the highest x1 decile holds only treated units
    top = data["x1"] >= data["x1"].quantile(0.9)
    data.loc[top, "treated"] = True
    # a different effect in the dropped decile: the truth must exclude it to stay at 10
    data.loc[top, "revenue_y1"] = data.loc[top, "revenue_y0"] + 50.0
    data.loc[top, "revenue"] = data.loc[top, "revenue_y1"]
    raw = {**BASE, "n_strata": 10, "stratify_on": "covariates"}
    model, params, result = fit(NAME, data, raw)
    diag = result.diagnostics
    assert diag["n_strata_dropped"] == 1
    # the share of the estimand's units (the treated, for the ATT) left out
    assert diag["share_dropped"] == pytest.approx(top.sum() / data["treated"].sum())
    assert result.estimand == (
        f"ATT on the {data['treated'].sum() - top.sum()} treated units in strata with controls "
        f"({top.sum()} of {data['treated'].sum()} dropped)"
    )
    assert model.true_effect(data, params) == pytest.approx(10.0)
    assert result.impact_estimates["n_strata_dropped"] == 1
    details = result.artifacts["stratum_details"]
    assert details["dropped"].sum() == 1 and details.loc[details["dropped"], "weight"].eq(0).all()
    details.to_parquet(tmp_path / "stratum_details.parquet")  # None cells stay writable


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            {**BASE, "n_strata": 0},
            "subclassification: parameter 'n_strata' must be a positive integer, got 0",
        ),
        (
            {**BASE, "estimand": "atc"},
            "parameter 'estimand' must be one of 'att', 'ate', got 'atc'",
        ),
        ({**BASE, "stratify_on": "x"}, "parameter 'stratify_on' must be one of"),
        ({**BASE, "regression_adjustment": 1}, "parameter 'regression_adjustment' must be true"),
        ({"covariate_columns": ["x1"]}, "parameter 'treatment_column' is required"),
    ],
)
def test_param_validation_messages(raw, message):
    with pytest.raises(ModelError, match=message.replace("(", r"\(")):
        get_model(NAME).validate_params(raw)


def test_data_errors():
    model = get_model(NAME)
    params = model.validate_params(BASE)
    data = _spec_design(n=100)
    bad = data.copy()
    bad.loc[0, "x1"] = np.nan
    with pytest.raises(ModelError, match="column 'x1' has 1 missing"):
        model.fit(bad, params)
    one_control = pd.concat([data[data["treated"]], data[~data["treated"]].head(1)])
    expected = (
        "subclassification: treatment column 'treated' marks "
        f"{len(one_control) - 1} treated and 1 control units; the model needs at least 2 of each"
    )
    with pytest.raises(ModelError) as info:
        model.check_minimum(one_control, params)
    assert str(info.value) == expected
    assert model.sample_size(data, params) == 100
    with pytest.raises(ModelError, match="is constant \\(no treated units\\)"):
        model.fit(data.assign(treated=False), params)
