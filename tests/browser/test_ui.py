"""The Dagster UI in a real browser: headless Debian chromium driven by Playwright.

Materializes a small pipeline into a fresh DAGSTER_HOME with ``dagster job execute``, serves the
UI on 127.0.0.1 (``scripts/screenshots.py``) and reads each claim of the README from the page
itself: the checks read Passed after the run and *Execute all* runs them; a no-op refresh leaves
everything in sync and a real change marks its dependents Unsynced; the report pages render.
The instance uses the ``DefaultRunCoordinator`` so that the UI's launches run without a daemon.
CI installs chromium and sets ``IMPACT_REQUIRE_BROWSER=1`` so that a missing browser fails
instead of skipping.
"""

import contextlib
import importlib.util
import json
import os
import re
import shutil
import sys

import pytest

from tests.pipeline_assets.test_cli import PIPELINE, ROOT, cli_env, dagster, fake_manifest

HAVE_BROWSER = shutil.which("chromium") is not None and importlib.util.find_spec("playwright")
if not HAVE_BROWSER and os.environ.get("IMPACT_REQUIRE_BROWSER") == "1":
    raise RuntimeError("IMPACT_REQUIRE_BROWSER=1 but chromium or playwright is not installed")

pytestmark = pytest.mark.skipif(not HAVE_BROWSER, reason="needs /usr/bin/chromium and playwright")

CHECKS = {
    "pilot_measurement": ["pilot_measurement_contract"],
    "evaluation": ["evaluation_contract"],
    "portfolio": [
        "portfolio_contract",
        "portfolio_consistent_with_evaluations",
        "portfolio_solver_status",
    ],
    "allocation": ["allocation_contract"],
    "scale_measurement": ["scale_measurement_contract"],
    "outcome_report": ["outcome_report_contract"],
}
DEFAULT_RUN_COORDINATOR = (
    "telemetry:\n  enabled: false\n"
    "run_coordinator:\n  module: dagster.core.run_coordinator\n  class: DefaultRunCoordinator\n"
)
ALLOCATE = {"component": "MinimaxRegretAllocate", "min_portfolio_worst_return": None}
TIMESTAMP = re.compile(r"^[A-Z][a-z]{2} \d{1,2}, \d{1,2}:\d{2} [AP]M$")
CHANGED_MEASURE = {
    "resources": {
        "measure": {"config": {"component": "tests.support:FakeMeasure", "params": {"shift": 3.0}}}
    }
}


def _screenshots_module():
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import screenshots
    finally:
        sys.path.pop(0)
    return screenshots


class UI:
    """One browser page on the served UI."""

    def __init__(self, page, base_url: str):
        self.page = page
        self.base_url = base_url

    def open(self, path: str, expected: str) -> str:
        self.page.goto(self.base_url + path, wait_until="networkidle", timeout=90_000)
        self.page.get_by_text(expected).first.wait_for(timeout=60_000)
        self.page.wait_for_timeout(800)
        return self.page.inner_text("body")

    def portfolio_metadata(self) -> list[str]:
        """The latest ``portfolio`` materialization's metadata as the Overview shows it, without
        its timestamps."""
        text = self.open("/assets/portfolio", "Latest materialization")
        section = text.split("Key\tTimestamp\tValue", 1)[1].split("\nLineage\n", 1)[0]
        return [line for line in section.splitlines() if not TIMESTAMP.match(line.strip())]


def refresh(env, partition: str, assets: str, run_config: dict | None = None) -> None:
    args = ["asset", "materialize", "-m", "impact_assets.definitions", "--select", assets]
    args += ["--partition", partition]
    if run_config:
        args += ["--config-json", json.dumps(run_config)]
    dagster(args, env, check=True)


