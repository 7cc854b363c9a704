"""Open the Dagster UI in headless Chromium and save screenshots to ``docs/screenshots/``.

Usage (after README command 1 has materialized the demo into ``.dagster/``)::

    .venv/bin/python scripts/screenshots.py            # uses DAGSTER_HOME=.dagster
    .venv/bin/python scripts/screenshots.py --out /tmp/shots --initiative pricing-display-test
    .venv/bin/python scripts/screenshots.py --unsynced   # also unsynced-after-refresh.png

Starts ``dagster-webserver`` on 127.0.0.1 (a free port) in its own process group, drives Debian's
``/usr/bin/chromium`` through Playwright (no browser download), saves one PNG per page, and stops
the webserver. Prints the text each page showed so a test can check it.

``--unsynced`` then makes a real change for the initiative (its measure config's effect size
halved, in a temporary copy of ``configs/``: tracked files stay untouched), refreshes that one
``pilot_measurement`` partition with ``dagster asset materialize`` and captures ``evaluation``'s
Partitions tab for it, which reads Unsynced. Finally it refreshes the partition again from the
real manifest, so the instance's numbers (and their data versions) are the demo's again.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml

from impact_assets.yaml_safe import safe_load_text

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


LOCATIONS = (
    '{"query": "{ workspaceOrError { ... on Workspace { locationEntries { loadStatus '
    'locationOrLoadError { __typename } } } } }"}'
)


def wait_until_up(port: int, timeout: float = 180.0) -> None:
    """Wait until the webserver answers and its code location has loaded."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/graphql",
                data=LOCATIONS.encode(),
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=5) as response:
                body = json.loads(response.read())
            entries = body["data"]["workspaceOrError"]["locationEntries"]
            if entries and entries[0]["locationOrLoadError"]["__typename"] == "PythonError":
                raise RuntimeError("the code location failed to load; see dagster-webserver")
            if entries and entries[0]["loadStatus"] == "LOADED":
                return
        except (OSError, KeyError, ValueError):
            pass
        time.sleep(0.5)
    raise TimeoutError(f"dagster-webserver on 127.0.0.1:{port} did not load the code location")


