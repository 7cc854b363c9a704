"""The plain-Python orchestrator: fan out per initiative, fan in at ALLOCATE, fan out again at SCALE.

The Dagster assets run the same steps (``impact_assets.steps``); this class is the in-process
equivalent kept for tests, notebooks and advanced use (design: "Concurrency").
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from impact_assets import steps
from impact_assets.component import PipelineComponent
from impact_assets.config import PipelineConfig, load_config
from impact_assets.parallel import WorkerPool, map_ordered

log = logging.getLogger(__name__)


class Orchestrator:
    """Wire MEASURE, EVALUATE and ALLOCATE together for every initiative of a manifest."""

    def __init__(
        self,
        measure: PipelineComponent,
        evaluate: PipelineComponent,
        allocate: PipelineComponent,
        config: PipelineConfig,
    ) -> None:
        self.measure = measure
        self.evaluate = evaluate
        self.allocate = allocate
        self.config = config

    @classmethod
    def from_config(cls, config: PipelineConfig | str | Path) -> Orchestrator:
        """Build every component named by the manifest's stage configs through the registry."""
        if not isinstance(config, PipelineConfig):
            config = load_config(config)
        return cls(
            measure=config.measure.build(),
            evaluate=config.evaluate.build(),
            allocate=config.allocate.build(),
            config=config,
        )

    def run(self) -> dict[str, Any]:
        """Run the whole pipeline once.

        Returns a dict with ``pilot_results``, ``evaluate_results``, ``allocate_result``,
        ``scale_results``, ``outcome_reports`` and ``frontier`` (the budget frontier of the same
        ALLOCATE component, ``impact_assets.allocate.frontier``). An empty allocation skips SCALE
        and gives no reports.
        """
        with WorkerPool(self.config.max_workers) as pool:  # MEASURE's processes, pilot and scale
            return self._run(pool)

    def _run(self, pool: WorkerPool) -> dict[str, Any]:
        cfg = self.config
        initiatives = list(cfg.initiatives)

        pilot_results = map_ordered(
            steps.measure_task,
            [(self.measure, i, steps.PILOT, None) for i in initiatives],
            cfg.max_workers,
            cfg.parallelism,
            pool,
        )
        log.info("pilot: measured %d initiatives", len(pilot_results))

        evaluate_results = map_ordered(
            lambda pair: steps.run_evaluate(self.evaluate, pair[0], pair[1]),
            list(zip(pilot_results, initiatives, strict=True)),
            cfg.max_workers,
        )
        log.info("evaluate: scored %d initiatives", len(evaluate_results))

        allocate_result = steps.run_allocate(self.allocate, evaluate_results, cfg.budget)
        frontier = steps.run_frontier(self.allocate, evaluate_results, cfg.budget)
        selected = steps.initiatives_in_order(cfg, allocate_result["selected_initiatives"])
        log.info("allocate: selected %d of %d", len(selected), len(initiatives))

        scale_results = map_ordered(
            steps.measure_task,
            [(self.measure, i, steps.SCALE, cfg.scale_sample_size) for i in selected],
            cfg.max_workers,
            cfg.parallelism,
            pool,
        )

        pilot_by_id = {r["initiative_id"]: r for r in pilot_results}
        eval_by_id = {r["initiative_id"]: r for r in evaluate_results}
        outcome_reports = [
            steps.build_outcome_report(
                pilot_by_id[s["initiative_id"]],
                eval_by_id[s["initiative_id"]],
                allocate_result,
                s,
            )
            for s in scale_results
        ]
        return {
            "pilot_results": pilot_results,
            "evaluate_results": evaluate_results,
            "allocate_result": allocate_result,
            "scale_results": scale_results,
            "outcome_reports": outcome_reports,
            "frontier": frontier,
        }
