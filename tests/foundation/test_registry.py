"""Component registry: built-ins, run-time registration, entry points and dotted paths."""

import sys
import textwrap

import pytest

from impact_assets import MockAllocate, PipelineComponent
from impact_assets.registry import (
    ComponentError,
    available_components,
    build_component,
    resolve_component,
)


def test_builtin_resolves_lazily():
    assert resolve_component("MockAllocate") is MockAllocate
    assert isinstance(build_component("MockAllocate"), MockAllocate)


def test_unknown_name_lists_available_and_suggests():
    with pytest.raises(ComponentError) as err:
        resolve_component("MockAlocate")
    msg = str(err.value)
    assert msg.startswith("Unknown component 'MockAlocate'. Did you mean 'MockAllocate'?")
    for name in ("Measure", "Evaluate", "MinimaxRegretAllocate", "BayesianAllocate"):
        assert name in msg


def test_unknown_parameter_is_named():
    with pytest.raises(ComponentError, match="component 'MockAllocate' has no parameter 'budget'"):
        build_component("MockAllocate", {"budget": 3})


def test_dotted_path(tmp_path, monkeypatch):
    (tmp_path / "my_plugins.py").write_text(
        textwrap.dedent(
            """
            from impact_assets import PipelineComponent

            class Doubler(PipelineComponent):
                def __init__(self, factor=2):
                    self.factor = factor

                def execute(self, event):
                    return {"value": event["value"] * self.factor}

            NOT_A_COMPONENT = 3
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    comp = build_component("my_plugins:Doubler", {"factor": 3})
    assert comp.execute({"value": 2}) == {"value": 6}
    assert type(build_component("my_plugins.Doubler")).__name__ == "Doubler"
    with pytest.raises(ComponentError, match="not a PipelineComponent"):
        resolve_component("my_plugins:NOT_A_COMPONENT")
    with pytest.raises(ComponentError, match="has no attribute 'Missing'"):
        resolve_component("my_plugins:Missing")
    with pytest.raises(ComponentError, match="cannot import module 'no_such_module'"):
        resolve_component("no_such_module:Thing")
    sys.modules.pop("my_plugins", None)


def test_entry_point_from_an_installed_distribution(tmp_path, monkeypatch):
    """A real distribution on sys.path advertising the ``impact_assets.components`` group."""
    (tmp_path / "third_party_alloc.py").write_text(
        "from impact_assets import PipelineComponent\n"
        "class EverythingAllocate(PipelineComponent):\n"
        "    def execute(self, event):\n"
        "        ids = [i['initiative_id'] for i in event['initiatives']]\n"
        "        return {'selected_initiatives': ids, 'predicted_returns': {i: 0.0 for i in ids},\n"
        "                'budget_allocated': {i: 0.0 for i in ids}}\n"
    )
    dist = tmp_path / "third_party_alloc-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: third-party-alloc\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[impact_assets.components]\nEverythingAllocate = third_party_alloc:EverythingAllocate\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "EverythingAllocate" in available_components()
    comp = build_component("EverythingAllocate")
    out = comp.execute({"initiatives": [{"initiative_id": "a"}], "budget": 1})
    assert out["selected_initiatives"] == ["a"]
    sys.modules.pop("third_party_alloc", None)


def test_runtime_registration_rejects_non_components():
    from impact_assets.registry import register_component

    with pytest.raises(ComponentError, match="must be a PipelineComponent subclass"):
        register_component("Bad", int)


def test_describe_records_class_and_params():
    from tests.support import FakeMeasure

    assert FakeMeasure(shift=1.5).describe() == {
        "component": "FakeMeasure",
        "class": "tests.support:FakeMeasure",
        "params": {"shift": 1.5},
    }
    assert issubclass(FakeMeasure, PipelineComponent)
