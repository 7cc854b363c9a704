"""Pipeline scaling: the whole pipeline through ``dagster job execute`` against the plain
``Orchestrator``, for synthetic manifests of N initiatives.

For each N it writes a manifest (``impact_assets.synthetic_portfolio``: the six methods in turn,
seeded costs, budget 30% of total cost), runs ``dagster job execute -m impact_assets.definitions
-j impact_pipeline`` in a fresh ``DAGSTER_HOME`` (holding the project's instance settings,
``.dagster/dagster.yaml``, and no runs) under ``/usr/bin/time -v`` (wall time; peak RSS of the
largest single process) while sampling the summed RSS of the whole process tree (the MEASURE
worker processes included) every 0.2 s, reads the time of every step from the run's event log,
runs the same manifest through the plain ``Orchestrator`` in a fresh process, and prints a table
(also written as markdown with --out). Each stage's time includes its contract checks, which run
in the stage's own step.

The instance's database files are created before the run, as the README's commands create them
once per installation (``scripts/_env.sh``). The column "instance setup" is how long that took
(``DagsterInstance.get()`` on the empty home, its storage modules' imports included); sessions 1
to 5 counted that work in the run's wall time, and so in Dagster's share: the run's first event
now comes about 0.7 s sooner (docs/performance.md, session 6).

Dagster's share is ``1 - orchestrator process / dagster process``: both are whole processes,
timed from start to exit, that import the package, read the manifest and do the same MEASURE,
EVALUATE and ALLOCATE work; what the Dagster one does beyond that (its imports and CLI, the run
and event storage, the IO manager, checks, lineage, the report chart) is the share. The
Orchestrator's in-process time (without interpreter start and imports) is shown beside it.

    python benchmarks/pipeline_scaling.py                  # N = 5, 50, 200, 1000
    python benchmarks/pipeline_scaling.py --sizes 5 50     # quicker
    python benchmarks/pipeline_scaling.py --sizes 200 --repeat 3   # a noisy host: medians

The host's speed can move by a quarter within minutes, and the two processes of a row run one
after the other; with ``--repeat K`` each size runs K times (each a Dagster run followed by its
Orchestrator run) and a summary gives the minimum, median and maximum of each measure.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
STEPS = [
    "pilot_measurement",
    "evaluation",
    "portfolio",
    "allocation",
    "scale_measurement",
    "outcome_report",
    "portfolio_report",
]
TARGETS = {200: 20.0, 1000: 90.0}

CREATE_INSTANCE = """
import time, dagster
start = time.perf_counter()
dagster.DagsterInstance.get().dispose()
print(f"INSTANCE {time.perf_counter() - start:.3f}")
"""

ORCHESTRATOR = """
import sys, time
from impact_assets import Orchestrator
start = time.perf_counter()
result = Orchestrator.from_config(sys.argv[1]).run()
print(f"ORCHESTRATOR {time.perf_counter() - start:.3f} {len(result['outcome_reports'])}")
"""


def step_seconds(home: Path) -> tuple[dict[str, float], int, float]:
    """Seconds per step, the number of events, and the timestamp of the run's first event."""
    import dagster as dg

    os.environ["DAGSTER_HOME"] = str(home)
    with dg.DagsterInstance.get() as instance:
        run = instance.get_runs(limit=1)[0]
        starts: dict[str, float] = {}
        spans: dict[str, float] = {}
        records = instance.get_records_for_run(run.run_id).records
        for record in records:
            entry = record.event_log_entry
            event = entry.dagster_event
            if event is None or event.step_key is None:
                continue
            if event.event_type_value == "STEP_START":
                starts[event.step_key] = entry.timestamp
            elif event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE"):
                spans[event.step_key] = entry.timestamp - starts.get(
                    event.step_key, entry.timestamp
                )
        return spans, len(records), records[0].event_log_entry.timestamp


