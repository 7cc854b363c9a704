"""Run one HiGHS MILP (``scipy.optimize.milp``) so that an interrupt stops it within seconds.

HiGHS runs in C and never checks Python signals: a long solve in the calling process would
ignore Ctrl-C, SIGTERM and Dagster's Terminate until it finished. So a solve is first tried in
process for at most :data:`IN_PROCESS_SECONDS`; most programs finish there. If it did not, or
the program is large, it is solved (again, from the start) in a child process (this file run as a script, which imports numpy
and scipy only; arrays in ``.npz`` files in a temporary directory, no pickle) while this process
waits in short polls, where signals are handled. On any
exception while waiting (``KeyboardInterrupt``, Dagster's interrupt, an error) the child is
killed before the exception propagates, so no solver keeps running and nothing is written.

The child resets SIGINT and SIGTERM to their defaults (so a Ctrl-C to the terminal's process
group ends it at once) and asks Linux to send it SIGKILL if its parent dies.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp

#: Seconds a solve may run in the calling process before it is moved to a child process.
IN_PROCESS_SECONDS = 2.0

#: Seconds between two checks for an interrupt while the child solves.
POLL_SECONDS = 0.2

#: Larger programs go straight to a child process: HiGHS was seen to overrun its time limit by
#: many seconds on the root of a 10,000-variable program, and it would ignore signals meanwhile.
IN_PROCESS_MAX_VARIABLES = 2_000

#: A child still running this long after the deadline is killed; the caller then has no new
#: solution, only its incumbent.
KILL_GRACE_SECONDS = 1.0

_CHILD = (
    "import sys; from impact_assets.allocate.highs_run import _child_main; sys.exit(_child_main())"
)


@dataclass(frozen=True)
class MilpOutcome:
    """What HiGHS returned: ``status`` 0 optimal, 1 limit reached, 2 infeasible, else failure."""

    status: int
    x: np.ndarray | None
    dual_bound: float | None
    nodes: int
    message: str
    in_child: bool


def solve_milp(
    c: np.ndarray,
    integrality: np.ndarray,
    lb: np.ndarray,
    ub: np.ndarray,
    a: np.ndarray,
    row_lower: np.ndarray,
    row_upper: np.ndarray,
    options: dict[str, float | bool],
    *,
    deadline: float | None,
) -> MilpOutcome:
    """Minimise ``c·x`` subject to the rows and bounds, stopping at ``deadline`` (perf_counter).

    ``options`` are HiGHS options (``time_limit`` is set here from ``deadline``).
    """
    remaining = None if deadline is None else max(0.01, deadline - time.perf_counter())
    if c.size <= IN_PROCESS_MAX_VARIABLES:
        first = IN_PROCESS_SECONDS if remaining is None else min(remaining, IN_PROCESS_SECONDS)
        outcome = _solve_here(c, integrality, lb, ub, a, row_lower, row_upper, options, first)
        if outcome.status != 1 or (remaining is not None and remaining <= IN_PROCESS_SECONDS):
            return outcome
        remaining = None if deadline is None else max(0.01, deadline - time.perf_counter())
    return _solve_in_child(c, integrality, lb, ub, a, row_lower, row_upper, options, remaining)


def _solve_here(c, integrality, lb, ub, a, row_lower, row_upper, options, time_limit):
    opts = dict(options)
    if time_limit is not None:
        opts["time_limit"] = float(time_limit)
    with warnings.catch_warnings():
        # HiGHS options scipy does not list (tolerances, cut-off) are passed on with a warning.
        warnings.filterwarnings("ignore", message="Unrecognized options", category=RuntimeWarning)
        res = milp(
            c,
            integrality=integrality,
            bounds=Bounds(lb, ub),
            constraints=LinearConstraint(a, row_lower, row_upper),
            options=opts,
        )
    bound = res.get("mip_dual_bound")
    return MilpOutcome(
        status=int(res.status),
        x=None if res.x is None else np.asarray(res.x, dtype=float),
        dual_bound=None if bound is None or not np.isfinite(bound) else float(bound),
        nodes=int(res.get("mip_node_count") or 0),
        message=str(res.message),
        in_child=False,
    )


def _solve_in_child(c, integrality, lb, ub, a, row_lower, row_upper, options, time_limit):
    with tempfile.TemporaryDirectory(prefix="impact-assets-highs-") as tmp:
        problem = Path(tmp) / "problem.npz"
        result_path = Path(tmp) / "result.npz"
        log_path = Path(tmp) / "highs.log"
        np.savez(
            problem,
            c=c,
            integrality=integrality,
            lb=lb,
            ub=ub,
            a=a,
            row_lower=row_lower,
            row_upper=row_upper,
            # The child's clock starts after its imports: give it the wall-clock deadline.
            options=_text(
                {
                    **options,
                    "wall_deadline": None if time_limit is None else time.time() + time_limit,
                }
            ),
        )
        with open(log_path, "wb") as log:
            # This file run as a script (-P: its folder not on sys.path) imports numpy and scipy
            # only, not the package.
            child = subprocess.Popen(  # noqa: S603 (this interpreter, this file)
                [
                    sys.executable,
                    "-P",
                    str(Path(__file__).resolve()),
                    str(problem),
                    str(result_path),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
            kill_at = None if time_limit is None else time.perf_counter() + time_limit
            try:
                while True:
                    try:
                        child.wait(timeout=POLL_SECONDS)
                        break
                    except subprocess.TimeoutExpired:
                        if (
                            kill_at is not None
                            and time.perf_counter() > kill_at + KILL_GRACE_SECONDS
                        ):
                            child.kill()
                            child.wait()
                            return MilpOutcome(1, None, None, 0, "killed at the time limit", True)
            except BaseException:
                child.kill()
                child.wait()
                raise
        if child.returncode != 0 or not result_path.exists():
            tail = log_path.read_bytes()[-500:].decode(errors="replace").strip()
            raise RuntimeError(f"HiGHS child process failed (exit {child.returncode}): {tail}")
        with np.load(result_path, allow_pickle=False) as result:
            meta = json.loads(result["meta"].tobytes().decode())
            x = np.array(result["x"]) if meta["has_x"] else None
    return MilpOutcome(
        status=meta["status"],
        x=x,
        dual_bound=meta["dual_bound"],
        nodes=meta["nodes"],
        message=meta["message"],
        in_child=True,
    )


def _text(value: object) -> np.ndarray:
    return np.frombuffer(json.dumps(value).encode(), dtype=np.uint8)


def _child_main(problem: str, result_path: str) -> int:
    """Entry point of the child: solve the program in ``problem``, write ``result_path``."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _die_with_parent()
    with np.load(problem, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    options = json.loads(arrays.pop("options").tobytes().decode())
    wall_deadline = options.pop("wall_deadline")
    time_limit = None if wall_deadline is None else max(0.01, wall_deadline - time.time())
    outcome = _solve_here(
        arrays["c"],
        arrays["integrality"],
        arrays["lb"],
        arrays["ub"],
        arrays["a"],
        arrays["row_lower"],
        arrays["row_upper"],
        options,
        time_limit,
    )
    meta = {
        "status": outcome.status,
        "has_x": outcome.x is not None,
        "dual_bound": outcome.dual_bound,
        "nodes": outcome.nodes,
        "message": outcome.message,
    }
    partial = result_path + ".part"
    with open(partial, "wb") as out:
        np.savez(out, x=np.zeros(0) if outcome.x is None else outcome.x, meta=_text(meta))
    os.replace(partial, result_path)
    return 0


def _die_with_parent() -> None:
    """Linux only: SIGKILL this process when its parent dies (``PR_SET_PDEATHSIG``)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        return


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1], sys.argv[2]))