def start_webserver(dagster_home: Path, port: int) -> subprocess.Popen:
    """``dagster-webserver`` on 127.0.0.1:port in its own process group."""
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home.resolve())}
    webserver = Path(sys.executable).parent / "dagster-webserver"
    return subprocess.Popen(
        [str(webserver), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def stop(proc: subprocess.Popen) -> None:
    """Stop the webserver's whole process group."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def pages(initiative: str) -> list[tuple[str, str, str]]:
    """(file name, path, a text the page shows once it has rendered) of every page to capture."""
    return [
        ("asset-graph", "/asset-groups/impact", "portfolio_report"),
        ("outcome-report-partitions", "/assets/outcome_report?view=partitions", initiative),
        (
            "outcome-report-lineage",
            f"/assets/outcome_report?view=partitions&partition={initiative}",
            "content_sha256",
        ),
        ("portfolio-report", "/assets/portfolio_report?view=events", "pilot_estimate_money"),
        ("portfolio-chart", "/assets/portfolio_report?view=events", "frontier_chart"),
        ("budget-frontier", "/assets/portfolio_report?view=events", "frontier_chart"),
        ("evaluation-checks", "/assets/evaluation?view=checks", "evaluation_contract"),
        ("launchpad", "/locations/impact_assets/jobs/impact_pipeline/playground", "stage_config"),
        ("portfolio-checks", "/assets/portfolio?view=checks", "portfolio_solver_status"),
    ]


def capture(base_url: str, out: Path, initiative: str) -> dict[str, str]:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    texts: dict[str, str] = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        first = True
        for name, path, expected in pages(initiative):
            page.goto(base_url + path, wait_until="networkidle", timeout=90_000)
            if first:  # the "Join the Dagster community" modal covers the first page
                with contextlib.suppress(Exception):  # no modal this time
                    page.get_by_role("button", name="Skip").click(timeout=8_000)
                first = False
            page.get_by_text(expected).first.wait_for(timeout=60_000)
            if name == "portfolio-chart":  # open the chart (markdown metadata with the PNG)
                with contextlib.suppress(Exception):
                    row = page.locator("tr").filter(has=page.get_by_text("chart", exact=True))
                    row.first.get_by_text("[Show Markdown]").click(timeout=5_000)
            if name == "budget-frontier":  # open the frontier chart (its own metadata row)
                with contextlib.suppress(Exception):
                    row = page.locator("tr", has_text="frontier_chart").first
                    row.get_by_text("[Show Markdown]").click(timeout=5_000)
            if name == "outcome-report-lineage":  # open the report view with its lineage table
                with contextlib.suppress(Exception):
                    page.get_by_text("[Show Markdown]").first.click(timeout=5_000)
            page.wait_for_timeout(1000)
            page.screenshot(path=str(out / f"{name}.png"), full_page=False)
            texts[name] = page.inner_text("body")
        browser.close()
    return texts


def refresh(dagster_home: Path, initiative: str, assets: str, manifest: Path | None = None) -> None:
    """Re-materialize one partition of ``assets`` with ``dagster asset materialize``."""
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home.resolve()), "PYTHONPATH": str(ROOT)}
    env.pop("IMPACT_MANIFEST", None)
    if manifest is not None:
        env["IMPACT_MANIFEST"] = str(manifest)
    dagster = Path(sys.executable).parent / "dagster"
    select = ["--select", assets, "--partition", initiative]
    subprocess.run(
        [str(dagster), "asset", "materialize", "-m", "impact_assets.definitions", *select],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=600,
    )


def changed_manifest(tmp: Path, initiative: str) -> Path:
    """A copy of ``configs/`` in ``tmp`` whose measure config for ``initiative`` has its
    simulated effect size halved: a real change of that initiative's numbers."""
    configs = Path(shutil.copytree(ROOT / "configs", tmp / "configs"))
    manifest = safe_load_text((configs / "pipeline.yaml").read_text())
    entry = next(i for i in manifest["initiatives"] if i["initiative_id"] == initiative)
    path = configs / entry["measure_config"]
    measure = safe_load_text(path.read_text())
    measure["DATA"]["ENRICHMENT"]["PARAMS"]["effect_size"] /= 2
    path.write_text(yaml.safe_dump(measure, sort_keys=False))
    return configs / "pipeline.yaml"


def capture_unsynced(base_url: str, out: Path, initiative: str, dagster_home: Path) -> str:
    """Change one initiative's numbers, refresh its pilot partition and capture ``evaluation``'s
    Partitions tab for it (Unsynced). Then restore the demo's numbers: ``pilot_measurement`` and
    ``evaluation`` for that initiative from the real manifest (the pilot's data version is new,
    so ``evaluation`` is refreshed too; its content is the demo's again, so it keeps its data
    version and ``portfolio`` stays in sync), and check the page no longer reads Unsynced.
    Returns the text of the Unsynced page."""
    from playwright.sync_api import sync_playwright

    path = f"{base_url}/assets/evaluation?view=partitions&partition={initiative}"
    with tempfile.TemporaryDirectory() as tmp:
        refresh(
            dagster_home, initiative, "pilot_measurement", changed_manifest(Path(tmp), initiative)
        )
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.goto(path, wait_until="networkidle", timeout=90_000)
            with contextlib.suppress(Exception):  # the "Join the Dagster community" modal
                page.get_by_role("button", name="Skip").click(timeout=8_000)
            page.get_by_text("Unsynced").first.wait_for(timeout=60_000)
            page.wait_for_timeout(1000)
            page.screenshot(path=str(out / "unsynced-after-refresh.png"), full_page=False)
            text = page.inner_text("body")
            browser.close()
    finally:
        refresh(dagster_home, initiative, "pilot_measurement,evaluation")  # the demo's numbers
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.goto(path, wait_until="networkidle", timeout=90_000)
        page.get_by_text("Materialized").first.wait_for(timeout=60_000)
        page.wait_for_timeout(1500)
        if "Unsynced" in page.inner_text("body"):
            raise RuntimeError(f"evaluation[{initiative}] still reads Unsynced after the restore")
        browser.close()
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dagster-home", default=os.environ.get("DAGSTER_HOME", str(ROOT / ".dagster"))
    )
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    parser.add_argument("--initiative", default="product-desc-enhancement")
    parser.add_argument(
        "--unsynced",
        action="store_true",
        help="also change one initiative's numbers, refresh it and capture its Unsynced dependent",
    )
    args = parser.parse_args(argv)

    port = free_port()
    proc = start_webserver(Path(args.dagster_home), port)
    try:
        wait_until_up(port)
        base_url = f"http://127.0.0.1:{port}"
        texts = capture(base_url, Path(args.out), args.initiative)
        if args.unsynced:
            texts["unsynced-after-refresh"] = capture_unsynced(
                base_url, Path(args.out), args.initiative, Path(args.dagster_home)
            )
    finally:
        stop(proc)
    for name, text in texts.items():
        print(f"=== {name}")
        print(text[:4000])
    return 0


if __name__ == "__main__":
    sys.exit(main())
