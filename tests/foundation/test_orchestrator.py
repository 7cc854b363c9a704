"""The plain-Python Orchestrator with small fake components."""

import ast
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from impact_assets import ContractError, Orchestrator, load_config
from impact_assets.reporting import fmt
from tests.support import FakeEvaluate, FakeMeasure, write_manifest

ROOT = Path(__file__).resolve().parents[2]


def build(path, **components):
    cfg = load_config(path)
    parts = {"measure": FakeMeasure(), "evaluate": FakeEvaluate()}
    parts.update(components)
    if "allocate" not in parts:
        parts["allocate"] = cfg.allocate.build()
    return Orchestrator(config=cfg, **parts)


def test_results_in_manifest_order_and_enrichment(manifest):
    orch = build(manifest)
    out = orch.run()
    assert set(out) == {
        "pilot_results",
        "evaluate_results",
        "allocate_result",
        "scale_results",
        "outcome_reports",
        "frontier",
    }
    ids = ["init-1", "init-2", "init-3"]
    assert [r["initiative_id"] for r in out["pilot_results"]] == ids
    assert [r["initiative_id"] for r in out["evaluate_results"]] == ids
    pilot_events = [e for e in orch.measure.events if e["phase"] == "pilot"]
    cfg = orch.config
    assert sorted(pilot_events, key=lambda e: e["initiative_id"]) == [
        {
            "initiative_id": i.initiative_id,
            "measure_config": str(i.measure_config),
            "phase": "pilot",
            # the measure config as the manifest loader parsed it, for MEASURE to reuse
            "measure_config_parsed": i.parsed_measure_config,
        }
        for i in cfg.initiatives
    ]
    assert all(e["measure_config_parsed"] is not None for e in pilot_events)
    costs = {e["initiative_id"]: e["cost_to_scale"] for e in orch.evaluate.events}
    assert costs == {"init-1": 10.0, "init-2": 20.0, "init-3": 30.0}
    assert "value_per_unit" not in orch.evaluate.events[0]
    scale_events = [e for e in orch.measure.events if e["phase"] == "scale"]
    assert scale_events and all(e["sample_size"] == 500 for e in scale_events)
    selected = out["allocate_result"]["selected_initiatives"]
    assert sorted(e["initiative_id"] for e in scale_events) == sorted(selected)
    assert [r["initiative_id"] for r in out["scale_results"]] == selected
    assert [r["initiative_id"] for r in out["outcome_reports"]] == selected
    for rep in out["outcome_reports"]:
        assert rep["prediction_error"] == pytest.approx(
            rep["actual_return"] - rep["predicted_return"]
        )
        assert rep["sample_size_scale"] == 500 and rep["sample_size_pilot"] == 100


def test_allocate_receives_all_evaluations_and_budget(manifest):
    seen = []

    class Spy(FakeEvaluate.__mro__[1]):  # a PipelineComponent
        def execute(self, event):
            seen.append(event)
            return {"selected_initiatives": [], "predicted_returns": {}, "budget_allocated": {}}

    build(manifest, allocate=Spy()).run()
    assert seen[0]["budget"] == 30.0
    assert [i["initiative_id"] for i in seen[0]["initiatives"]] == ["init-1", "init-2", "init-3"]
    # then the frontier: the same component at 21 budgets from 0 to the total cost (60), the
    # chosen 30 being one of them
    assert [e["budget"] for e in seen[1:]] == [60.0 * k / 20 for k in range(21)]


def test_empty_allocation_skips_scale(tmp_path):
    path = write_manifest(tmp_path, budget=1.0)
    orch = build(path)
    out = orch.run()
    assert out["allocate_result"]["selected_initiatives"] == []
    assert out["scale_results"] == [] and out["outcome_reports"] == []
    assert all(e["phase"] == "pilot" for e in orch.measure.events)


def test_single_initiative_gives_one_report(tmp_path):
    path = write_manifest(tmp_path, [{"initiative_id": "solo", "cost_to_scale": 5.0}])
    out = build(path).run()
    assert len(out["outcome_reports"]) == 1


