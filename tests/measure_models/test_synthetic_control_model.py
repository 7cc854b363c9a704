"""synthetic_control: simplex weights on the pre-period trajectory, placebo inference."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from impact_assets.measure.models import ModelError, get_model
from impact_assets.measure.models.synthetic_control import simplex_weights

NAME = "synthetic_control"


def _random_walk_panel(n_units=40, n_pre=20, n_post=10, shift=10.0, seed=0):
    """Controls on a shared random walk, one treated unit shifted after ``n_pre`` days."""
    rng = np.random.default_rng(seed)
    n_days = n_pre + n_post
    walk = np.cumsum(rng.normal(size=n_days))
    dates = pd.date_range("2024-01-01", periods=n_days)
    rows = []
    for u in range(n_units):
        y = 50 + walk + rng.normal(scale=0.5, size=n_days) + rng.normal(scale=2.0)
        if u == 0:
            y = y + np.where(np.arange(n_days) >= n_pre, shift, 0.0)
        rows.append(pd.DataFrame({"unit_id": f"U{u:02d}", "date": dates, "sales": y}))
    return pd.concat(rows, ignore_index=True), dates[n_pre]


def test_simplex_weights_are_on_the_simplex_and_recover_a_convex_combination():
    rng = np.random.default_rng(3)
    donors = rng.normal(size=(40, 8))
    truth = np.array([0.5, 0.3, 0.2, 0, 0, 0, 0, 0])
    weights = simplex_weights(donors, donors @ truth)
    assert weights.min() >= 0 and weights.sum() == pytest.approx(1.0)
    assert weights == pytest.approx(truth, abs=1e-4)


def test_single_treated_unit_known_shift(fit):
    data, start = _random_walk_panel()
    raw = {"treatment_time": start, "treated_unit": "U00", "outcome_column": "sales"}
    _, _, result = fit(NAME, data, raw)
    assert result.ci_lower <= 10.0 <= result.ci_upper
    est = result.impact_estimates
    assert set(est) >= {"att", "se", "ci_lower", "ci_upper", "cumulative_effect"}
    assert est["cumulative_effect"] == pytest.approx(est["att"] * 10)
    summary = result.model_summary
    assert (summary["n_pre_periods"], summary["n_post_periods"]) == (20, 10)
    assert summary["n_control_units"] == 39
    assert sum(summary["weights"].values()) == pytest.approx(1.0, abs=1e-3)
    # a clear effect ranks first among the 40 units: the smallest attainable p-value, 1/(J+1)
    assert result.p_value == pytest.approx(1 / 40)
    assert result.diagnostics["n_placebos"] == 39
    assert result.model_params["treatment_time"] == str(start.date())
    assert result.diagnostics["ci_method"].startswith("test inversion (Firpo & Possebom 2018)")


def test_default_treated_units_are_the_enriched_ones(fit, dgp):
    data, raw = dgp.synthetic_control_scenario(4)
    model, params, result = fit(NAME, data, raw)
    diag = result.diagnostics
    assert (diag["n_treated_units"], diag["n_donors"]) == (30, 70)
    assert diag["pre_period_rmse"] > 0 and diag["pre_period_rmse_relative"] < 0.1
    assert result.n_observations == 100
    truth = model.true_effect(data, params)
    assert truth == pytest.approx(2.0)
    assert result.ci_lower <= truth <= result.ci_upper
    assert 0 < result.p_value <= 1
    assert set(result.artifacts) == {"trajectory", "placebos"}


def test_untreated_configured_unit_warns_and_uses_enriched_units(fit, dgp):
    data, raw = dgp.synthetic_control_scenario(4)
    untreated = data.loc[~data["enriched"], "product_id"].iloc[0]
    _, _, result = fit(NAME, data, {**raw, "treated_unit": untreated})
    assert result.diagnostics["n_treated_units"] == 30
    assert "not treated" in result.diagnostics["warnings"][0]


def test_unknown_configured_unit_warns_and_uses_enriched_units(fit, dgp):
    data, raw = dgp.synthetic_control_scenario(4)
    _, _, result = fit(NAME, data, {**raw, "treated_unit": "BMJ3IYEKLP"})
    assert result.diagnostics["n_treated_units"] == 30
    assert "not found in column 'product_id'" in result.diagnostics["warnings"][0]


def test_configured_enriched_unit_keeps_other_treated_units_out_of_donors(fit, dgp):
    data, raw = dgp.synthetic_control_scenario(4)
    treated = data.loc[data["enriched"], "product_id"].iloc[0]
    _, _, result = fit(NAME, data, {**raw, "treated_unit": treated})
    assert result.diagnostics["n_treated_units"] == 1
    assert result.diagnostics["n_donors"] == 70
    assert treated not in result.model_summary["weights"]


def test_deterministic_and_seeded_placebo_groups(fit, dgp):
    """Several treated units: placebo groups drawn from random_state (default 0)."""
    data, raw = dgp.synthetic_control_scenario(6)
    _, _, a = fit(NAME, data, raw)
    _, _, b = fit(NAME, data, raw)
    _, _, c = fit(NAME, data, {**raw, "random_state": 99})
    assert (a.effect_estimate, a.ci_lower, a.p_value) == (b.effect_estimate, b.ci_lower, b.p_value)
    assert a.effect_estimate == c.effect_estimate
    assert a.standard_error != c.standard_error
    placebos = a.artifacts["placebos"]
    assert (placebos["role"] == "placebo").sum() == 30
    assert all(len(name.split("+")) == 30 for name in placebos.loc[1:, "unit"])


def test_coverage_on_simulated_panels(coverage, dgp):
    share, mean_z = coverage(NAME, dgp.synthetic_control_scenario, range(300, 330))
    assert share >= 0.8
    assert abs(mean_z) < 0.6


def test_too_few_donors_for_placebos_gives_no_interval(fit, dgp):
    data, raw = dgp.synthetic_control_scenario(1)
    ids = sorted(data["product_id"].unique())
    data = data.assign(enriched=~data["product_id"].isin(ids[:3]))
    _, _, result = fit(NAME, data, raw)
    assert result.ci_lower is None and result.p_value is None and result.standard_error is None
    assert result.diagnostics["ci_method"].startswith("none")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({}, "synthetic_control: parameter 'treatment_time' is required"),
        ({"treatment_time": "2024-13-45"}, "parameter 'treatment_time' must be a date"),
        (
            {"treatment_time": "2024-01-01", "optim_method": "Nelder-Mead"},
            "parameter 'optim_method' \\('Nelder-Mead'\\) applies only to the V search with "
            "'predictors'; the outcome-only fit has no V",
        ),
        (
            {"treatment_time": "2024-01-01", "predictors": ["x"], "optim_method": "simplex"},
            "parameter 'optim_method' must be one of",
        ),
        ({"treatment_time": "2024-01-01", "predictors": []}, "parameter 'predictors' must be"),
        (
            {"treatment_time": "2024-01-01", "placebo_fit_cutoff": 0},
            "parameter 'placebo_fit_cutoff' must be a positive number",
        ),
        ({"treatment_time": "2024-01-01", "ci_method": "bootstrap"}, "parameter 'ci_method'"),
        ({"treatment_time": "2024-01-01", "n_placebos": 2}, "'n_placebos' must be an integer >= 5"),
        ({"treatment_time": "2024-01-01", "treated_unit": ""}, "parameter 'treated_unit' must be"),
        ({"treatment_time": "2024-01-01", "unit_column": 7}, "parameter 'unit_column'"),
    ],
)
def test_param_validation_messages(raw, message):
    with pytest.raises(ModelError, match=message):
        get_model(NAME).validate_params(raw)


def test_dates_accepted_as_objects():
    model = get_model(NAME)
    for value in ("2024-11-15", dt.date(2024, 11, 15), pd.Timestamp("2024-11-15")):
        assert model.validate_params({"treatment_time": value})["treatment_time"] == pd.Timestamp(
            "2024-11-15"
        )
    assert model.validate_params({"treatment_time": 1989})["treatment_time"] == 1989


def test_data_errors(dgp):
    model = get_model(NAME)
    data, raw = dgp.synthetic_control_scenario(2)
    params = model.validate_params(raw)
    with pytest.raises(ModelError, match="treated_unit' names unit"):
        model.fit(data.drop(columns=["enriched", "treatment"]), {**params, "treated_unit": ["no"]})
    with pytest.raises(ModelError, match="unbalanced"):
        model.fit(data.iloc[1:], params)
    bad = data.copy()
    bad.loc[7, "revenue"] = np.nan
    with pytest.raises(ModelError, match="column 'revenue' has 1 missing"):
        model.fit(bad, params)
    with pytest.raises(ModelError, match="parameter 'treated_unit' is required"):
        model.fit(data.drop(columns=["enriched", "treatment"]), params)
    with pytest.raises(ModelError, match="marks no unit as treated"):
        model.fit(data.assign(enriched=False, treatment=0), params)
    small = data[data["product_id"].isin(sorted(data["product_id"].unique())[:20])]
    assert model.sample_size(small, params) == 20  # the contract's minimum is MEASURE's
    with pytest.raises(ModelError, match="repeat a unit-time pair"):
        model.fit(pd.concat([data, data.head(1)]), params)


def test_non_binary_indicator_is_an_error(dgp):
    model = get_model(NAME)
    data, raw = dgp.synthetic_control_scenario(2)
    params = model.validate_params(raw)
    with pytest.raises(ModelError, match="treatment column 'enriched' must be boolean or 0/1"):
        model.fit(data.assign(enriched=data["enriched"].map({True: "yes", False: "no"})), params)


# --------------------------------------------------------------------------- ADH inference


def _regions(n_units=17, n_pre=20, n_post=10, shift=-10.0, seed=0, first_year=1960):
    """A yearly panel of ``n_units`` regions on two common factors; R00 treated."""
    rng = np.random.default_rng(seed)
    years = np.arange(first_year, first_year + n_pre + n_post)
    f1, f2 = np.cumsum(rng.normal(size=(2, years.size)), axis=1)
    rows = []
    for u in range(n_units):
        a, b = rng.uniform(0.5, 1.5, 2)
        y = 100 + a * f1 + b * f2 + rng.normal(scale=0.3, size=years.size)
        if u == 0:
            y = y + np.where(np.arange(years.size) >= n_pre, shift, 0.0)
        rows.append(pd.DataFrame({"region": f"R{u:02d}", "year": years, "gdp": y}))
    return pd.concat(rows, ignore_index=True), int(years[n_pre])


def _raw(start, **extra):
    return {
        "treatment_time": start,
        "treated_unit": "R00",
        "outcome_column": "gdp",
        "unit_column": "region",
        "time_column": "year",
        **extra,
    }


def test_17_unit_panel_with_integer_years_runs(fit):
    data, start = _regions()
    model, params, result = fit(NAME, data, _raw(start))
    assert model.sample_size(data, params) == 17
    model.check_minimum(data, params)
    diag = result.diagnostics
    assert (diag["n_donors"], diag["n_placebos"]) == (16, 16)
    assert (diag["n_pre_periods"], diag["n_post_periods"]) == (20, 10)
    assert result.p_value == pytest.approx(1 / 17)  # ranks first of 17
    # with 17 units no p-value can reach 0.05: the 95% inversion set is unbounded -> None
    assert result.ci_lower is None and result.ci_upper is None
    assert diag["ci_method"].startswith("none: test inversion")
    assert "needs at least 20 units" in diag["ci_method"]
    assert result.standard_error is not None and result.standard_error > 0
    assert abs(result.effect_estimate + 10.0) < 1.0
    assert result.model_params["treatment_time"] == "1980"
    assert "per treated unit and period" in result.estimand
    trajectory = result.artifacts["trajectory"]
    assert trajectory["year"].tolist() == list(range(1960, 1990))
    # the placebo-SE interval excludes poorly fitting placebos and gives a CI on 17 units
    _, _, by_se = fit(NAME, data, _raw(start, ci_method="placebo_se"))
    assert by_se.ci_lower <= -10.0 <= by_se.ci_upper
    assert by_se.diagnostics["ci_method"].startswith("ATT -/+ t(df=")


def test_float_years_read_as_periods(fit):
    data, start = _regions()
    data["year"] = data["year"].astype(float)
    _, _, result = fit(NAME, data, _raw(float(start)))
    assert result.diagnostics["n_pre_periods"] == 20


def test_every_donor_is_a_placebo_exactly_once(fit):
    data, start = _regions(n_units=39)
    _, _, result = fit(NAME, data, _raw(start))
    table = result.artifacts["placebos"]
    placebo_units = table.loc[table["role"] == "placebo", "unit"].tolist()
    assert len(placebo_units) == len(set(placebo_units)) == 38
    assert set(placebo_units) == {f"R{u:02d}" for u in range(1, 39)}
    assert table.loc[table["role"] == "treated", "unit"].tolist() == ["R00"]
    assert {"pre_rmspe", "post_rmspe", "ratio", "att", "good_pre_fit", "rank"} <= set(table)


def test_p_value_is_the_rank_of_the_rmspe_ratio_not_of_the_att(fit):
    """R07 is noisy everywhere and jumps by 20 after the treatment time: as a placebo its ATT is
    larger in absolute value than the treated unit's, but its post/pre RMSPE ratio is small. The
    ADH p-value ranks ratios, so the treated unit still ranks first: p = 1/20 (an ATT ranking
    would give at least 2/20)."""
    data, start = _regions(n_units=20, shift=-8.0, seed=3)
    post = data["year"] >= start
    noisy = data["region"] == "R07"
    data.loc[noisy, "gdp"] += np.random.default_rng(1).normal(scale=30.0, size=int(noisy.sum()))
    data.loc[noisy & post, "gdp"] += 20.0
    _, _, result = fit(NAME, data, _raw(start))
    table = result.artifacts["placebos"].set_index("unit")
    treated_ratio = table.loc["R00", "ratio"]
    assert result.p_value == pytest.approx((table["ratio"] >= treated_ratio).sum() / 20)
    assert result.p_value == pytest.approx(1 / 20)
    assert table.loc["R00", "rank"] == 1
    assert abs(table.loc["R07", "att"]) > abs(table.loc["R00", "att"])
    assert table.loc["R07", "ratio"] < treated_ratio
    assert not table.loc["R07", "good_pre_fit"]  # pre-MSPE far above 5x the treated unit's


def test_inversion_interval_on_39_units(fit):
    data, start = _regions(n_units=39, shift=-10.0, seed=5)
    _, _, result = fit(NAME, data, _raw(start))
    assert result.p_value == pytest.approx(1 / 39)
    assert result.ci_lower < -10.0 < result.ci_upper < 0
    # the interval is the set of constant effects c whose inverted test keeps p > 0.05
    table = result.artifacts["placebos"].set_index("unit")
    trajectory = result.artifacts["trajectory"]
    gaps = trajectory.loc[trajectory["post"], "gap"].to_numpy()
    pre = np.sqrt(np.mean(trajectory.loc[~trajectory["post"], "gap"].to_numpy() ** 2))
    placebo_ratios = table.loc[table["role"] == "placebo", "ratio"].to_numpy()

    def p_of(c):
        ratio = np.sqrt(np.mean((gaps - c) ** 2)) / pre
        return (1 + np.sum(placebo_ratios >= ratio)) / 39

    for c in (result.ci_lower + 1e-6, result.effect_estimate, result.ci_upper - 1e-6):
        assert p_of(c) > 0.05
    for c in (result.ci_lower - 1e-3, result.ci_upper + 1e-3):
        assert p_of(c) <= 0.05


def test_covariate_predictors_with_v_weights(fit):
    """Predictors: a covariate (mean over the pre-period) and lagged outcomes in windows."""
    data, start = _regions(n_units=20, seed=7)
    rng = np.random.default_rng(2)
    level = data.groupby("region")["gdp"].transform("mean")
    data["income"] = level / 10 + rng.normal(scale=0.1, size=len(data))
    data.loc[data["year"] < 1965, "income"] = np.nan  # covariates may have gaps
    predictors = [
        "income",
        {"column": "gdp", "start": 1975, "end": 1979},
        {"column": "gdp", "start": 1965, "end": 1965},
    ]
    _, _, result = fit(NAME, data, _raw(start, predictors=predictors))
    v = result.model_summary["v_weights"]
    assert set(v) == {"income", "gdp [1975..1979]", "gdp [1965]"}
    assert sum(v.values()) == pytest.approx(1.0, abs=1e-3)
    assert result.model_params["optim_method"] == "nelder-mead"
    assert abs(result.effect_estimate + 10.0) < 2.5
    assert result.diagnostics["n_placebos"] == 19
    with pytest.raises(ModelError, match="the window of gdp \\[1975..1985\\] ends after"):
        fit(NAME, data, _raw(start, predictors=[{"column": "gdp", "start": 1975, "end": 1985}]))
    with pytest.raises(ModelError, match="column 'income' has no value in the window"):
        fit(NAME, data, _raw(start, predictors=[{"column": "income", "start": 1960, "end": 1962}]))


def test_single_unit_refuses_group_parameters(fit):
    data, start = _regions()
    with pytest.raises(ModelError) as err:
        fit(NAME, data, _raw(start, n_placebos=10))
    assert str(err.value) == (
        "synthetic_control: parameter 'n_placebos' applies to a treated group of several "
        "units; with one treated unit every donor is a placebo exactly once (remove it)"
    )


def test_wrong_time_type_and_too_few_periods(fit):
    data, start = _regions()
    with pytest.raises(ModelError) as err:
        fit(NAME, data, _raw("1980-01-01"))
    assert str(err.value) == (
        "synthetic_control: parameter 'treatment_time' is a date (1980-01-01) but column "
        "'year' holds integer periods; give an integer period, e.g. treatment_time: 1974"
    )
    with pytest.raises(ModelError) as err:
        fit(NAME, data, _raw(1962))
    assert str(err.value) == (
        "synthetic_control: parameter 'treatment_time' (1962) leaves 2 pre- and 28 post-period "
        "times in column 'year' (1960 to 1989); at least 3 pre and 1 post are needed"
    )
    with pytest.raises(ModelError) as err:
        fit(NAME, data, _raw(2000))
    assert "leaves 30 pre- and 0 post-period times" in str(err.value)
    two = data[data["region"].isin(["R00", "R01"])]
    with pytest.raises(ModelError) as err:
        fit(NAME, two, _raw(start))
    assert str(err.value) == (
        "synthetic_control: column 'region': 1 donor unit(s) found besides the 1 treated; at "
        "least 2 are needed"
    )
