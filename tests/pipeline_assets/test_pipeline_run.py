"""The whole pipeline in one run, partition shapes, refusals and checks."""

import dagster as dg
import pytest

from impact_assets.registry import register_component, unregister_component
from tests.pipeline_assets.conftest import make_defs, materialize, stored
from tests.support import FakeMeasure

IDS = ["init-1", "init-2", "init-3"]


def run_job(defs, instance, name="impact_pipeline", **kwargs):
    return defs.resolve_job_def(name).execute_in_process(
        instance=instance, raise_on_error=False, **kwargs
    )


def test_whole_pipeline_in_one_run(defs, instance):
    result = run_job(defs, instance)
    assert result.success
    assert len(instance.get_runs()) == 1
    for asset in ("pilot_measurement", "evaluation", "allocation", "scale_measurement"):
        assert instance.get_materialized_partitions(dg.AssetKey(asset)) == set(IDS)
    assert instance.get_materialized_partitions(dg.AssetKey("outcome_report")) == set(IDS)
    portfolio = stored(instance, "portfolio")
    assert portfolio["selected_initiatives"] == ["init-1", "init-2"]
    assert portfolio["status"] == "optimal" and portfolio["candidates"] == IDS
    # Every initiative has a complete trail: not_selected at scale, not_scaled in the report.
    assert stored(instance, "scale_measurement", "init-3")["status"] == "not_selected"
    report = stored(instance, "outcome_report", "init-3")
    assert report["status"] == "not_scaled" and report["reason"] == "did not fit"
    scaled = stored(instance, "outcome_report", "init-1")
    assert scaled["status"] == "ok"
    assert scaled["prediction_error"] == pytest.approx(
        scaled["actual_return"] - scaled["predicted_return"]
    )
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks == {
        "pilot_measurement_contract": True,
        "evaluation_contract": True,
        "portfolio_contract": True,
        "portfolio_consistent_with_evaluations": True,
        "portfolio_solver_status": True,
        "allocation_contract": True,
        "scale_measurement_contract": True,
        "outcome_report_contract": True,
    }
    summary = stored(instance, "portfolio_report")
    assert [r["initiative"] for r in summary["rows"]] == IDS
    assert summary["figures"]["n_selected"] == 2 and summary["figures"]["budget_used"] == 30.0


def test_portfolio_with_one_initiative_gets_a_dict(tmp_path, instance):
    defs = make_defs(tmp_path, [{"initiative_id": "solo", "cost_to_scale": 5.0}])
    assert run_job(defs, instance).success
    portfolio = stored(instance, "portfolio")
    assert portfolio["candidates"] == ["solo"] and portfolio["selected_initiatives"] == ["solo"]
    assert stored(instance, "outcome_report", "solo")["status"] == "ok"


def test_portfolio_refuses_when_evaluations_are_missing(defs, instance):
    assert materialize(defs, instance, ["pilot_measurement", "evaluation"], "init-1").success
    result = materialize(defs, instance, ["portfolio"])
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    message = failure.event_specific_data.error.message
    assert "evaluation has not been materialized for 2 initiative(s): init-2, init-3" in message


def test_failed_initiative_is_reported_and_portfolio_refuses(tmp_path, instance):
    class Broken(FakeMeasure):
        def execute(self, event):
            if event["initiative_id"] == "init-2":
                raise FileNotFoundError("data file missing: sales.csv")
            return super().execute(event)

    register_component("BrokenMeasure", Broken)
    try:
        defs = make_defs(tmp_path, measure={"component": "BrokenMeasure"})
        result = run_job(defs, instance)
    finally:
        unregister_component("BrokenMeasure")
    assert not result.success
    assert stored(instance, "pilot_measurement", "init-2")["status"] == "failed"
    assert stored(instance, "pilot_measurement", "init-1")["status"] == "ok"
    assert stored(instance, "evaluation", "init-1")["status"] == "ok"
    assert "data file missing" in stored(instance, "evaluation", "init-2")["error"]
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert failure.step_key == "portfolio"
    message = failure.event_specific_data.error.message
    assert "evaluation failed for 1 initiative(s): init-2:" in message
    assert "allow_partial" in message
    # the failed initiative does not look healthy: both contract checks fail with severity WARN,
    # naming it and its error (the other initiatives' results are kept and evaluated)
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    for name in ("pilot_measurement_contract", "evaluation_contract"):
        assert not checks[name].passed
        assert checks[name].severity == dg.AssetCheckSeverity.WARN
        assert "init-2" in checks[name].description
        assert "data file missing: sales.csv" in checks[name].description
        assert "init-1" not in checks[name].description