def test_the_ui_tells_the_truth(tmp_path, monkeypatch):
    home = tmp_path / "home"
    # the floor is off (null) in the stage config: a launchpad run must keep it off
    env = cli_env(home, fake_manifest(tmp_path / "project", allocate=ALLOCATE))
    # UI launches run without a daemon
    (home / "dagster.yaml").write_text(DEFAULT_RUN_COORDINATOR)
    dagster(PIPELINE, env, check=True)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    screenshots = _screenshots_module()
    from playwright.sync_api import sync_playwright

    port = screenshots.free_port()
    proc = screenshots.start_webserver(home, port)
    try:
        screenshots.wait_until_up(port)
        base_url = f"http://127.0.0.1:{port}"
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=screenshots.CHROMIUM, args=screenshots.CHROMIUM_ARGS
            )
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            ui = UI(page, base_url)
            page.goto(base_url + "/assets", wait_until="networkidle", timeout=90_000)
            with contextlib.suppress(Exception):  # the "Join the Dagster community" modal
                page.get_by_role("button", name="Skip").click(timeout=8_000)

            # 1. every check reads Passed after the run: one result per check, never Skipped
            for asset, names in CHECKS.items():
                text = ui.open(f"/assets/{asset}?view=checks", names[0])
                assert "Skipped" not in text, asset
                for name in names:
                    row = page.locator("a, div", has_text=name).filter(has_text="Succeeded")
                    assert row.count() > 0, (asset, name, text[:800])
                # the lineage node reads "n / n Passed" (waits until it does)
                ui.open(f"/assets/{asset}?view=lineage", f"{len(names)} / {len(names)} Passed")

            # ... and "Execute all" runs them from the UI, on the stored values
            ui.open("/assets/evaluation?view=checks", "evaluation_contract")
            page.get_by_role("button", name="Execute all").click()
            page.get_by_text("Launched run").wait_for(timeout=30_000)
            page.get_by_text("View", exact=True).first.click()
            page.get_by_text("evaluation_contract on evaluation").first.wait_for(timeout=60_000)
            page.get_by_text("Success", exact=True).first.wait_for(timeout=120_000)
            text = ui.open("/assets/evaluation?view=checks", "evaluation_contract")
            assert "Passed" in text and "contract holds for all 3 initiative(s)" in text

            # 3. the launchpad with its pre-filled config runs what `dagster job execute` ran
            cli_run = ui.portfolio_metadata()
            assert '"min_portfolio_worst_return": null' in "\n".join(cli_run)
            ui.open("/locations/impact_assets/jobs/impact_pipeline/playground", "Launch Run")
            text = page.inner_text("body")
            assert "asset_partition_range_start: init-1" in text  # the job's range, as tags
            assert "asset_partition_range_end: init-3" in text
            page.get_by_role("button", name="Launch Run").click()
            page.get_by_role("button", name="Confirm").click()  # "launch without a partition?"
            page.wait_for_url("**/runs/**", timeout=60_000)
            page.get_by_text("Success", exact=True).first.wait_for(timeout=180_000)
            launched = page.url.rsplit("/", 1)[-1].split("?")[0]
            assert ui.portfolio_metadata() == cli_run
            text = ui.open("/assets/portfolio?view=events", "Materialized")
            assert launched[:8] in text  # the launchpad run materialized portfolio

            # 2. a no-op refresh of one initiative leaves its dependents in sync ...
            refresh(env, "init-2", "pilot_measurement")
            text = ui.open("/assets/evaluation?view=partitions&partition=init-2", "Materialized")
            assert "Unsynced" not in text
            assert "Unsynced" not in ui.open("/assets/portfolio", "Latest materialization")
            # ... and a real change marks exactly the dependents that read it
            refresh(env, "init-2", "pilot_measurement", CHANGED_MEASURE)
            text = ui.open("/assets/evaluation?view=partitions&partition=init-2", "Materialized")
            assert "Unsynced" in text
            text = ui.open("/assets/evaluation?view=partitions&partition=init-1", "Materialized")
            assert "Unsynced" not in text
            refresh(env, "init-2", "evaluation")
            assert "Unsynced" in ui.open("/assets/portfolio", "Latest materialization")

            # 4. the portfolio report's tables render inline with every column in view
            from impact_assets.assets.tables import PORTFOLIO_TABLES

            ui.open("/assets/portfolio_report?view=events", "pilot_estimate_money")
            width = page.viewport_size["width"]
            for table, columns in PORTFOLIO_TABLES.items():
                for column in columns:
                    header = page.locator("th", has_text=column).first
                    box = header.bounding_box()
                    assert header.is_visible() and box is not None, (table, column)
                    assert box["x"] >= 0 and box["x"] + box["width"] <= width, (table, column, box)
            browser.close()

        # the README's screenshots render
        out = tmp_path / "shots"
        texts = screenshots.capture(base_url, out, "init-1")
    finally:
        screenshots.stop(proc)
    for name, _, _ in screenshots.pages("init-1"):
        png = out / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000, name
    graph = texts["asset-graph"]
    for asset in ("pilot_measurement", "evaluation", "portfolio", "outcome_report"):
        assert asset in graph
    assert "init-1" in texts["outcome-report-partitions"]
    lineage = texts["outcome-report-lineage"]
    assert "content_sha256" in lineage and "init-1" in lineage
    assert "storage id" in lineage and "scale_measurement" in lineage  # the report's lineage table
    assert "evaluation_contract" in texts["evaluation-checks"]
    assert "portfolio_solver_status" in texts["portfolio-checks"]
    # the budget frontier chart and its table are in the portfolio report's metadata
    report = texts["portfolio-report"]
    assert "frontier_chart" in report and "frontier_entries" in report
