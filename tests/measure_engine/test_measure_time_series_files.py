"""Time-series shapes from a user's own CSV through the Measure component: one series per date,
integer-year panels, small synthetic-control panels with a documented lower minimum, and the
bad inputs (one message naming the file, the initiative and the field)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from impact_assets.contracts import MeasureResult
from impact_assets.measure.component import Measure, MeasureError
from impact_assets.measure.config import MeasureConfigError


def _config(tmp_path: Path, data: pd.DataFrame, model: str, params: dict, **measurement) -> Path:
    path = tmp_path / "data.csv"
    data.to_csv(path, index=False)
    config = {
        "DATA": {"SOURCE": {"type": "file", "CONFIG": {"path": str(path)}}},
        "MEASUREMENT": {"MODEL": model, "PARAMS": params, **measurement},
    }
    out = tmp_path / "measure.yaml"
    out.write_text(yaml.safe_dump(config))
    return out


def _run(tmp_path: Path, config: Path, initiative: str = "ts-check") -> dict:
    measure = Measure(storage_url=str(tmp_path / "store"))
    return measure.execute({"initiative_id": initiative, "measure_config": str(config)})


def _daily(n=40, start=20, shift=25.0):
    rng = np.random.default_rng(0)
    dates = pd.date_range("2024-03-01", periods=n)
    y = 200 + 0.3 * np.arange(n) + shift * (np.arange(n) >= start) + rng.normal(0, 2, n)
    return pd.DataFrame({"date": dates.strftime("%Y-%m-%d"), "sales": y}), str(dates[start].date())


def _regions(n_units=17, first=1970, n_pre=19, n_post=12, shift=-20.0, seed=1):
    rng = np.random.default_rng(seed)
    years = np.arange(first, first + n_pre + n_post)
    factor = np.cumsum(rng.normal(size=years.size))
    frames = []
    for u in range(n_units):
        y = 120 + rng.uniform(0.5, 1.5) * factor + rng.normal(0, 0.5, years.size)
        if u == 0:
            y = y + shift * (np.arange(years.size) >= n_pre)
        frames.append(pd.DataFrame({"state": f"S{u:02d}", "year": years, "cigsale": y}))
    return pd.concat(frames, ignore_index=True), int(years[n_pre])


def test_one_series_csv_runs_its_without_product_id(tmp_path):
    data, start = _daily()
    config = _config(
        tmp_path,
        data,
        "interrupted_time_series",
        {"intervention_date": start, "dependent_variable": "sales"},
    )
    result = _run(tmp_path, config)
    MeasureResult.from_dict(result)
    assert result["sample_size"] == 40
    assert result["diagnostics"]["sample_size_unit"] == "periods of the series"
    assert result["ci_lower"] <= 25.0 <= result["ci_upper"]


def test_its_below_the_default_minimum_names_the_knob_and_a_lower_minimum_runs(tmp_path):
    data, start = _daily(n=24, start=12)
    params = {"intervention_date": start, "dependent_variable": "sales"}
    config = _config(tmp_path, data, "interrupted_time_series", params)
    with pytest.raises(MeasureConfigError) as err:
        _run(tmp_path, config)
    assert str(err.value) == (
        f"{config}: initiative 'ts-check': MEASUREMENT.min_sample_size: model "
        "'interrupted_time_series': sample_size is 24 (periods of the series), below the "
        "minimum 30 (the contract's default); a small-panel design may set a lower "
        "MEASUREMENT.min_sample_size (docs/measure.md, 'Sample size per model')"
    )
    config = _config(tmp_path, data, "interrupted_time_series", params, min_sample_size=20)
    result = _run(tmp_path, config)
    assert (result["sample_size"], result["min_sample_size"]) == (24, 20)
    assert result["diagnostics"]["min_sample_size_from"] == "MEASUREMENT.min_sample_size"
    stored = json.loads((Path(result["job_dir"]) / "measure_result.json").read_text())
    assert stored["min_sample_size"] == 20


def test_seventeen_unit_integer_year_panel_runs_with_a_documented_minimum(tmp_path):
    data, start = _regions()
    params = {
        "treatment_time": start,
        "treated_unit": "S00",
        "outcome_column": "cigsale",
        "unit_column": "state",
        "time_column": "year",
    }
    config = _config(tmp_path, data, "synthetic_control", params)
    with pytest.raises(MeasureConfigError, match="sample_size is 17 \\(units in the panel\\)"):
        _run(tmp_path, config)
    config = _config(tmp_path, data, "synthetic_control", params, min_sample_size=17)
    result = _run(tmp_path, config)
    assert (result["sample_size"], result["min_sample_size"]) == (17, 17)
    assert result["p_value"] == pytest.approx(1 / 17)
    assert result["diagnostics"]["n_pre_periods"] == 19  # 1970..1988: years, not nanoseconds
    placebos = pd.read_parquet(Path(result["job_dir"]) / "synthetic_control__placebos.parquet")
    assert sorted(placebos.loc[placebos["role"] == "placebo", "unit"]) == [
        f"S{u:02d}" for u in range(1, 17)
    ]


def test_the_manifest_minimum_reaches_measure_through_the_event(tmp_path):
    data, start = _regions()
    params = {
        "treatment_time": start,
        "treated_unit": "S00",
        "outcome_column": "cigsale",
        "unit_column": "state",
        "time_column": "year",
    }
    config = _config(tmp_path, data, "synthetic_control", params)
    measure = Measure(storage_url=str(tmp_path / "store"))
    event = {"initiative_id": "prop", "measure_config": str(config), "min_sample_size": 15}
    result = measure.execute(event)
    assert result["min_sample_size"] == 15
    assert result["diagnostics"]["min_sample_size_from"] == "the manifest's min_sample_size"
    with pytest.raises(ValueError, match="event field 'min_sample_size' must be an integer >= 1"):
        measure.execute({**event, "min_sample_size": 0})


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (
            {"treatment_time": "1989-01-01"},
            "synthetic_control: parameter 'treatment_time' is a date (1989-01-01) but column "
            "'year' holds integer periods; give an integer period, e.g. treatment_time: 1985",
        ),
        (
            {"treatment_time": 2005},
            "synthetic_control: parameter 'treatment_time' (2005) leaves 31 pre- and 0 "
            "post-period times in column 'year' (1970 to 2000); at least 3 pre and 1 post are "
            "needed",
        ),
        (
            {"treated_unit": "California"},
            "synthetic_control: parameter 'treated_unit' names unit(s) ['California'] not found "
            "in column 'state' (17 units: 'S00', 'S01', 'S02', 'S03', 'S04', ...)",
        ),
    ],
)
def test_bad_time_series_inputs_name_file_initiative_and_field(tmp_path, params, expected):
    data, start = _regions()
    base = {
        "treatment_time": start,
        "treated_unit": "S00",
        "outcome_column": "cigsale",
        "unit_column": "state",
        "time_column": "year",
    }
    config = _config(tmp_path, data, "synthetic_control", {**base, **params}, min_sample_size=17)
    with pytest.raises(MeasureError) as err:
        _run(tmp_path, config, initiative="prop99")
    assert str(err.value) == f"initiative 'prop99' ({config}): {expected}"
    assert not (tmp_path / "store" / "prop99").exists()  # nothing half-written


def test_unit_filter_matching_nothing_and_unknown_params(tmp_path):
    data, start = _regions(n_units=3, n_pre=20, n_post=15)
    config = _config(
        tmp_path,
        data,
        "interrupted_time_series",
        {
            "intervention_date": start,
            "dependent_variable": "cigsale",
            "time_column": "year",
            "unit": "Texas",
            "unit_column": "state",
        },
    )
    with pytest.raises(MeasureError) as err:
        _run(tmp_path, config)
    assert str(err.value) == (
        f"initiative 'ts-check' ({config}): interrupted_time_series: parameter 'unit' = 'Texas' "
        "matches no row of column 'state' (3 units: 'S00', 'S01', 'S02')"
    )
    config = _config(
        tmp_path,
        data,
        "synthetic_control",
        {"treatment_time": start, "n_placebo": 10, "unit_column": "state"},
    )
    with pytest.raises(MeasureConfigError) as err:
        _run(tmp_path, config)
    assert str(err.value).startswith(
        f"{config}: initiative 'ts-check': MEASUREMENT.PARAMS.n_placebo: model "
        "'synthetic_control' does not use parameter(s) 'n_placebo' (did you mean 'n_placebos'?)"
    )


def test_integer_year_file_with_a_date_filter_is_refused(tmp_path):
    data, start = _regions()
    path = tmp_path / "data.csv"
    data.to_csv(path, index=False)
    config = tmp_path / "measure.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "DATA": {
                    "SOURCE": {
                        "type": "file",
                        "CONFIG": {
                            "path": str(path),
                            "date_column": "year",
                            "start_date": "1975-01-01",
                        },
                    }
                },
                "MEASUREMENT": {
                    "MODEL": "synthetic_control",
                    "PARAMS": {"treatment_time": start, "unit_column": "state"},
                },
            }
        )
    )
    with pytest.raises(MeasureConfigError) as err:
        _run(tmp_path, config)
    assert str(err.value) == (
        f"{config}: initiative 'ts-check': DATA.SOURCE.CONFIG.start_date: column 'year' of "
        f"{path} holds integer periods (e.g. 1970); start_date/end_date filter "
        "dates, so remove them (select periods in the file instead)"
    )


def test_its_unit_filter_on_a_product_panel_through_the_config_defaults(tmp_path):
    """The merged defaults carry synthetic_control's `unit_column: unit_id`; on a product panel
    the `unit` filter still reads `product_id`."""
    rng = np.random.default_rng(4)
    dates = pd.date_range("2024-01-01", periods=40).strftime("%Y-%m-%d")
    frames = [
        pd.DataFrame(
            {
                "product_id": f"p{u}",
                "date": dates,
                "revenue": 100
                + u
                + rng.normal(0, 1, 40)
                + (15.0 if u == 2 else 0) * (np.arange(40) >= 20),
            }
        )
        for u in range(3)
    ]
    config = _config(
        tmp_path,
        pd.concat(frames, ignore_index=True),
        "interrupted_time_series",
        {"intervention_date": dates[20], "unit": "p2"},
    )
    result = _run(tmp_path, config)
    assert result["sample_size"] == 40
    assert result["ci_lower"] <= 15.0 <= result["ci_upper"]
    assert result["diagnostics"]["series"] == "unit 'p2' of column 'product_id'"
