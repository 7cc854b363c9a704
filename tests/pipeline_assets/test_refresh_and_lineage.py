"""Single-initiative refreshes, staleness, lineage and component configuration recorded."""

import dagster as dg
from dagster._core.definitions.data_version import StaleStatus
from dagster._utils.test.data_versions import get_stale_status_resolver

from impact_assets.assets.storage import content_hash
from tests.pipeline_assets.conftest import make_defs, materialize, stored


def latest(instance, asset, partition=None):
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=dg.AssetKey(asset),
            asset_partitions=[partition] if partition else None,
        ),
        limit=1,
    ).records
    return records[0] if records else None


def run_pipeline(defs, instance, run_config=None):
    result = defs.resolve_job_def("impact_pipeline").execute_in_process(
        instance=instance, run_config=run_config or {}, raise_on_error=False
    )
    assert result.success
    return result


def test_lineage_storage_ids_equal_the_instance_records(defs, instance):
    run_pipeline(defs, instance)
    for key in ("init-1", "init-3"):
        lineage = stored(instance, "outcome_report", key)["lineage"]
        for asset in ("pilot_measurement", "evaluation", "allocation", "scale_measurement"):
            pointer = lineage["inputs"][asset]
            record = latest(instance, asset, key)
            assert pointer["storage_id"] == record.storage_id
            assert pointer["run_id"] == record.run_id
            assert pointer["partition"] == key
            assert pointer["consistent"] is True
            assert pointer["content_sha256"] == content_hash(stored(instance, asset, key))
            assert pointer["code_version"] == "1"
        assert (
            lineage["inputs"]["portfolio"]["storage_id"] == latest(instance, "portfolio").storage_id
        )
        assert lineage["inputs"]["pilot_measurement"]["component"]["component"] == "FakeMeasure"
        assert lineage["measure_config"]["path"].endswith(f"measure/{key}.yaml")
        assert len(lineage["measure_config"]["sha256"]) == 64
    # the report's view on its materialization shows where each input came from
    event = latest(instance, "outcome_report", "init-1").asset_materialization
    view = event.metadata["report"].value
    for pointer in stored(instance, "outcome_report", "init-1")["lineage"]["inputs"].values():
        assert f"| {pointer['storage_id']} |" in view
    assert event.metadata["content_sha256"].value == content_hash(
        stored(instance, "outcome_report", "init-1")
    )


def test_single_initiative_refresh_leaves_others_untouched_and_marks_downstream_stale(
    tmp_path, instance
):
    defs = make_defs(tmp_path / "project")
    run_pipeline(defs, instance)
    before = {k: latest(instance, "pilot_measurement", k).storage_id for k in ("init-1", "init-3")}
    portfolio_before = latest(instance, "portfolio").storage_id
    resolver = get_stale_status_resolver(instance, list(defs.assets))
    assert resolver.get_status(dg.AssetKey("portfolio")) == StaleStatus.FRESH

    # The same measure component with a different parameter changes init-2's numbers.
    result = materialize(
        defs,
        instance,
        ["pilot_measurement", "evaluation"],
        "init-2",
        run_config={
            "resources": {
                "measure": {"config": {"component": "FakeMeasure", "params": {"shift": 3.0}}}
            }
        },
    )
    assert result.success
    after = {k: latest(instance, "pilot_measurement", k).storage_id for k in ("init-1", "init-3")}
    assert after == before
    assert latest(instance, "portfolio").storage_id == portfolio_before  # no hidden re-allocation
    assert stored(instance, "pilot_measurement", "init-2")["effect_estimate"] > 0
    resolver = get_stale_status_resolver(instance, list(defs.assets))
    assert resolver.get_status(dg.AssetKey("evaluation"), "init-2") == StaleStatus.FRESH
    assert resolver.get_status(dg.AssetKey("portfolio")) == StaleStatus.STALE
    assert resolver.get_status(dg.AssetKey("evaluation"), "init-1") == StaleStatus.FRESH


def test_rerun_with_unchanged_inputs_is_not_stale(defs, instance):
    run_pipeline(defs, instance)
    first = latest(instance, "pilot_measurement", "init-1").asset_materialization
    run_pipeline(defs, instance)
    second = latest(instance, "pilot_measurement", "init-1").asset_materialization
    assert first.tags["dagster/data_version"] == second.tags["dagster/data_version"]
    resolver = get_stale_status_resolver(instance, list(defs.assets))
    for asset in ("portfolio", "portfolio_report"):
        assert resolver.get_status(dg.AssetKey(asset)) == StaleStatus.FRESH


def test_run_config_override_is_recorded(defs, instance):
    run_pipeline(
        defs,
        instance,
        {
            "resources": {
                "measure": {"config": {"component": "FakeMeasure", "params": {"shift": 0.25}}}
            }
        },
    )
    event = latest(instance, "pilot_measurement", "init-1").asset_materialization
    component = event.metadata["component"].value
    assert component["component"] == "FakeMeasure"
    assert component["params"] == {"shift": 0.25}
    assert component["class"] == "tests.support:FakeMeasure"
    lineage = stored(instance, "outcome_report", "init-1")["lineage"]
    assert lineage["inputs"]["scale_measurement"]["component"]["params"] == {"shift": 0.25}


