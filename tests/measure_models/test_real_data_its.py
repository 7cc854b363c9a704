"""The Sicily smoking ban (Lopez Bernal, Cummins & Gasparrini 2017) through
``interrupted_time_series``, as ``benchmarks/real_data_its.py`` runs it: on the log standardised
rate our level change equals statsmodels OLS + HAC on the same design, and exp(level change) lies
in the range of the published Poisson rate ratio (the authors' specification refitted)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from real_data_its import PARAMS, published_glm, rows, statsmodels_ols, user_csv  # benchmarks/

from impact_assets.measure.models import get_model


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    return pd.read_csv(user_csv(tmp_path_factory.mktemp("its") / "sicily_log_rate.csv"))


@pytest.mark.parametrize("slope_change", [False, True])
def test_sicily_matches_statsmodels_and_the_published_range(series, slope_change):
    model = get_model("interrupted_time_series")
    params = model.validate_params({**PARAMS, "slope_change": slope_change})
    fit = model.fit(series, params)
    reference = statsmodels_ols(slope_change)
    assert fit.effect_estimate == pytest.approx(reference["estimate"], rel=1e-9)
    assert fit.standard_error == pytest.approx(reference["se"], rel=1e-9)
    assert fit.ci_lower == pytest.approx(reference["ci_lower"], rel=1e-9)
    assert fit.ci_upper == pytest.approx(reference["ci_upper"], rel=1e-9)
    assert fit.p_value == pytest.approx(reference["p_value"], rel=1e-9)
    if slope_change:
        assert fit.impact_estimates["slope_change"] == pytest.approx(reference["slope_change"])
    assert model.sample_size(series, params) == 59
    assert fit.diagnostics["period"] == "month"
    assert (fit.diagnostics["n_pre_periods"], fit.diagnostics["n_post_periods"]) == (36, 23)
    # published scale: the rate ratio of the step
    poisson, seasonal = published_glm(seasonal=False), published_glm(seasonal=True)
    assert seasonal["ci_lower"] <= math.exp(fit.effect_estimate) <= seasonal["ci_upper"]
    assert math.exp(fit.ci_lower) < poisson["rate_ratio"] < math.exp(fit.ci_upper)
    assert math.exp(fit.ci_lower) < seasonal["rate_ratio"] < math.exp(fit.ci_upper)


def test_sicily_rows_through_measure_equal_the_direct_fit(series):
    table = rows()
    assert [row["specification"].endswith("(the published step model)") for row in table] == [
        True,
        False,
    ]
    model = get_model("interrupted_time_series")
    fit = model.fit(series, model.validate_params(PARAMS))
    level = table[0]
    assert level["estimate"] == pytest.approx(fit.effect_estimate, rel=1e-12)
    assert level["sample_size"] == 59
    assert level["rate_ratio"] == pytest.approx(np.exp(fit.effect_estimate))
    assert level["ref_estimate"] == pytest.approx(level["estimate"], rel=1e-9)
    low, high = level["published_range"]
    assert low <= level["rate_ratio"] <= high
    assert all(row["checks"].endswith(": yes") for row in table)


def test_real_data_table_prints_log_scale_rows_and_rows_without_a_method_key():
    import real_data  # benchmarks/

    table = rows()
    extra = {"study": "Prop 99", "model": "synthetic_control", "specification": "ADH"}
    text = real_data.markdown([*table, {**extra, "estimate": -19.0, "sample_size": 39}])
    assert f"| 59 | {table[0]['estimate']:.4f} ({table[0]['se']:.4f}) |" in text
    assert "| Prop 99 | synthetic_control: ADH | 39 | -19 (–) |" in text