def test_exception_in_one_initiative_propagates(manifest):
    class Boom(FakeMeasure):
        def execute(self, event):
            if event["initiative_id"] == "init-2":
                raise RuntimeError("data file missing for init-2")
            return super().execute(event)

    with pytest.raises(RuntimeError, match="data file missing for init-2"):
        build(manifest, measure=Boom()).run()


def test_contract_violation_is_caught_at_the_boundary(manifest):
    class Liar(FakeMeasure):
        def execute(self, event):
            out = super().execute(event)
            out["ci_lower"] = out["effect_estimate"] + 1
            return out

    with pytest.raises(ContractError, match="MeasureResult contract violated for initiative"):
        build(manifest, measure=Liar()).run()


def test_fan_out_runs_in_parallel_and_keeps_order(manifest):
    active, peak = [0], [0]
    lock = threading.Lock()

    class Slow(FakeMeasure):
        def execute(self, event):
            with lock:
                active[0] += 1
                peak[0] = max(peak[0], active[0])
            time.sleep(0.05 if event["initiative_id"] == "init-1" else 0.01)
            with lock:
                active[0] -= 1
            return super().execute(event)

    out = build(manifest, measure=Slow()).run()
    assert peak[0] == 2  # max_workers: 2
    assert [r["initiative_id"] for r in out["pilot_results"]] == ["init-1", "init-2", "init-3"]


def test_from_config_builds_components_from_stage_files(manifest):
    orch = Orchestrator.from_config(manifest)
    assert type(orch.measure).__name__ == "FakeMeasure"
    assert type(orch.allocate).__name__ == "MockAllocate"


def test_deterministic_across_runs(manifest):
    first = build(manifest).run()
    second = build(manifest).run()
    assert first == second


def modules_loaded_by(imports: str, watched: tuple[str, ...], **env: str) -> list[str]:
    """Which of ``watched`` a fresh interpreter has in ``sys.modules`` after ``imports``."""
    code = f"import sys\n{imports}\nprint(sorted(m for m in {watched!r} if m in sys.modules))\n"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **env},
    )
    return ast.literal_eval(out.stdout)


def test_import_has_no_side_effects():
    imports = (
        "import impact_assets\n"
        "from impact_assets import Orchestrator, load_config, PipelineComponent, MeasureResult, "
        "EvaluateResult, AllocateResult, OutcomeReport, ModelType, MockAllocate"
    )
    assert modules_loaded_by(imports, ("dagster",)) == []


def test_measure_worker_processes_do_not_import_dagster():
    """A spawned MEASURE worker imports what unpickling its task needs; Dagster is not part of it
    (it would add about a second to every worker start)."""
    imports = (
        "from impact_assets.steps import measure_record\n"
        "from impact_assets.parallel import WORKER_IMPORTS\n"
        "import importlib\n"
        "for name in WORKER_IMPORTS: importlib.import_module(name)\n"
        "from impact_assets.measure.component import Measure"
    )
    assert modules_loaded_by(imports, ("dagster",)) == []


def test_loading_the_code_location_leaves_model_libraries_to_the_fits():
    """The Dagster CLI and code servers load the definitions; statsmodels, scikit-learn and
    scipy.stats are imported by the first model fit, not by that load."""
    loaded = modules_loaded_by(
        "import impact_assets.definitions",
        ("statsmodels", "sklearn", "scipy.stats"),
        IMPACT_MANIFEST=str(ROOT / "configs" / "pipeline.yaml"),
    )
    assert loaded == []


def test_loading_the_code_location_starts_no_process_or_thread():
    """Importing the code location builds the Definitions and nothing else: no worker process,
    no thread."""
    script = (
        "import multiprocessing, threading\n"
        "import impact_assets.definitions\n"
        "print(len(multiprocessing.active_children()), threading.active_count())\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "IMPACT_MANIFEST": str(ROOT / "configs" / "pipeline.yaml"),
    }
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=True,
    )
    assert out.stdout.split() == ["0", "1"]


