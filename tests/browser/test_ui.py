"""The Dagster UI in a real browser: headless Debian chromium driven by Playwright.

Materializes a small pipeline into a fresh DAGSTER_HOME, then runs ``scripts/screenshots.py``,
which serves the UI on 127.0.0.1 and captures the asset graph, the partitions of
``outcome_report``, one report's lineage and the checks. CI installs chromium and sets
``IMPACT_REQUIRE_BROWSER=1`` so that a missing browser fails instead of skipping.
"""

import importlib.util
import os
import shutil
import sys

import pytest

from tests.pipeline_assets.test_cli import PIPELINE, ROOT, cli_env, dagster, fake_manifest

HAVE_BROWSER = shutil.which("chromium") is not None and importlib.util.find_spec("playwright")
if not HAVE_BROWSER and os.environ.get("IMPACT_REQUIRE_BROWSER") == "1":
    raise RuntimeError("IMPACT_REQUIRE_BROWSER=1 but chromium or playwright is not installed")

pytestmark = pytest.mark.skipif(not HAVE_BROWSER, reason="needs /usr/bin/chromium and playwright")


def test_ui_pages_render_assets_partitions_lineage_and_checks(tmp_path, monkeypatch):
    home = tmp_path / "home"
    env = cli_env(home, fake_manifest(tmp_path / "project"))
    dagster(PIPELINE, env, check=True)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import screenshots
    finally:
        sys.path.pop(0)
    out = tmp_path / "shots"
    port = screenshots.free_port()
    proc = screenshots.start_webserver(home, port)
    try:
        screenshots.wait_until_up(port)
        texts = screenshots.capture(f"http://127.0.0.1:{port}", out, "init-1")
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
