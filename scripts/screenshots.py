"""Open the Dagster UI in headless Chromium and save screenshots to ``docs/screenshots/``.

Usage (after README command 1 has materialized the demo into ``.dagster/``)::

    .venv/bin/python scripts/screenshots.py            # uses DAGSTER_HOME=.dagster
    .venv/bin/python scripts/screenshots.py --out /tmp/shots --initiative pricing-display-test

Starts ``dagster-webserver`` on 127.0.0.1 (a free port) in its own process group, drives Debian's
``/usr/bin/chromium`` through Playwright (no browser download), saves one PNG per page, and stops
the webserver. Prints the text each page showed so a test can check it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dagster-home", default=os.environ.get("DAGSTER_HOME", str(ROOT / ".dagster"))
    )
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    parser.add_argument("--initiative", default="product-desc-enhancement")
    args = parser.parse_args(argv)

    port = free_port()
    proc = start_webserver(Path(args.dagster_home), port)
    try:
        wait_until_up(port)
        texts = capture(f"http://127.0.0.1:{port}", Path(args.out), args.initiative)
    finally:
        stop(proc)
    for name, text in texts.items():
        print(f"=== {name}")
        print(text[:4000])
    return 0


if __name__ == "__main__":
    sys.exit(main())
