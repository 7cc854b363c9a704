"""Bad CSVs for the cross-sectional models, end to end through MEASURE (docs/reliability.md).

Each case is one error naming the measure config file, the initiative and the field (the
column), and nothing is written for the initiative.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from impact_assets.measure.component import Measure

DATA = Path(__file__).resolve().parents[2] / "benchmarks" / "data" / "nsw_dw.csv"
COVARIATES = ["age", "educ", "black", "hisp", "marr", "nodegree", "re74", "re75"]


def _measure_error(tmp_path: Path, frame: pd.DataFrame, model: str) -> tuple[str, str]:
    folder = tmp_path / "cfg"
    folder.mkdir()
    (folder / "nsw.csv").write_text(frame.to_csv(index=False), encoding="utf-8")
    config = {
        "DATA": {"SOURCE": {"type": "file", "CONFIG": {"path": "nsw.csv"}}},
        "MEASUREMENT": {
            "MODEL": model,
            "PARAMS": {
                "treatment_column": "treat",
                "covariate_columns": COVARIATES,
                "dependent_variable": "re78",
            },
        },
    }
    path = folder / "measure.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    store = tmp_path / "store"
    with pytest.raises(ValueError) as info:
        Measure(storage_url=str(store)).execute(
            {"initiative_id": "nsw-training", "measure_config": str(path)}
        )
    assert not (store / "nsw-training").exists() or not list((store / "nsw-training").iterdir())
    return str(info.value), f"initiative 'nsw-training' ({path}): {model}: "


def _nsw() -> pd.DataFrame:
    return pd.read_csv(DATA)


MODELS = ["nearest_neighbour_matching", "subclassification"]


@pytest.mark.parametrize("model", MODELS)
def test_missing_column(tmp_path, model):
    message, prefix = _measure_error(tmp_path, _nsw().drop(columns=["educ"]), model)
    assert message == prefix + (
        "column 'educ' not found in data. Available columns: treat, age, black, hisp, marr, "
        "nodegree, re74, re75, re78"
    )


@pytest.mark.parametrize("model", MODELS)
def test_number_column_with_text(tmp_path, model):
    frame = _nsw().astype({"re74": object})
    frame.loc[6, "re74"] = "unknown"
    message, prefix = _measure_error(tmp_path, frame, model)
    assert message == prefix + (
        "column 're74' must be numeric, but data row 7 (header not counted) holds 'unknown', "
        "which is not a number (1 such value(s))"
    )


@pytest.mark.parametrize("model", MODELS)
def test_text_outcome(tmp_path, model):
    frame = _nsw().assign(re78="high")
    message, prefix = _measure_error(tmp_path, frame, model)
    assert message == prefix + (
        "column 're78' must be numeric, but data row 1 (header not counted) holds 'high', "
        "which is not a number (445 such value(s))"
    )


@pytest.mark.parametrize("model", MODELS)
def test_treatment_not_zero_one(tmp_path, model):
    frame = _nsw().assign(treat=lambda d: d["treat"].map({1: "yes", 0: "no"}))
    message, prefix = _measure_error(tmp_path, frame, model)
    assert message == prefix + "treatment column 'treat' must be boolean or 0/1"


@pytest.mark.parametrize("model", MODELS)
def test_nan_in_a_covariate(tmp_path, model):
    frame = _nsw()
    frame.loc[[3, 9], "re75"] = None
    message, prefix = _measure_error(tmp_path, frame, model)
    assert message == prefix + (
        "column 're75' has 2 missing value(s) (NaN); remove or impute them before measuring"
    )


@pytest.mark.parametrize("model", MODELS)
def test_no_treated_units(tmp_path, model):
    message, prefix = _measure_error(tmp_path, _nsw().assign(treat=0), model)
    assert message == prefix + (
        "treatment column 'treat' is constant (no treated units); a treatment effect needs "
        "both treated and control units"
    )


@pytest.mark.parametrize("model", MODELS)
def test_one_treated_unit(tmp_path, model):
    frame = _nsw()
    frame = pd.concat([frame[frame["treat"] == 1].head(1), frame[frame["treat"] == 0]])
    message, prefix = _measure_error(tmp_path, frame, model)
    assert message == prefix + (
        "treatment column 'treat' marks 1 treated and 260 control units; the model needs at "
        "least 2 of each"
    )