def test_allow_partial_allocates_over_the_rest_and_says_so(tmp_path, instance):
    class Broken(FakeMeasure):
        def execute(self, event):
            if event["initiative_id"] == "init-2":
                raise FileNotFoundError("data file missing")
            return super().execute(event)

    register_component("BrokenMeasure", Broken)
    try:
        defs = make_defs(tmp_path, measure={"component": "BrokenMeasure"}, allow_partial=True)
        result = run_job(defs, instance)
    finally:
        unregister_component("BrokenMeasure")
    assert result.success
    portfolio = stored(instance, "portfolio")
    assert portfolio["candidates"] == ["init-1", "init-3"]
    assert "init-2" in portfolio["excluded_failed"]
    assert stored(instance, "allocation", "init-2")["reason"].startswith("evaluation failed")


def test_contract_violation_fails_the_check_and_blocks_downstream(tmp_path, instance):
    class Liar(FakeMeasure):
        def execute(self, event):
            out = super().execute(event)
            if event["initiative_id"] == "init-3":
                out["sample_size"] = 5
            return out

    register_component("LiarMeasure", Liar)
    try:
        defs = make_defs(tmp_path, measure={"component": "LiarMeasure"})
        result = run_job(defs, instance)
    finally:
        unregister_component("LiarMeasure")
    assert not result.success
    check = next(
        c
        for c in result.get_asset_check_evaluations()
        if c.check_name == "pilot_measurement_contract"
    )
    assert not check.passed
    assert "init-3" in check.description and "sample_size" in check.description
    assert check.metadata["failing"].value == ["init-3"]
    assert not instance.get_materialized_partitions(dg.AssetKey("evaluation"))
    assert instance.get_latest_materialization_event(dg.AssetKey("portfolio")) is None


def test_all_failing_single_partition_run_is_red_and_stores_nothing(tmp_path, instance):
    class Broken(FakeMeasure):
        def execute(self, event):
            raise ValueError("bad data")

    register_component("BrokenMeasure", Broken)
    try:
        defs = make_defs(tmp_path, measure={"component": "BrokenMeasure"})
        result = materialize(defs, instance, ["pilot_measurement"], "init-1")
    finally:
        unregister_component("BrokenMeasure")
    assert not result.success
    assert not instance.get_materialized_partitions(dg.AssetKey("pilot_measurement"))


def test_non_finite_output_is_a_contract_violation_stored_as_strict_json(tmp_path, instance):
    class NaNMeasure(FakeMeasure):
        def execute(self, event):
            out = super().execute(event)
            if event["initiative_id"] == "init-1":
                out["effect_estimate"] = float("nan")
            return out

    register_component("NaNMeasure", NaNMeasure)
    try:
        defs = make_defs(tmp_path, measure={"component": "NaNMeasure"})
        result = materialize(defs, instance, ["pilot_measurement"], "init-1")
    finally:
        unregister_component("NaNMeasure")
    assert not result.success  # the blocking check failed
    record = stored(instance, "pilot_measurement", "init-1")
    assert record["status"] == "contract_violation"
    assert record["raw"]["effect_estimate"] is None  # strict JSON: NaN is stored as null
    assert "'effect_estimate': must be a finite number" in record["error"]


def check_only(defs, instance, *checks, **kwargs):
    """Run only the named checks (``asset:check``), as the UI's "Execute" on a check does."""
    keys = [
        dg.AssetCheckKey(dg.AssetKey(asset), name) for asset, name in (c.split(":") for c in checks)
    ]
    return materialize(defs, instance, dg.AssetSelection.checks(*keys), **kwargs)


def test_a_check_runs_alone_on_the_stored_value_without_materializing(defs, instance):
    assert run_job(defs, instance).success
    before = instance.get_latest_materialization_event(dg.AssetKey("pilot_measurement"))
    tags = defs.resolve_job_def("impact_pipeline").tags  # the full initiative range
    result = check_only(
        defs,
        instance,
        "pilot_measurement:pilot_measurement_contract",
        "portfolio:portfolio_contract",
        tags=tags,
    )
    assert result.success
    assert result.get_asset_materialization_events() == []
    assert instance.get_latest_materialization_event(dg.AssetKey("pilot_measurement")) == before
    verdicts = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert set(verdicts) == {"pilot_measurement_contract", "portfolio_contract"}
    assert verdicts["pilot_measurement_contract"].passed
    assert verdicts["portfolio_contract"].description == "budget used 30 of 30"

    # The check reads what is stored now: a record broken on disk fails it, naming the initiative.
    import json
    from pathlib import Path

    path = Path(instance.storage_directory()) / "impact_assets/pilot_measurement/init-2.json"
    record = json.loads(path.read_text())
    record["ci_lower"] = record["effect_estimate"] + 1.0
    path.write_text(json.dumps(record))
    result = check_only(defs, instance, "pilot_measurement:pilot_measurement_contract", tags=tags)
    (verdict,) = result.get_asset_check_evaluations()
    assert not verdict.passed and verdict.metadata["failing"].value == ["init-2"]
    assert "init-2" in verdict.description and "ci_lower" in verdict.description
    assert not result.success  # blocking, ERROR severity: the step fails as well
    assert result.get_asset_materialization_events() == []