def test_env_var_selects_a_component(tmp_path, instance, monkeypatch):
    from impact_assets.assets.resources import AllocateResource

    monkeypatch.setenv("TEST_ALLOCATE_COMPONENT", "MockAllocate")
    defs = make_defs(tmp_path / "project")
    resources = {
        **defs.resources,
        "allocate": AllocateResource(component=dg.EnvVar("TEST_ALLOCATE_COMPONENT")),
    }
    result = dg.materialize(
        list(defs.assets),
        instance=instance,
        resources=resources,
        tags=defs.resolve_job_def("impact_pipeline").tags,
    )
    assert result.success
    event = latest(instance, "portfolio").asset_materialization
    assert event.metadata["component"].value["component"] == "MockAllocate"


def test_the_providing_package_is_found_without_scanning_every_package(monkeypatch):
    """describe() names the distribution that provides a component: for a package that declares
    its module (impact-assets) without the scan of every installed distribution (about 0.4 s),
    and with the scan otherwise; both give what the scan gives."""
    import importlib.metadata

    from impact_assets.assets import resources

    scanned = importlib.metadata.packages_distributions()
    resources._distribution_version.cache_clear()
    resources._packages_distributions.cache_clear()

    def no_scan():
        raise AssertionError("scanned every installed package")

    monkeypatch.setattr(importlib.metadata, "packages_distributions", no_scan)
    ours = resources.MeasureResource(component="Measure").describe()
    assert ours["package"] in scanned["impact_assets"]
    assert ours["version"] == importlib.metadata.version(ours["package"])
    monkeypatch.undo()
    resources._distribution_version.cache_clear()
    for module in ("numpy.linalg", "yaml", "tests.support", "no_such_module"):
        found = resources._distribution_version(module)
        assert found["package"] == (scanned.get(module.split(".")[0]) or [None])[0], module


def test_a_partition_data_version_changes_exactly_when_its_content_changes(defs, instance):
    run_pipeline(defs, instance)  # one range run: one data version on every partition
    version = latest(instance, "pilot_measurement", "init-2").asset_materialization.tags[
        "dagster/data_version"
    ]

    def status(asset, partition=None):
        resolver = get_stale_status_resolver(instance, list(defs.assets))
        return resolver.get_status(dg.AssetKey(asset), partition)

    # a no-op refresh of one partition: same content, same data version, nothing stale
    assert materialize(defs, instance, ["pilot_measurement"], "init-2").success
    event = latest(instance, "pilot_measurement", "init-2").asset_materialization
    assert event.tags["dagster/data_version"] == version
    for key in ("init-1", "init-2", "init-3"):
        assert status("evaluation", key) == StaleStatus.FRESH
    assert status("portfolio") == StaleStatus.FRESH

    # a real change of that partition: its own content hash; only its dependents go stale
    changed = {
        "resources": {"measure": {"config": {"component": "FakeMeasure", "params": {"shift": 3.0}}}}
    }
    assert materialize(defs, instance, ["pilot_measurement"], "init-2", run_config=changed).success
    event = latest(instance, "pilot_measurement", "init-2").asset_materialization
    assert event.tags["dagster/data_version"] == content_hash(
        stored(instance, "pilot_measurement", "init-2")
    )
    assert status("evaluation", "init-2") == StaleStatus.STALE
    assert status("evaluation", "init-1") == StaleStatus.FRESH
    assert status("evaluation", "init-3") == StaleStatus.FRESH


def test_a_null_in_the_stage_config_survives_a_launch_with_the_prefilled_config(tmp_path, instance):
    allocate = {"component": "MinimaxRegretAllocate", "min_portfolio_worst_return": None}
    defs = make_defs(tmp_path / "project", allocate=allocate)
    stage_file = str((tmp_path / "project" / "stages" / "allocate.yaml").resolve())
    run_pipeline(defs, instance)
    first = stored(instance, "portfolio")
    params = first["lineage"]["component"]["params"]
    assert "min_portfolio_worst_return" in params and params["min_portfolio_worst_return"] is None
    # what the launchpad pre-fills (a free-form mapping loses nulls, so params stay empty)
    prefilled = {
        "component": "MinimaxRegretAllocate",
        "params": {},
        "stage_config": stage_file,
    }
    run_pipeline(defs, instance, {"resources": {"allocate": {"config": prefilled}}})
    second = stored(instance, "portfolio")
    assert second["lineage"]["component"] == first["lineage"]["component"]
    assert second["selected_initiatives"] == first["selected_initiatives"]
    # an edit overrides only the key it names
    edited = {**prefilled, "params": {"min_confidence_threshold": 0.5}}
    run_pipeline(defs, instance, {"resources": {"allocate": {"config": edited}}})
    params = stored(instance, "portfolio")["lineage"]["component"]["params"]
    assert params["min_confidence_threshold"] == 0.5
    assert params["min_portfolio_worst_return"] is None
