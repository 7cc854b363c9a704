"""Smoke test of ``benchmarks/real_data.py`` on the shipped NSW/CPS data (no reference
libraries: those are the ``benchmarks`` extra; the benchmark itself runs them)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "real_data.py"


def _load():
    spec = importlib.util.spec_from_file_location("real_data_under_test", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_nsw_rows_meet_the_published_checks():
    real_data = _load()
    rows = real_data.nsw_rows(references=False)
    models = {row["model"] for row in rows}
    assert models == {"experiment", "nearest_neighbour_matching", "subclassification"}
    for row in rows:
        assert "NO" not in row["checks"], (row["method"], row["checks"])
        assert row["ci_lower"] <= real_data.EXPERIMENTAL_ATT <= row["ci_upper"]
    experiment = rows[1]  # difference in means with the classical SE, as published
    assert round(experiment["estimate"]) == 1794 and round(experiment["se"]) == 633
    table = real_data.markdown(rows)
    assert table.count("\n| NSW") == len(rows)


def test_rows_of_an_extra_module_are_appended(tmp_path):
    (tmp_path / "real_data_prop99.py").write_text(
        "def rows():\n"
        "    return [{'study': 'Prop 99', 'method': 'synthetic_control', 'estimate': -19.0,\n"
        "             'ci_lower': None, 'ci_upper': None, 'p_value': 1 / 39}]\n",
        encoding="utf-8",
    )
    real_data = _load()
    rows = real_data.extra_rows(tmp_path)
    assert rows == [
        {
            "study": "Prop 99",
            "method": "synthetic_control",
            "estimate": -19.0,
            "ci_lower": None,
            "ci_upper": None,
            "p_value": 1 / 39,
        }
    ]
    line = real_data.markdown(rows).splitlines()[2]
    assert line.startswith("| Prop 99 | synthetic_control | – | -19 (–) | none | 0.026 |")
    assert real_data.extra_rows(tmp_path / "missing") == []
