"""The upstream adapter on the real upstream envelopes (the upstream call monkeypatched)."""

from __future__ import annotations

import json
import math
import sys
import types
from pathlib import Path

import pytest

from impact_assets.contracts import MeasureResult
from impact_assets.measure.upstream import (
    UpstreamError,
    UpstreamMeasure,
    check_schema_version,
    find_treatment_term,
    normalize_envelope,
)
from impact_assets.registry import build_component
from tests.measure_engine.measure_support import REFERENCE_ENVELOPES, write_config

MODEL_TYPES = (
    "experiment",
    "interrupted_time_series",
    "synthetic_control",
    "nearest_neighbour_matching",
    "subclassification",
    "metrics_approximation",
)


def _envelope(model_type: str) -> dict:
    return json.loads((REFERENCE_ENVELOPES / f"{model_type}.json").read_text())


# --------------------------------------------------------------------------- normalization


def test_experiment():
    r = normalize_envelope(_envelope("experiment"), "i-1", "pilot")
    assert r["effect_estimate"] == pytest.approx(-14.846666481396436)
    assert (r["ci_lower"], r["ci_upper"]) == pytest.approx((-51.4702411884858, 21.77690822569293))
    assert r["p_value"] == pytest.approx(0.4230308492957315)
    assert r["standard_error"] == pytest.approx(18.452736867876403)
    assert r["sample_size"] == 100
    assert r["diagnostics"]["r_squared"] == pytest.approx(0.05180695880383979)
    assert r["diagnostics"]["treatment_term"] == "enriched[T.True]"


def test_interrupted_time_series_has_no_interval_and_no_p_value():
    r = normalize_envelope(_envelope("interrupted_time_series"), "i-1", "pilot")
    assert r["effect_estimate"] == pytest.approx(4175.328297872341)
    assert r["ci_lower"] is None and r["ci_upper"] is None  # not degenerate (spec B2)
    assert r["p_value"] is None  # not 0.0
    assert r["sample_size"] == 92


def test_synthetic_control():
    r = normalize_envelope(_envelope("synthetic_control"), "i-1", "scale")
    assert r["effect_estimate"] == pytest.approx(-7.802734732728926)
    assert (r["ci_lower"], r["ci_upper"]) == pytest.approx((-26.4221649627585, 10.81669549730065))
    assert r["p_value"] is None
    assert r["standard_error"] == pytest.approx(9.499709301035498)
    assert r["sample_size"] == 47
    assert r["phase"] == "scale"
    assert r["diagnostics"]["n_donors"] == 99


def test_nearest_neighbour_matching():
    r = normalize_envelope(_envelope("nearest_neighbour_matching"), "i-1", "pilot")
    att, se = 7.437551020408163, 5.924657208038631
    assert r["effect_estimate"] == pytest.approx(att)
    assert r["ci_lower"] == pytest.approx(att - 1.959963984540054 * se)
    assert r["ci_upper"] == pytest.approx(att + 1.959963984540054 * se)
    assert r["p_value"] is None
    assert r["sample_size"] == 100


def test_subclassification():
    r = normalize_envelope(_envelope("subclassification"), "i-1", "pilot")
    assert r["effect_estimate"] == pytest.approx(8.381751515151516)
    assert r["ci_lower"] is None and r["p_value"] is None
    assert r["estimand"] == "ATT"
    assert r["sample_size"] == 100


def test_metrics_approximation():
    r = normalize_envelope(_envelope("metrics_approximation"), "i-1", "pilot")
    assert r["effect_estimate"] == pytest.approx(2846.82)
    assert r["ci_lower"] is None and r["p_value"] is None
    assert r["sample_size"] == 100
    bounded = _envelope("metrics_approximation")
    bounded["data"]["impact_estimates"].update({"lower": 2000.0, "upper": 3500.0})
    r = normalize_envelope(bounded, "i-1", "pilot")
    assert (r["ci_lower"], r["ci_upper"]) == (2000.0, 3500.0)


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_every_envelope_gives_a_valid_measure_result(model_type):
    result = normalize_envelope(_envelope(model_type), "init-x", "pilot")
    parsed = MeasureResult.from_dict(result)
    assert parsed.model_type.value == model_type
    assert parsed.initiative_id == "init-x"
    assert parsed.true_effect is None
    assert result["schema_version"] == "2.0"
    json.dumps(result, allow_nan=False)


