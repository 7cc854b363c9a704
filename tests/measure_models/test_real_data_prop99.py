"""Proposition 99 (Abadie, Diamond & Hainmueller 2010) with ADH's specification: the published
donor weights and the published rank-based p-value, 1/39 (benchmarks/real_data_prop99.py)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from real_data_prop99 import ADH_PREDICTORS, BASE_PARAMS, PUBLISHED  # benchmarks/ (conftest)

from impact_assets.measure.models import get_model

DATA = Path(__file__).resolve().parents[2] / "benchmarks" / "data" / "prop99_smoking.csv"


@pytest.fixture(scope="module")
def adh():
    model = get_model("synthetic_control")
    params = model.validate_params({**BASE_PARAMS, "predictors": ADH_PREDICTORS})
    data = pd.read_csv(DATA)
    return model, params, data, model.fit(data, params)


def test_prop99_adh_weights_and_p_value(adh):
    model, params, data, result = adh
    assert model.sample_size(data, params) == 39
    weights = {k: v for k, v in result.model_summary["weights"].items() if v > 0.01}
    assert set(weights) == set(PUBLISHED["weights"])
    for state, weight in PUBLISHED["weights"].items():
        assert weights[state] == pytest.approx(weight, abs=0.01)
    # California ranks first of 39 by the post/pre RMSPE ratio
    assert result.p_value == pytest.approx(1 / 39)
    assert result.diagnostics["n_placebos"] == 38
    low, high = PUBLISHED["range"]
    assert low - 1 <= result.effect_estimate <= high + 1  # "almost 20 packs" on average
    assert result.ci_lower < PUBLISHED["estimate"] < result.ci_upper < 0
    assert result.diagnostics["pre_period_rmse"] == pytest.approx(1.76, abs=0.05)  # ADH: 1.76


def test_prop99_placebo_table_names_every_state_once(adh):
    *_, result = adh
    table = result.artifacts["placebos"]
    assert len(table) == 39 and table["unit"].is_unique
    assert table.loc[table["role"] == "treated", "unit"].item() == "California"
    assert table.loc[table["unit"] == "California", "rank"].item() == 1
