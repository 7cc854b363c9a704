"""The manifest loader: every documented error names the file, the key and the initiative."""

import dataclasses
from pathlib import Path

import pytest
import yaml

from impact_assets import steps
from impact_assets.config import ConfigError, load_config, load_stage_config
from tests.support import write_manifest

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference" / "impact-loop"


def edit(path: Path, **changes):
    data = yaml.safe_load(path.read_text())
    data.update(changes)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def error(path) -> str:
    with pytest.raises(ConfigError) as err:
        load_config(path)
    return str(err.value)


def test_valid_manifest_resolves_paths_relative_to_the_yaml(manifest):
    cfg = load_config(manifest)
    assert cfg.budget == 30.0 and cfg.scale_sample_size == 500 and cfg.max_workers == 2
    assert cfg.initiative_ids == ["init-1", "init-2", "init-3"]
    assert cfg.initiatives[0].measure_config == manifest.parent / "measure" / "init-1.yaml"
    assert cfg.measure.component == "FakeMeasure" and cfg.measure.path.name == "measure.yaml"
    assert cfg.allocate.component == "MockAllocate"


def test_upstream_demo_manifest_loads():
    if not (REFERENCE / "config.yaml").exists():
        pytest.skip(f"upstream reference files absent: no {REFERENCE / 'config.yaml'}")
    cfg = load_config(REFERENCE / "config.yaml")
    assert cfg.initiative_ids == [
        "product-desc-enhancement",
        "checkout-flow-optimization",
        "search-relevance-tuning",
        "pricing-display-test",
        "recommendation-engine-v2",
    ]
    assert cfg.budget == 100000 and cfg.scale_sample_size == 5000 and cfg.max_workers == 4
    assert cfg.measure.component == "Measure"
    assert cfg.measure.params == {"storage_url": "./data/measure"}
    assert cfg.allocate.component == "MinimaxRegretAllocate"
    assert cfg.initiative("pricing-display-test").cost_to_scale == 10000


def test_missing_manifest_file(tmp_path):
    assert error(tmp_path / "nope.yaml").endswith("nope.yaml: file not found")


def test_missing_stage_file_names_the_key(manifest):
    (manifest.parent / "stages" / "evaluate.yaml").unlink()
    msg = error(manifest)
    assert str(manifest) in msg and "evaluate.config: file not found" in msg


def test_missing_measure_config_names_initiative(manifest):
    (manifest.parent / "measure" / "init-2.yaml").unlink()
    msg = error(manifest)
    assert "initiative 'init-2'" in msg and "initiatives[1].measure_config: file not found" in msg


def test_yaml_syntax_error_gives_file_and_line(manifest):
    manifest.write_text("budget: 10\ninitiatives: [\n  - {a: 1\n")
    msg = error(manifest)
    assert f"{manifest}:" in msg and "YAML syntax error" in msg
    line = int(msg.split(f"{manifest}:")[1].split(":")[0])
    assert line >= 3


def test_missing_required_key(manifest):
    data = yaml.safe_load(manifest.read_text())
    del data["budget"]
    manifest.write_text(yaml.safe_dump(data))
    assert error(manifest) == f"{manifest}: budget: missing required key"


def test_unknown_key_suggests_closest(manifest):
    edit(manifest, scale_sample_sise=10)
    msg = error(manifest)
    assert "scale_sample_sise: unknown key; did you mean 'scale_sample_size'?" in msg


def test_unknown_initiative_key_names_initiative(tmp_path):
    path = write_manifest(tmp_path, [{"initiative_id": "a", "cost_to_scale": 1, "costs": 2}])
    msg = error(path)
    assert "initiative 'a': initiatives[0].costs: unknown key" in msg


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("budget", "lots", "budget: must be a number, got str 'lots'"),
        ("budget", 0, "budget: must be > 0, got 0"),
        ("budget", -5, "budget: must be > 0, got -5"),
        ("scale_sample_size", 10.5, "scale_sample_size: must be an integer, got 10.5"),
        ("scale_sample_size", 0, "scale_sample_size: must be > 0, got 0"),
        ("max_workers", 0, "max_workers: must be > 0, got 0"),
        ("max_workers", True, "max_workers: must be an integer, got bool True"),
        (
            "parallelism",
            "gpu",
            "parallelism: must be one of auto, threads, processes, got 'gpu'",
        ),
    ],
)
def test_bad_top_level_values(manifest, key, value, expected):
    edit(manifest, **{key: value})
    assert error(manifest) == f"{manifest}: {expected}"


@pytest.mark.parametrize("cost", [0, -1])
def test_non_positive_cost_names_initiative(tmp_path, cost):
    path = write_manifest(tmp_path, [{"initiative_id": "a", "cost_to_scale": cost}])
    assert error(path) == (
        f"{path}: initiative 'a': initiatives[0].cost_to_scale: must be > 0, got {cost}"
    )


