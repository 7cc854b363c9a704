"""Measure config loading, merging and validation messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from impact_assets.measure import sources
from impact_assets.measure.component import Measure
from impact_assets.measure.config import (
    MeasureConfigError,
    load_measure_config,
    resolve_model,
)
from tests.measure_engine.measure_support import (
    BASE_CONFIG,
    DEMO_INITIATIVES,
    REFERENCE_CONFIGS,
    TEST_MODEL,
    real_models_available,
    write_config,
    write_panel_file,
)


def _error(tmp_path: Path, override=None, text=None, initiative="init-1") -> str:
    path = write_config(tmp_path, override=override, text=text)
    with pytest.raises(MeasureConfigError) as info:
        cfg = load_measure_config(path, initiative_id=initiative)
        resolve_model(cfg)
    message = str(info.value)
    assert str(path) in message, message
    assert "init-1" in message, message
    return message


# --------------------------------------------------------------------------- the reference configs


@pytest.mark.parametrize("initiative", DEMO_INITIATIVES)
def test_upstream_demo_configs_load_unchanged(initiative):
    path = REFERENCE_CONFIGS / f"{initiative}.yaml"
    cfg = load_measure_config(path, initiative_id=initiative)
    assert cfg.source_type == "simulator"
    assert cfg.treatment is not None
    # hidden upstream defaults are explicit here
    assert cfg.treatment.effect_size == 0.5
    assert cfg.treatment.ramp_days == 0
    # quality_boost is accepted (it moves quality_score only)
    assert cfg.treatment.quality_boost > 0
    assert cfg.resolved["DATA"]["TRANSFORM"]["PARAMS"]["enrichment_start"] == (
        cfg.treatment.enrichment_start.date().isoformat()
    )
    # every model's default keys are present after the merge (upstream behaviour)
    assert {"formula", "intervention_date", "treatment_time", "n_strata"} <= set(cfg.model_params)
    if real_models_available(cfg.model_name):
        resolve_model(cfg)


def test_defaults_merged_and_json_config(tmp_path):
    path = tmp_path / "measure.json"
    path.write_text(json.dumps(BASE_CONFIG))
    cfg = load_measure_config(path)
    assert cfg.transform_name == "passthrough"
    assert cfg.source_config["product_id_column"] == "product_id"
    assert cfg.funnel.sale_prob == 0.7
    assert cfg.n_products == 60


# --------------------------------------------------------------------------- names


def test_unknown_source_lists_available(tmp_path):
    message = _error(tmp_path, {"DATA": {"SOURCE": {"type": "warehouse"}}})
    assert "DATA.SOURCE.type" in message
    assert "'simulator'" in message and "'file'" in message


def test_unknown_transform_lists_available(tmp_path):
    message = _error(tmp_path, {"DATA": {"TRANSFORM": {"FUNCTION": "pivot"}}})
    assert "Unknown transform 'pivot'" in message
    for name in ("passthrough", "aggregate_by_date", "prepare_for_synthetic_control"):
        assert name in message


def test_unknown_enrichment_lists_available(tmp_path):
    message = _error(tmp_path, {"DATA": {"ENRICHMENT": {"FUNCTION": "llm_rewrite"}}})
    assert "DATA.ENRICHMENT.FUNCTION" in message
    assert "product_detail_boost" in message


def test_unknown_model_lists_available(tmp_path):
    message = _error(tmp_path, {"MEASUREMENT": {"MODEL": "difference_in_differences"}})
    assert "MEASUREMENT.MODEL" in message
    assert "difference_in_differences" in message
    assert TEST_MODEL in message


def test_unknown_key_suggests_the_close_one(tmp_path):
    message = _error(tmp_path, {"DATA": {"SOURCE": {"CONFIG": {"n_product": 50}}}})
    assert "DATA.SOURCE.CONFIG.n_product" in message
    assert "n_products" in message


# --------------------------------------------------------------------------- parameters


def test_missing_model_parameter_names_parameter_model_and_file(tmp_path):
    override = {"MEASUREMENT": {"PARAMS": {"treatment_column": None}}}
    message = _error(tmp_path, override)
    assert "treatment_column" in message
    assert TEST_MODEL in message
    assert "MEASUREMENT.PARAMS" in message


def test_ill_typed_model_parameter(tmp_path):
    message = _error(tmp_path, {"MEASUREMENT": {"PARAMS": {"dependent_variable": 3}}})
    assert "dependent_variable" in message and TEST_MODEL in message


@pytest.mark.skipif(
    not real_models_available("interrupted_time_series"), reason="models not registered"
)
def test_real_model_missing_parameter(tmp_path):
    message = _error(tmp_path, {"MEASUREMENT": {"MODEL": "interrupted_time_series", "PARAMS": {}}})
    assert "intervention_date" in message
    assert "interrupted_time_series" in message


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"DATA": {"SOURCE": {"CONFIG": {"seed": 1.5}}}}, "DATA.SOURCE.CONFIG.seed"),
        ({"DATA": {"SOURCE": {"CONFIG": {"seed": None}}}}, "DATA.SOURCE.CONFIG.seed"),
        ({"DATA": {"SOURCE": {"CONFIG": {"n_products": "many"}}}}, "DATA.SOURCE.CONFIG.n_products"),
        ({"DATA": {"SOURCE": {"CONFIG": {"n_products": 5}}}}, "DATA.SOURCE.CONFIG.n_products"),
        ({"DATA": {"SOURCE": {"CONFIG": {"start_date": None}}}}, "DATA.SOURCE.CONFIG.start_date"),
        (
            {"DATA": {"SOURCE": {"CONFIG": {"end_date": "14/03/2024"}}}},
            "DATA.SOURCE.CONFIG.end_date",
        ),
        (
            {"DATA": {"ENRICHMENT": {"PARAMS": {"effect_size": "big"}}}},
            "DATA.ENRICHMENT.PARAMS.effect_size",
        ),
        (
            {"DATA": {"ENRICHMENT": {"PARAMS": {"effect_size": -1.0}}}},
            "DATA.ENRICHMENT.PARAMS.effect_size",
        ),
        (
            {"DATA": {"ENRICHMENT": {"PARAMS": {"effect_size": 5.0}}}},
            "DATA.ENRICHMENT.PARAMS.effect_size",
        ),
        (
            {"DATA": {"ENRICHMENT": {"PARAMS": {"ramp_days": -1}}}},
            "DATA.ENRICHMENT.PARAMS.ramp_days",
        ),
        (
            {"DATA": {"ENRICHMENT": {"PARAMS": {"enrichment_fraction": 1.5}}}},
            "DATA.ENRICHMENT.PARAMS.enrichment_fraction",
        ),
        (
            {"DATA": {"ENRICHMENT": {"PARAMS": {"enrichment_start": None}}}},
            "DATA.ENRICHMENT.PARAMS.enrichment_start",
        ),
        ({"CATALOG_SIMULATOR": {"sale_prob": 1.2}}, "CATALOG_SIMULATOR.sale_prob"),
        (
            {"DATA": {"TRANSFORM": {"FUNCTION": "aggregate_by_date", "PARAMS": {"metric": 3}}}},
            "DATA.TRANSFORM.PARAMS.metric",
        ),
        (
            {"DATA": {"TRANSFORM": {"PARAMS": {"metric": "revenue"}}}},
            "DATA.TRANSFORM.PARAMS.metric",
        ),
    ],
)
def test_ill_typed_or_missing_fields_name_the_field(tmp_path, override, field):
    message = _error(tmp_path, override)
    assert field in message, message


def test_start_after_end(tmp_path):
    message = _error(tmp_path, {"DATA": {"SOURCE": {"CONFIG": {"start_date": "2024-04-01"}}}})
    assert "must be before or equal to end_date" in message


def test_missing_sections(tmp_path):
    message = _error(tmp_path, text="DATA:\n  SOURCE: {type: simulator}\n")
    assert "MEASUREMENT" in message
    message = _error(tmp_path, text="DATA: [1, 2\n")
    assert "Failed to parse" in message


def test_file_not_found_names_the_file(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(MeasureConfigError, match="Configuration file not found"):
        load_measure_config(missing)


def test_prepare_for_approximation_needs_enrichment_start(tmp_path):
    override = {"DATA": {"TRANSFORM": {"FUNCTION": "prepare_simulator_for_approximation"}}}
    path = write_config(tmp_path, override=override)
    text = path.read_text()
    import yaml

    data = yaml.safe_load(text)
    del data["DATA"]["ENRICHMENT"]
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(MeasureConfigError, match="enrichment_start is required"):
        load_measure_config(path)


# --------------------------------------------------------------------------- dates


def test_quoted_and_yaml_dates_are_equivalent(tmp_path):
    quoted = write_config(tmp_path / "a")
    text = (
        quoted.read_text()
        .replace("'2024-03-01'", "2024-03-01")
        .replace("'2024-03-14'", "2024-03-14")
    )
    assert "start_date: 2024-03-01" in text  # an unquoted YAML date (spec bug B8)
    unquoted = write_config(tmp_path / "b", text=text)
    a = load_measure_config(quoted)
    b = load_measure_config(unquoted)
    assert a.resolved == b.resolved
    assert a.start_date == b.start_date
    assert a.treatment.enrichment_start == b.treatment.enrichment_start


# --------------------------------------------------------------------------- file source


def test_file_source_without_dates_uses_all_rows(tmp_path):
    write_panel_file(tmp_path / "data" / "panel.csv", n_products=40, n_days=10)
    override = {
        "DATA": {
            "SOURCE": {
                "type": "file",
                "CONFIG": {
                    "path": "data/panel.csv",
                    "start_date": None,
                    "end_date": None,
                    "product_id_column": "sku",
                    "date_column": "day",
                    "n_products": 100,
                },
            },
            "ENRICHMENT": None,
        }
    }
    path = write_config(tmp_path, override=override)
    cfg = load_measure_config(path)
    plan = sources.plan_source(cfg, "pilot", None)
    data = sources.load_source(cfg, plan)
    assert len(data.data) == 400
    assert sources.count_units(data.data) == 40
    assert not data.simulated


def test_file_source_scale_needs_scale_path(tmp_path):
    write_panel_file(tmp_path / "panel.csv")
    override = {
        "DATA": {
            "SOURCE": {
                "type": "file",
                "CONFIG": {"path": "panel.csv", "start_date": None, "end_date": None},
            },
            "ENRICHMENT": None,
        }
    }
    path = write_config(tmp_path, override=override)
    cfg = load_measure_config(path, initiative_id="init-1")
    with pytest.raises(MeasureConfigError) as info:
        sources.plan_source(cfg, "scale", 500)
    message = str(info.value)
    assert "DATA.SOURCE.CONFIG.scale_path" in message
    assert str(path) in message and "init-1" in message


def test_enrichment_with_file_source_is_rejected(tmp_path):
    write_panel_file(tmp_path / "panel.csv")
    message = _error(
        tmp_path,
        {"DATA": {"SOURCE": {"type": "file", "CONFIG": {"path": "panel.csv"}}}},
    )
    assert "DATA.ENRICHMENT" in message


# --------------------------------------------------------------------------- order of work


def test_everything_is_validated_before_data_exist(tmp_path, monkeypatch):
    calls = []

    def forbidden(*args, **kwargs):
        calls.append(args)
        raise AssertionError("data were produced before validation finished")

    monkeypatch.setattr("impact_assets.measure.component.load_source", forbidden)
    measure = Measure(storage_url=str(tmp_path / "store"))
    bad_model = write_config(
        tmp_path / "m", override={"MEASUREMENT": {"PARAMS": {"treatment_column": None}}}
    )
    with pytest.raises(MeasureConfigError, match="treatment_column"):
        measure.execute({"initiative_id": "init-1", "measure_config": str(bad_model)})
    write_panel_file(tmp_path / "f" / "panel.csv")
    no_scale = write_config(
        tmp_path / "f",
        override={
            "DATA": {
                "SOURCE": {"type": "file", "CONFIG": {"path": "panel.csv"}},
                "ENRICHMENT": None,
            }
        },
    )
    with pytest.raises(MeasureConfigError, match="scale_path"):
        measure.execute(
            {
                "initiative_id": "init-1",
                "measure_config": str(no_scale),
                "phase": "scale",
                "sample_size": 100,
            }
        )
    assert calls == []
    assert not (tmp_path / "store" / "init-1" / "scale").exists()