def test_a_check_alone_before_its_asset_is_materialized_names_the_missing_initiatives(
    defs, instance
):
    # (the step still loads its own inputs, as Dagster loads an op's inputs for any subset)
    tags = defs.resolve_job_def("impact_pipeline").tags  # the full initiative range
    assert materialize(defs, instance, ["pilot_measurement"], tags=tags).success
    # checks are asset-level: a checks-only run has no partition and checks every initiative
    result = check_only(defs, instance, "evaluation:evaluation_contract")
    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    message = failure.step_failure_data.error.message
    assert "evaluation has not been materialized for 3 initiative(s): " in message
    assert all(key in message for key in IDS)


def test_checks_are_asset_level_and_run_alone_without_a_partition(defs, instance):
    # The UI's "Execute all" on a partitioned asset's checks launches a run with no partition:
    # the asset-level check then checks every initiative of the manifest, without materializing.
    for assets_def in defs.assets:
        for spec in assets_def.check_specs:
            assert spec.partitions_def is None, spec.key
    assert run_job(defs, instance).success
    result = check_only(
        defs, instance, "evaluation:evaluation_contract", "outcome_report:outcome_report_contract"
    )
    assert result.success
    assert result.get_asset_materialization_events() == []
    verdicts = {c.check_name: c for c in result.get_asset_check_evaluations()}
    for name in ("evaluation_contract", "outcome_report_contract"):
        assert verdicts[name].passed
        table = verdicts[name].metadata["initiatives"].value
        assert [row.data["initiative"] for row in table.records] == IDS
        assert verdicts[name].description == f"{name}: contract holds for all 3 initiative(s)"


def test_reports_are_typed_tables_with_units_rounded_figures_and_links(defs, instance):
    assert run_job(defs, instance).success

    def metadata(asset, partition=None):
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(
                asset_key=dg.AssetKey(asset), asset_partitions=[partition] if partition else None
            ),
            limit=1,
        ).records
        return records[0].asset_materialization.metadata

    report = metadata("portfolio_report")
    from impact_assets.assets.tables import PORTFOLIO_TABLES

    assert set(PORTFOLIO_TABLES) <= set(report)
    stored_rows = stored(instance, "portfolio_report")["rows"]
    for name, columns in PORTFOLIO_TABLES.items():
        table = report[name]
        assert isinstance(table, dg.TableMetadataValue)
        assert [c.name for c in table.schema.columns] == list(columns)
        assert [r.data["initiative"] for r in table.records] == IDS
    types = {c.name: c.type for c in report["decisions"].schema.columns}
    assert types["selected"] == "bool" and types["cost_money"] == "float"
    for row, full in zip(report["pilots"].records, stored_rows, strict=True):
        assert row.data["pilot_estimate_money"] == round(full["pilot_estimate"], 2)  # cents
    assert report["calibration"].value == round(report["calibration"].value, 3)
    assert isinstance(report["portfolio_run"], dg.DagsterRunMetadataValue)
    assert isinstance(report["portfolio"], dg.DagsterAssetMetadataValue)
    assert "report" not in report  # the table replaces the markdown table

    outcome = metadata("outcome_report", "init-3")  # not scaled: pilot in both units, labelled
    (row,) = outcome["outcome"].records
    assert row.data["status"] == "not_scaled"
    assert {"pilot_estimate_effect_units", "pilot_estimate_money"} <= set(row.data)
    assert isinstance(outcome["pilot_measurement_run"], dg.DagsterRunMetadataValue)
    assert isinstance(outcome["scale_measurement"], dg.DagsterAssetMetadataValue)

    allocation = metadata("allocation", "init-1")
    assert isinstance(allocation["portfolio_storage_id"], dg.TextMetadataValue)  # never plotted
    assert isinstance(allocation["portfolio_run"], dg.DagsterRunMetadataValue)

    # a partition's headline numbers are shown to six significant digits; the stored record
    # keeps every digit
    from impact_assets.assets.tables import significant

    shown = metadata("evaluation", "init-1")
    full = stored(instance, "evaluation", "init-1")
    for name in ("confidence", "return_worst", "return_median", "return_best"):
        assert shown[name].value == significant(full[name])
        assert len(f"{abs(shown[name].value):.15g}".replace(".", "").strip("0")) <= 6


def test_significant_keeps_six_digits_and_leaves_everything_else():
    from impact_assets.assets.tables import significant

    assert significant(195996.4838805) == 195996.0
    assert significant(0.9453985304687085) == 0.945399
    assert significant(-0.02750123456) == -0.0275012
    assert significant(0.0) == 0.0 and significant(7) == 7 and significant("ok") == "ok"
    assert significant(None) is None and significant(True) is True