def test_nan_standard_error_gives_no_interval():
    envelope = _envelope("nearest_neighbour_matching")
    envelope["data"]["impact_estimates"]["att_se"] = float("nan")  # upstream writes bare NaN
    r = normalize_envelope(envelope, "i-1", "pilot")
    assert r["ci_lower"] is None and r["standard_error"] is None


def test_schema_version():
    assert check_schema_version({}) is None
    assert check_schema_version({"schema_version": "2.0"}) == "2.0"
    assert check_schema_version({"schema_version": "2.3"}) == "2.3"
    envelope = _envelope("experiment")
    del envelope["schema_version"]  # HEAD writes none
    assert normalize_envelope(envelope, "i-1")["schema_version"] is None
    for bad in ("3.0", "1.9", "two", "2.0-beta"):
        envelope["schema_version"] = bad
        with pytest.raises(UpstreamError, match="schema_version"):
            normalize_envelope(envelope, "i-1")


def test_unknown_model_type_and_flat_envelope():
    envelope = _envelope("experiment")
    envelope["model_type"] = "difference_in_differences"
    with pytest.raises(UpstreamError, match="Unknown model_type"):
        normalize_envelope(envelope, "i-1")
    with pytest.raises(UpstreamError, match="'data' section"):
        normalize_envelope({"model_type": "experiment", "effect": 1.0}, "i-1")


# --------------------------------------------------------------------------- the treatment term


def test_treatment_term_by_name_not_position():
    terms = ["Intercept", "price", "enriched[T.True]"]
    assert find_treatment_term(terms, "revenue ~ price + enriched") == "enriched[T.True]"
    assert find_treatment_term(["Intercept", "treatment", "x1"], "y ~ x1 + treatment") == (
        "treatment"
    )
    assert find_treatment_term(["Intercept", "arm[T.b]", "x"], "y ~ x + arm", "arm") == "arm[T.b]"
    with pytest.raises(UpstreamError, match="treatment_column"):
        find_treatment_term(["Intercept", "price", "size"], "revenue ~ price + size")
    with pytest.raises(UpstreamError, match="several"):
        find_treatment_term(["Intercept", "treated", "enriched[T.True]"], "y ~ treated + enriched")
    with pytest.raises(UpstreamError, match="no term"):
        find_treatment_term(["Intercept", "price"], "y ~ price", "enriched")


def test_experiment_with_treatment_not_first():
    envelope = _envelope("experiment")
    envelope["data"]["model_params"]["formula"] = "revenue ~ price + enriched"
    r = normalize_envelope(envelope, "i-1")
    assert r["effect_estimate"] == pytest.approx(-14.846666481396436)
    r = normalize_envelope(envelope, "i-1", treatment_column="price")
    assert r["effect_estimate"] == pytest.approx(0.08229512538135728)


# --------------------------------------------------------------------------- the component


@pytest.fixture
def no_upstream(monkeypatch):
    for name in ("impact_engine", "impact_engine_measure"):
        monkeypatch.setitem(sys.modules, name, None)  # import raises ImportError