def _tree_rss_kb(root: int) -> int:
    """Resident memory (kB) of ``root`` and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        match = re.search(r"VmRSS:\s+(\d+) kB", status)
        total += int(match.group(1)) if match else 0
    return total


def run_sampled(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    """Run ``command``; sample the summed RSS of its process tree (worker processes included)
    every 0.2 s into ``peak_tree_rss_kb`` of the result."""
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs
    )
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.2):
            peak = max(peak, _tree_rss_kb(proc.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = proc.communicate()
    done.set()
    sampler.join()
    result = subprocess.CompletedProcess(command, proc.returncode, stdout, stderr)
    result.peak_tree_rss_kb = peak
    return result


def run_size(n: int, workdir: Path) -> dict[str, float | str]:
    from impact_assets.synthetic_portfolio import write_portfolio

    manifest = write_portfolio(workdir / "manifest", n, seed=11)
    home = workdir / "home"
    home.mkdir()
    shutil.copyfile(ROOT / ".dagster" / "dagster.yaml", home / "dagster.yaml")
    env = {**os.environ, "DAGSTER_HOME": str(home), "IMPACT_MANIFEST": str(manifest)}
    # The instance's database files are created once per installation, before any run, as the
    # README's commands do (scripts/_env.sh); timed here on its own, not as part of the run.
    setup = subprocess.run(
        [sys.executable, "-c", CREATE_INSTANCE],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    instance_setup = float(re.search(r"INSTANCE ([\d.]+)", setup.stdout).group(1))
    timing = workdir / "time.txt"
    started = time.perf_counter()
    started_epoch = time.time()
    proc = run_sampled(
        [
            "/usr/bin/time",
            "-v",
            "-o",
            str(timing),
            str(BIN / "dagster"),
            "job",
            "execute",
            "-m",
            "impact_assets.definitions",
            "-j",
            "impact_pipeline",
        ],
        cwd=workdir,
        env=env,
    )
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"N={n}: dagster job execute failed:\n{proc.stderr[-3000:]}")
    text = timing.read_text()
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1))
    tree_rss_mb = proc.peak_tree_rss_kb / 1024
    steps, events, first_event = step_seconds(home)
    orch_dir = workdir / "orchestrator"
    orch_dir.mkdir()
    orch_start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", ORCHESTRATOR, str(manifest)],
        cwd=orch_dir,
        capture_output=True,
        text=True,
        check=True,
    )
    orch_process = time.perf_counter() - orch_start
    orch_run = float(re.search(r"ORCHESTRATOR ([\d.]+)", out.stdout).group(1))
    stage_total = sum(steps.get(s, 0.0) for s in STEPS)
    return {
        "n": n,
        "instance_setup_s": instance_setup,
        "wall_s": wall,
        "peak_rss_mb": rss_kb / 1024,
        "peak_tree_rss_mb": tree_rss_mb,
        "events": events,
        **{f"{s}_s": steps.get(s, 0.0) for s in STEPS},
        "orchestrator_run_s": orch_run,
        "orchestrator_process_s": orch_process,
        "startup_s": first_event - started_epoch,
        "dagster_share": max(0.0, 1 - orch_process / wall),
        "stage_total_s": stage_total,
    }


def render(rows: list[dict]) -> str:
    head = (
        "| N | instance setup s | wall s | peak RSS MB | peak RSS all processes MB | events | pilot s | evaluate s | portfolio s | allocation s "
        "| scale s | report s | portfolio_report s | to first event s "
        "| Orchestrator process s | Orchestrator run s | Dagster share | target |\n|" + "---|" * 18
    )
    lines = [head]
    for r in rows:
        target = TARGETS.get(int(r["n"]))
        verdict = "–" if target is None else ("PASS" if r["wall_s"] <= target else "FAIL")
        verdict += f" (≤ {target:.0f} s)" if target else ""
        lines.append(
            f"| {r['n']} | {r['instance_setup_s']:.1f} | {r['wall_s']:.1f} | {r['peak_rss_mb']:.0f} "
            f"| {r['peak_tree_rss_mb']:.0f} | {r['events']} "
            f"| {r['pilot_measurement_s']:.1f} | {r['evaluation_s']:.1f} | {r['portfolio_s']:.1f} "
            f"| {r['allocation_s']:.1f} | {r['scale_measurement_s']:.1f} "
            f"| {r['outcome_report_s']:.1f} | {r['portfolio_report_s']:.1f} "
            f"| {r['startup_s']:.1f} | {r['orchestrator_process_s']:.1f} "
            f"| {r['orchestrator_run_s']:.1f} | {r['dagster_share']:.0%} | {verdict} |"
        )
    return "\n".join(lines)


def summarize(rows: list[dict]) -> str:
    """Minimum, median and maximum per size, over the repeated runs."""

    def spread(values: list[float], fmt: str) -> str:
        low, mid, high = min(values), statistics.median(values), max(values)
        return f"{fmt.format(mid)} ({fmt.format(low)}–{fmt.format(high)})"

    lines = [
        "| N | runs | wall s | Orchestrator process s | Dagster share | target met |",
        "|---|---|---|---|---|---|",
    ]
    for n in dict.fromkeys(int(r["n"]) for r in rows):
        mine = [r for r in rows if int(r["n"]) == n]
        target = TARGETS.get(n)
        met = (
            "–" if target is None else f"{sum(r['wall_s'] <= target for r in mine)} of {len(mine)}"
        )
        lines.append(
            f"| {n} | {len(mine)} | {spread([r['wall_s'] for r in mine], '{:.1f}')} "
            f"| {spread([r['orchestrator_process_s'] for r in mine], '{:.1f}')} "
            f"| {spread([100 * r['dagster_share'] for r in mine], '{:.0f}%')} | {met} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5, 50, 200, 1000])
    parser.add_argument("--repeat", type=int, default=1, help="runs per size (default 1)")
    parser.add_argument("--out", type=Path, help="write the table as markdown to this file")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error(f"--repeat must be at least 1, got {args.repeat}")
    rows = []
    for n in args.sizes:
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory(prefix=f"scaling-{n}-") as tmp:
                rows.append(run_size(n, Path(tmp)))
            print(render(rows[-1:]).splitlines()[-1], flush=True)
    table = render(rows)
    if args.repeat > 1:
        table += "\n\n" + summarize(rows)
    print()
    print(table)
    if args.out:
        args.out.write_text(
            "# Pipeline scaling\n\nProduced by `python benchmarks/pipeline_scaling.py` on the 2-core "
            "machine. Wall time is `dagster job execute` end to end (process start to exit) on an "
            "instance whose database files were created before (timed apart: instance setup); "
            "stage times come from the run's event log; the Orchestrator columns are the same "
            "manifest through the plain `Orchestrator` (whole process, and in-process run); "
            "Dagster share = 1 − Orchestrator process / wall.\n\n" + table + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