def test_a_worker_pool_is_reused_and_closed():
    from impact_assets import parallel

    with parallel.WorkerPool(1) as pool:
        assert parallel.map_ordered(abs, [-1, -2, 3], 1, "processes", pool) == [1, 2, 3]
        executor = pool.executor()
        assert parallel.map_ordered(abs, [-4], 1, "processes", pool) == [4]
        assert pool.executor() is executor  # the same workers for the second stage
    assert not pool.running


def _die(code: int) -> None:
    os._exit(code)  # a worker killed mid-task (out of memory, a signal)


def test_a_worker_that_dies_gives_a_clear_error_and_new_workers():
    from concurrent.futures.process import BrokenProcessPool

    from impact_assets import parallel

    with parallel.WorkerPool(1) as pool:
        with pytest.raises(
            BrokenProcessPool, match="a MEASURE worker process died before returning"
        ):
            parallel.map_ordered(_die, [3], 1, "processes", pool)
        assert parallel.map_ordered(abs, [-5], 1, "processes", pool) == [5]  # new workers


def test_processes_give_the_same_results_as_threads(tmp_path):
    """MEASURE in worker processes (spawned) returns exactly what threads return."""
    from impact_assets.synthetic_portfolio import write_portfolio

    results = {}
    for mode in ("threads", "processes"):
        path = write_portfolio(tmp_path / mode, 4, seed=3, n_products=40, scale_sample_size=60)
        text = path.read_text().replace("max_workers: 2", f"max_workers: 2\nparallelism: {mode}")
        path.write_text(text.replace("./data/measure", str(tmp_path / mode / "store")))
        stage = path.parent / "stages" / "measure.yaml"
        stage.write_text(stage.read_text().replace("./data/measure", str(tmp_path / "store")))
        assert load_config(path).parallelism == mode
        out = Orchestrator.from_config(path).run()
        for key in ("pilot_results", "scale_results"):
            for item in out[key]:
                item.pop("job_dir", None)
        results[mode] = out
    assert results["threads"] == results["processes"]
    assert results["threads"]["pilot_results"]


def test_outcome_reports_show_raw_and_shrunk_predictions(tmp_path):
    from impact_assets.reporting import outcome_markdown

    initiatives = [{"initiative_id": f"init-{k}", "cost_to_scale": 10.0 + k} for k in range(1, 7)]
    path = write_manifest(
        tmp_path / "p",
        initiatives,
        allocate={"component": "EmpiricalBayesAllocate"},
        budget=40.0,
    )
    out = build(path).run()
    allocation = out["allocate_result"]
    assert allocation["rule"] == "empirical_bayes" and out["outcome_reports"]
    shrunk = allocation["detail"]["shrinkage"]["initiatives"]
    pilots = {p["initiative_id"]: p for p in out["pilot_results"]}
    for report in out["outcome_reports"]:
        key = report["initiative_id"]
        details = report["details"]
        assert details["predicted_return_raw"] == pilots[key]["effect_estimate"]
        assert report["predicted_return"] == shrunk[key]["posterior_mean"]
        assert details["shrinkage"] == report["predicted_return"] - details["predicted_return_raw"]
        lo, hi = details["predicted_interval"]
        assert lo < report["predicted_return"] < hi
        assert details["reliability"] == shrunk[key]["reliability"]
        text = outcome_markdown({**report, "status": "ok"})
        assert "| raw pilot return |" in text
        assert "| predicted return (after shrinkage) |" in text
        assert f"| prediction interval | [{fmt(lo)}, {fmt(hi)}] |" in text
    # the frontier is solved with the same component: at the chosen budget it is the portfolio
    at_budget = [p for p in out["frontier"]["points"] if p["budget"] == 40.0]
    assert at_budget and at_budget[0]["selected"] == allocation["selected_initiatives"]


@pytest.mark.parametrize("raw", ["20", "-5", "high"])
def test_a_bad_worker_nice_names_the_variable(monkeypatch, raw):
    from impact_assets import parallel

    monkeypatch.setenv("IMPACT_WORKER_NICE", raw)
    with pytest.raises(
        ValueError, match=f"^IMPACT_WORKER_NICE must be a whole number from 0 to 19, got '{raw}'$"
    ):
        parallel.worker_nice()
