"""Pipeline scaling: the whole pipeline through ``dagster job execute`` against the plain
``Orchestrator``, for synthetic manifests of N initiatives, on Dagster's stock instance.

For each N it writes a manifest (``impact_assets.synthetic_portfolio``: the six methods in turn,
seeded costs, budget 30% of total cost) and runs ``dagster job execute -m impact_assets.definitions
-j impact_pipeline`` in a fresh ``DAGSTER_HOME`` under ``/usr/bin/time -v``: wall time from
process start to exit, peak RSS of the largest single process, and the summed RSS of the whole
process tree (the MEASURE worker processes included) sampled every 0.2 s. The instance is the
project's (``.dagster/dagster.yaml``: stock SQLite) or, with ``--instance postgres``,
``deploy/dagster.yaml`` on a fresh database of the PostgreSQL server named by ``IMPACT_PG_*``
(as ``.ci/run`` sets them). Its storage is created before the run, as the README's commands
create it once per installation (``scripts/_env.sh``); that is timed apart ("instance setup").

Stage times come from the instance through public API only: the time from the run's start (or
the previous asset's materialization) to each asset's latest materialization
(``DagsterInstance.fetch_materializations``, ``get_run_record_by_id``); each includes the
stage's contract checks and the storing of its outputs. The same manifest then runs through
the plain ``Orchestrator`` in a fresh process (whole process, and the in-process run).

    python benchmarks/pipeline_scaling.py                         # N = 5, 50, 200, 1000
    python benchmarks/pipeline_scaling.py --sizes 5 50            # quicker
    python benchmarks/pipeline_scaling.py --instance postgres     # IMPACT_PG_* must be set
    python benchmarks/pipeline_scaling.py --sizes 200 --repeat 3  # a noisy host: medians
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
#: Wall-time targets (s) on the 2-core machine: N = 200 on stock SQLite, N = 1,000 on either.
TARGETS = {"sqlite": {200: 30.0, 1000: 150.0}, "postgres": {1000: 150.0}}
#: Peak memory target (MB) for the whole process tree.
RSS_TARGET_MB = 1024

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


def step_seconds(home: Path) -> dict[str, float]:
    """Seconds from the run's start (or the previous asset's materialization) to each asset's
    latest materialization, read through public instance API."""
    import dagster as dg

    os.environ["DAGSTER_HOME"] = str(home)
    with dg.DagsterInstance.get() as instance:
        [record] = instance.get_run_records(limit=1)
        previous = record.start_time
        spans: dict[str, float] = {}
        for step in STEPS:
            found = instance.fetch_materializations(dg.AssetKey(step), limit=1).records
            if not found or previous is None:
                continue
            spans[step] = found[0].timestamp - previous
            previous = found[0].timestamp
        return spans


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


def _postgres_database(name: str, drop: bool = False) -> None:
    """Create (or drop) database ``name`` on the server named by ``IMPACT_PG_*``."""
    import psycopg2
    from psycopg2 import sql

    connection = psycopg2.connect(
        host=os.environ["IMPACT_PG_HOST"],
        port=int(os.environ["IMPACT_PG_PORT"]),
        user=os.environ["IMPACT_PG_USER"],
        password=os.environ["IMPACT_PG_PASSWORD"],
        dbname=os.environ["IMPACT_PG_DB"],
    )
    connection.autocommit = True
    with connection.cursor() as cursor:
        statement = "DROP DATABASE IF EXISTS {} WITH (FORCE)" if drop else "CREATE DATABASE {}"
        cursor.execute(sql.SQL(statement).format(sql.Identifier(name)))
    connection.close()


def run_size(n: int, workdir: Path, kind: str = "sqlite") -> dict[str, float | str]:
    from impact_assets.synthetic_portfolio import write_portfolio

    manifest = write_portfolio(workdir / "manifest", n, seed=11)
    home = workdir / "home"
    home.mkdir()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "IMPACT_MANIFEST": str(manifest),
        "PYTHONPATH": str(ROOT),  # this checkout's package, whatever the environment installed
    }
    database = None
    if kind == "postgres":
        database = f"impact_bench_{os.getpid()}_{n}_{int(time.time())}"
        _postgres_database(database)
        env["IMPACT_PG_DB"] = database
        shutil.copyfile(ROOT / "deploy" / "dagster.yaml", home / "dagster.yaml")
    else:
        shutil.copyfile(ROOT / ".dagster" / "dagster.yaml", home / "dagster.yaml")
    try:
        return _run(n, workdir, manifest, home, env, kind)
    finally:
        if database is not None:
            _postgres_database(database, drop=True)


def _run(n: int, workdir: Path, manifest: Path, home: Path, env: dict, kind: str) -> dict:
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
    saved = os.environ.get("IMPACT_PG_DB")
    os.environ.update({k: v for k, v in env.items() if k.startswith("IMPACT_PG_")})
    try:
        steps = step_seconds(home)
    finally:
        if saved is not None:
            os.environ["IMPACT_PG_DB"] = saved
    orch_dir = workdir / "orchestrator"
    orch_dir.mkdir()
    orch_start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", ORCHESTRATOR, str(manifest)],
        cwd=orch_dir,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    orch_process = time.perf_counter() - orch_start
    orch_run = float(re.search(r"ORCHESTRATOR ([\d.]+)", out.stdout).group(1))
    return {
        "n": n,
        "instance": kind,
        "instance_setup_s": instance_setup,
        "wall_s": wall,
        "peak_rss_mb": rss_kb / 1024,
        "peak_tree_rss_mb": tree_rss_mb,
        **{f"{s}_s": steps.get(s, 0.0) for s in STEPS},
        "orchestrator_run_s": orch_run,
        "orchestrator_process_s": orch_process,
    }


def _verdict(r: dict) -> str:
    target = TARGETS.get(str(r["instance"]), {}).get(int(r["n"]))
    met = r["peak_tree_rss_mb"] <= RSS_TARGET_MB
    if target is not None:
        met = met and r["wall_s"] <= target
    limits = (f"≤ {target:.0f} s, " if target else "") + f"≤ {RSS_TARGET_MB} MB"
    return f"{'PASS' if met else 'FAIL'} ({limits})"


def render(rows: list[dict]) -> str:
    head = (
        "| instance | N | instance setup s | wall s | peak RSS MB (one process) "
        "| peak RSS MB (all processes) | pilot s | evaluate s | portfolio s | allocation s "
        "| scale s | report s | portfolio_report s | Orchestrator process s "
        "| Orchestrator run s | target |\n|" + "---|" * 16
    )
    lines = [head]
    for r in rows:
        lines.append(
            f"| {r['instance']} | {r['n']} | {r['instance_setup_s']:.1f} | {r['wall_s']:.1f} "
            f"| {r['peak_rss_mb']:.0f} | {r['peak_tree_rss_mb']:.0f} "
            f"| {r['pilot_measurement_s']:.1f} | {r['evaluation_s']:.1f} | {r['portfolio_s']:.1f} "
            f"| {r['allocation_s']:.1f} | {r['scale_measurement_s']:.1f} "
            f"| {r['outcome_report_s']:.1f} | {r['portfolio_report_s']:.1f} "
            f"| {r['orchestrator_process_s']:.1f} | {r['orchestrator_run_s']:.1f} "
            f"| {_verdict(r)} |"
        )
    return "\n".join(lines)


def summarize(rows: list[dict]) -> str:
    """Minimum, median and maximum per instance and size, over the repeated runs."""

    def spread(values: list[float], fmt: str) -> str:
        low, mid, high = min(values), statistics.median(values), max(values)
        return f"{fmt.format(mid)} ({fmt.format(low)}–{fmt.format(high)})"

    lines = [
        "| instance | N | runs | wall s | Orchestrator process s |",
        "|---|---|---|---|---|",
    ]
    for kind, n in dict.fromkeys((str(r["instance"]), int(r["n"])) for r in rows):
        mine = [r for r in rows if (r["instance"], int(r["n"])) == (kind, n)]
        lines.append(
            f"| {kind} | {n} | {len(mine)} | {spread([r['wall_s'] for r in mine], '{:.1f}')} "
            f"| {spread([r['orchestrator_process_s'] for r in mine], '{:.1f}')} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5, 50, 200, 1000])
    parser.add_argument("--repeat", type=int, default=1, help="runs per size (default 1)")
    parser.add_argument(
        "--instance",
        choices=["sqlite", "postgres"],
        nargs="+",
        default=["sqlite"],
        help="stock SQLite (.dagster/dagster.yaml) and/or PostgreSQL (deploy/dagster.yaml)",
    )
    parser.add_argument("--out", type=Path, help="write the table as markdown to this file")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error(f"--repeat must be at least 1, got {args.repeat}")
    rows = []
    for kind in args.instance:
        for n in args.sizes:
            for _ in range(args.repeat):
                with tempfile.TemporaryDirectory(prefix=f"scaling-{n}-") as tmp:
                    rows.append(run_size(n, Path(tmp), kind))
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
            "instance whose storage was created before (timed apart: instance setup); stage "
            "times are the time to each asset's materialization; the Orchestrator columns are "
            "the same manifest through the plain `Orchestrator` (whole process, and in-process "
            "run).\n\n" + table + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