def test_duplicate_initiative_ids(tmp_path):
    path = write_manifest(
        tmp_path,
        [{"initiative_id": "a", "cost_to_scale": 1}, {"initiative_id": "a", "cost_to_scale": 2}],
    )
    assert "initiative 'a': initiatives[1].initiative_id: duplicate id" in error(path)


@pytest.mark.parametrize("bad", ["../escape", "a b", "-lead", "x" * 65, "é"])
def test_invalid_initiative_ids(tmp_path, bad):
    path = write_manifest(
        tmp_path, [{"initiative_id": bad, "cost_to_scale": 1, "measure_config": "m.yaml"}]
    )
    (tmp_path / "m.yaml").write_text("{}")
    assert f"initiatives[0].initiative_id: invalid id {bad!r}" in error(path)


def test_empty_initiative_list(manifest):
    edit(manifest, initiatives=[])
    assert error(manifest) == f"{manifest}: initiatives: the initiative list is empty"


def test_empty_manifest(manifest):
    manifest.write_text("")
    assert error(manifest) == f"{manifest}: the manifest is empty"


def test_paths_outside_the_manifest_tree_are_refused(tmp_path):
    outside = tmp_path / "outside.yaml"
    outside.write_text("{}")
    path = write_manifest(
        tmp_path / "project",
        [{"initiative_id": "a", "cost_to_scale": 1, "measure_config": "../outside.yaml"}],
    )
    assert "outside the manifest directory" in error(path)
    edit(path, allow_external_paths=True)
    assert load_config(path).initiatives[0].measure_config == outside.resolve()


def test_stage_config_needs_component(tmp_path):
    path = tmp_path / "stage.yaml"
    path.write_text("storage_url: x\n")
    with pytest.raises(ConfigError, match=r"stage.yaml: component: missing required key"):
        load_stage_config(path, "measure")


def test_unknown_component_in_stage_config_names_file(tmp_path):
    path = write_manifest(tmp_path, allocate={"component": "MinimaxRegretAlocate"})
    cfg = load_config(path)
    with pytest.raises(ConfigError) as err:
        cfg.allocate.build()
    msg = str(err.value)
    assert "allocate.yaml: component:" in msg and "Did you mean 'MinimaxRegretAllocate'" in msg


def test_value_per_unit_is_optional_and_validated(tmp_path):
    path = write_manifest(
        tmp_path, [{"initiative_id": "a", "cost_to_scale": 1, "value_per_unit": 2.5}]
    )
    assert load_config(path).initiatives[0].value_per_unit == 2.5
    path = write_manifest(
        tmp_path, [{"initiative_id": "a", "cost_to_scale": 1, "value_per_unit": -1}]
    )
    assert "initiatives[0].value_per_unit: must be > 0, got -1" in error(path)


def test_measure_configs_are_parsed_once_and_kept_on_the_initiative(manifest):
    """The loader parses each measure config (to confine its data paths) and keeps the mapping,
    with the file's stat, for MEASURE; it takes no part in equality, hashing or repr."""
    cfg = load_config(manifest)
    item = cfg.initiatives[0]
    stamp, data = item.parsed_measure_config
    stat = item.measure_config.stat()
    assert stamp == (stat.st_mtime_ns, stat.st_size)
    assert data == yaml.safe_load(item.measure_config.read_text())
    again = load_config(manifest).initiatives[0]
    assert again == item and hash(again) == hash(item)
    assert dataclasses.replace(item, parsed_measure_config=None) == item
    assert "parsed_measure_config" not in repr(item)
    event = steps.measure_event(item)
    assert event["measure_config_parsed"] is item.parsed_measure_config
    bare = steps.measure_event(dataclasses.replace(item, parsed_measure_config=None))
    assert "measure_config_parsed" not in bare


def test_measure_configs_kept_only_when_measure_would_read_the_same(tmp_path):
    root = tmp_path / "project"
    manifest = write_manifest(root)
    measure_dir = root / "measure"
    (measure_dir / "init-1.yaml").write_text("")  # empty: MEASURE reads {}
    (measure_dir / "init-2.yaml").write_text("- a list\n")  # not a mapping: MEASURE reports it
    (measure_dir / "init-3.json").write_text('{"effect": 3.0}')  # JSON: MEASURE reads it
    edit(
        manifest,
        initiatives=[
            *yaml.safe_load(manifest.read_text())["initiatives"][:2],
            {
                "initiative_id": "init-3",
                "cost_to_scale": 30.0,
                "measure_config": "measure/init-3.json",
            },
        ],
    )
    parsed = {i.initiative_id: i.parsed_measure_config for i in load_config(manifest).initiatives}
    assert parsed["init-1"][1] == {}
    assert parsed["init-2"] is None and parsed["init-3"] is None
    edit(manifest, allow_external_paths=True)  # nothing is parsed at load time then
    assert all(i.parsed_measure_config is None for i in load_config(manifest).initiatives)