def _fake_evaluate_impact(envelope: dict, calls: list):
    def evaluate_impact(config_path, storage_url="./data", job_id=None):
        calls.append((config_path, storage_url, job_id))
        job = Path(storage_url) / job_id
        job.mkdir(parents=True, exist_ok=True)
        path = job / "impact_results.json"
        # upstream writes indent 4 and bare NaN
        path.write_text(json.dumps(envelope, indent=4))
        return str(path)

    return evaluate_impact


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_upstream_measure_on_every_envelope(tmp_path, monkeypatch, no_upstream, model_type):
    calls: list = []
    module = types.ModuleType("impact_engine")
    module.evaluate_impact = _fake_evaluate_impact(_envelope(model_type), calls)
    monkeypatch.setitem(sys.modules, "impact_engine", module)
    component = build_component("UpstreamMeasure", {"storage_url": str(tmp_path / "up")})
    assert isinstance(component, UpstreamMeasure)
    config = write_config(tmp_path)
    pilot = component.execute({"initiative_id": "init-1", "measure_config": str(config)})
    scale = component.execute(
        {
            "initiative_id": "init-1",
            "measure_config": str(config),
            "phase": "scale",
            "sample_size": 5000,
        }
    )
    assert [c[2] for c in calls] == ["init-1__pilot", "init-1__scale"]  # separate jobs (B5)
    assert pilot["job_dir"] != scale["job_dir"]
    assert pilot["upstream"] == "impact_engine.evaluate_impact"
    for result, phase in ((pilot, "pilot"), (scale, "scale")):
        parsed = MeasureResult.from_dict(result)
        assert parsed.phase == phase and parsed.model_type.value == model_type
    expected = normalize_envelope(_envelope(model_type), "init-1", "pilot")
    assert {k: v for k, v in pilot.items() if k in expected} == expected


def test_upstream_measure_with_the_head_api(tmp_path, monkeypatch, no_upstream):
    envelope = _envelope("synthetic_control")

    class JobInfo:
        def __init__(self, job_id, storage_path):
            self.job_id, self.storage_path = job_id, storage_path
            self.full_path = f"{storage_path}/{job_id}"

    def measure_impact(config_path, storage_url="./data", job_id=None):
        job = Path(storage_url) / job_id
        job.mkdir(parents=True)
        (job / "impact_results.json").write_text(json.dumps(envelope))
        return JobInfo(job_id, storage_url)

    module = types.ModuleType("impact_engine_measure")
    module.measure_impact = measure_impact
    monkeypatch.setitem(sys.modules, "impact_engine_measure", module)
    result = UpstreamMeasure(storage_url=str(tmp_path / "up")).execute(
        {"initiative_id": "init-2", "measure_config": str(write_config(tmp_path))}
    )
    assert result["upstream"] == "impact_engine_measure.measure_impact"
    assert math.isclose(result["effect_estimate"], -7.802734732728926)


def test_upstream_measure_reads_treatment_column_from_the_config(
    tmp_path, monkeypatch, no_upstream
):
    envelope = _envelope("experiment")
    envelope["data"]["model_params"]["formula"] = "revenue ~ price + enriched"
    module = types.ModuleType("impact_engine")
    module.evaluate_impact = _fake_evaluate_impact(envelope, [])
    monkeypatch.setitem(sys.modules, "impact_engine", module)
    config = write_config(
        tmp_path, override={"MEASUREMENT": {"PARAMS": {"treatment_column": "price"}}}
    )
    result = UpstreamMeasure(storage_url=str(tmp_path / "up")).execute(
        {"initiative_id": "init-1", "measure_config": str(config)}
    )
    assert result["effect_estimate"] == pytest.approx(0.08229512538135728)


def test_upstream_missing_is_a_clear_error(tmp_path, no_upstream):
    with pytest.raises(UpstreamError, match="not importable.*Measure"):
        UpstreamMeasure(storage_url=str(tmp_path / "up")).execute(
            {"initiative_id": "init-1", "measure_config": str(write_config(tmp_path))}
        )


def test_upstream_failure_names_the_initiative(tmp_path, monkeypatch, no_upstream):
    module = types.ModuleType("impact_engine")

    def evaluate_impact(config_path, storage_url="./data", job_id=None):
        raise RuntimeError("Failed to retrieve metrics: boom")

    module.evaluate_impact = evaluate_impact
    monkeypatch.setitem(sys.modules, "impact_engine", module)
    with pytest.raises(UpstreamError, match="init-1.*boom"):
        UpstreamMeasure(storage_url=str(tmp_path / "up")).execute(
            {"initiative_id": "init-1", "measure_config": str(write_config(tmp_path))}
        )
