"""Readable reports: the portfolio table, its figures, a chart and exports (pure Python).

Used by the ``outcome_report``/``portfolio_report`` assets and by ``python -m impact_assets
report``. Formulas (docs/reports.md):

* prediction error = actual - predicted (both times ``value_per_unit``);
* calibration = share of scaled initiatives whose scale actual lies inside the pilot CI
  (initiatives without a CI are left out);
* ROI = (return - budget allocated) / budget allocated, predicted and actual.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

COLUMNS = [
    "initiative",
    "method",
    "pilot_estimate",
    "pilot_ci_lower",
    "pilot_ci_upper",
    "confidence",
    "cost",
    "selected",
    "predicted",
    "actual",
    "error",
    "inside_pilot_ci",
    "true_effect",
    "reason",
]


def fmt(value: Any) -> str:
    """Short human formatting: 4 significant digits, '–' for missing."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isfinite(value) and abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.4g}"
    return str(value)


def table_rows(ids: Sequence[str], reports: Mapping[str, Mapping[str, Any]]) -> list[dict]:
    """One row per initiative (manifest order) from the outcome report records."""
    rows = []
    for key in ids:
        record = reports.get(key)
        if record is None:
            rows.append({"initiative": key, "status": "missing", "reason": "no outcome report"})
            continue
        pilot = record.get("pilot") or {}
        vpu = float(record.get("value_per_unit") or 1.0)

        def money(value, vpu=vpu):
            return None if value is None else float(value) * vpu

        rows.append(
            {
                "initiative": key,
                "method": pilot.get("model_type"),
                "pilot_estimate": money(pilot.get("effect_estimate")),
                "pilot_ci_lower": money(pilot.get("ci_lower")),
                "pilot_ci_upper": money(pilot.get("ci_upper")),
                "confidence": record.get("confidence"),
                "cost": record.get("cost"),
                "selected": record.get("selected"),
                "predicted": record.get("predicted_return"),
                "actual": record.get("actual_return"),
                "error": record.get("prediction_error"),
                "inside_pilot_ci": record.get("actual_in_pilot_ci"),
                "true_effect": money(pilot.get("true_effect")),
                "reason": record.get("reason") or record.get("error"),
                "status": record.get("status"),
                "returns": record.get("returns"),
            }
        )
    return rows


def figures(
    rows: Sequence[Mapping[str, Any]], budget: float, portfolio: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Portfolio figures: budget, predicted vs realised return, regret, calibration, error."""
    scaled = [r for r in rows if r.get("status") == "ok"]
    inside = [r["inside_pilot_ci"] for r in scaled if r.get("inside_pilot_ci") is not None]
    used = math.fsum(float(r["cost"]) for r in rows if r.get("selected"))
    out: dict[str, Any] = {
        "n_initiatives": len(rows),
        "n_selected": sum(1 for r in rows if r.get("selected")),
        "n_scaled": len(scaled),
        "budget": budget,
        "budget_used": used,
        "budget_left": budget - used,
    }
    for scenario, key in (
        ("worst", "return_worst"),
        ("median", "return_median"),
        ("best", "return_best"),
    ):
        values = [(r.get("returns") or {}).get(key) for r in scaled]
        out[f"predicted_return_{scenario}"] = (
            math.fsum(values) if scaled and None not in values else None
        )
    out["predicted_return"] = math.fsum(r["predicted"] for r in scaled)
    out["realised_return"] = math.fsum(r["actual"] for r in scaled)
    out["calibration"] = sum(inside) / len(inside) if inside else None
    out["n_with_pilot_ci"] = len(inside)
    out["mean_absolute_error"] = (
        math.fsum(abs(r["error"]) for r in scaled) / len(scaled) if scaled else None
    )
    detail = (portfolio or {}).get("detail") or {}
    regrets = detail.get("regrets")
    if isinstance(regrets, Mapping):
        for scenario, value in sorted(regrets.items()):
            out[f"regret_{scenario}"] = value
    if portfolio is not None:
        out["allocation_rule"] = portfolio.get("rule")
        out["allocation_status"] = portfolio.get("status")
        # How far from optimal the portfolio may be (relative to the solver scale, docs/allocate.md).
        out["allocation_certified_gap"] = (detail.get("solver") or {}).get("certified_gap_relative")
    return out


def text_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] = COLUMNS) -> str:
    """A fixed-width plain-text table."""
    cells = [[fmt(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines += [
        "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    return "\n".join(lines)


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] = COLUMNS) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def markdown_figures(values: Mapping[str, Any]) -> str:
    lines = ["| figure | value |", "|---|---|"]
    lines += [f"| {k} | {fmt(v)} |" for k, v in values.items()]
    return "\n".join(lines)


def outcome_markdown(record: Mapping[str, Any]) -> str:
    """A small table for one initiative's report (shown as markdown metadata in the UI)."""
    if record.get("status") != "ok":
        pilot = record.get("pilot") or {}
        rows = [
            ("status", record.get("status")),
            ("reason", record.get("reason") or record.get("error")),
            ("method", pilot.get("model_type")),
            ("pilot estimate", pilot.get("effect_estimate")),
            ("pilot CI", _interval(pilot.get("ci_lower"), pilot.get("ci_upper"))),
            ("pilot p-value", pilot.get("p_value")),
            ("confidence", record.get("confidence")),
            ("cost", record.get("cost")),
        ]
    else:
        details = record.get("details") or {}
        rows = [
            ("method", record.get("model_type")),
            ("confidence", record.get("confidence_score")),
            ("raw pilot return", details.get("predicted_return_raw")),
            ("predicted return (after shrinkage)", record.get("predicted_return")),
            ("prediction interval", _prediction_interval(details.get("predicted_interval"))),
            ("reliability of the pilot", details.get("reliability")),
            ("actual return (scale)", record.get("actual_return")),
            ("prediction error", record.get("prediction_error")),
            ("pilot CI", _interval(record.get("pilot_ci_lower"), record.get("pilot_ci_upper"))),
            ("actual inside pilot CI", record.get("actual_in_pilot_ci")),
            (
                "true effect pilot / scale",
                _pair(record.get("true_effect_pilot"), record.get("true_effect_scale")),
            ),
            (
                "pilot / scale estimate error vs truth",
                _pair(details.get("pilot_estimate_error"), details.get("scale_estimate_error")),
            ),
            (
                "sample size pilot / scale",
                _pair(record.get("sample_size_pilot"), record.get("sample_size_scale")),
            ),
            ("budget allocated", record.get("budget_allocated")),
            (
                "ROI predicted / actual",
                _pair(details.get("roi_predicted"), details.get("roi_actual")),
            ),
        ]
        rows += [("warning", text.replace("|", "\\|")) for text in details.get("warnings") or []]
    return "\n".join(
        [
            "| | |",
            "|---|---|",
            *(f"| {k} | {fmt(v) if not isinstance(v, str) else v} |" for k, v in rows),
        ]
    )


def _prediction_interval(interval: Any) -> str:
    if not interval:
        return "none (the allocation rule does not shrink)"
    return f"[{fmt(interval[0])}, {fmt(interval[1])}]"


def _interval(lo: Any, hi: Any) -> str:
    return "none (method has no CI)" if lo is None or hi is None else f"[{fmt(lo)}, {fmt(hi)}]"


def _pair(a: Any, b: Any) -> str:
    return f"{fmt(a)} / {fmt(b)}"


def csv_text(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] = COLUMNS) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(
        buffer, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n"
    )
    writer.writeheader()
    for row in rows:
        writer.writerow({c: "" if row.get(c) is None else row.get(c) for c in columns})
    return buffer.getvalue()


def write_exports(rows: Sequence[Mapping[str, Any]], directory: Path) -> dict[str, Path]:
    """CSV and Parquet exports of the table, written atomically; returns their paths."""
    import pandas as pd

    from impact_assets.atomic import write_bytes_atomic

    directory.mkdir(parents=True, exist_ok=True)
    csv_path = directory / "portfolio_report.csv"
    parquet_path = directory / "portfolio_report.parquet"
    write_bytes_atomic(csv_path, csv_text(rows).encode("utf-8"))
    frame = pd.DataFrame([{c: r.get(c) for c in COLUMNS} for r in rows], columns=COLUMNS)
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    write_bytes_atomic(parquet_path, buffer.getvalue())
    return {"csv": csv_path, "parquet": parquet_path}


#: Up to this many initiatives the chart has one row each; above it, one scatter of the scaled ones.
PLOT_ROWS_MAX = 40


def load_plotting():
    """Import matplotlib with its file-only backend (Agg) and return ``pyplot``.

    About half a second on first use, so only the chart's own step pays it.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot(rows: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """The report chart as a PNG at ``path``.

    Up to :data:`PLOT_ROWS_MAX` initiatives: one row each with the pilot estimate and its CI
    (blue when selected, grey otherwise), the scale actual (red) and the pilot truth (black tick).
    Larger portfolios get a fixed-size chart of the scaled initiatives: scale actual against pilot
    estimate, with the pilot CI as a horizontal bar and the line actual = predicted.
    """
    from impact_assets.atomic import write_bytes_atomic

    plt = load_plotting()

    rows = [r for r in rows if r.get("pilot_estimate") is not None]
    fig = _plot_rows(plt, rows) if len(rows) <= PLOT_ROWS_MAX else _plot_scatter(plt, rows)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    write_bytes_atomic(path, buffer.getvalue())
    return path


def _points(rows: Sequence[Mapping[str, Any]], x: str, y: Sequence[float]) -> tuple[list, list]:
    pairs = [(r[x], yy) for r, yy in zip(rows, y, strict=True) if r.get(x) is not None]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def _ci_bars(ax, rows, ys: Sequence[float], colors: Sequence[str], **style: Any) -> None:
    """Each row's pilot CI as a horizontal bar at its ``y`` (rows without a CI get none)."""
    bars = [
        (y, r["pilot_ci_lower"], r["pilot_ci_upper"], c)
        for y, r, c in zip(ys, rows, colors, strict=True)
        if r.get("pilot_ci_lower") is not None and r.get("pilot_ci_upper") is not None
    ]
    if bars:
        ys, lows, highs, colors = zip(*bars, strict=True)
        ax.hlines(ys, lows, highs, colors=list(colors), **style)


def _plot_rows(plt, rows: Sequence[Mapping[str, Any]]):
    rows = list(reversed(rows))
    ys = list(range(len(rows)))
    colors = ["#1f6feb" if r.get("selected") else "#8c959f" for r in rows]
    fig, ax = plt.subplots(figsize=(9, 0.6 * max(len(rows), 3) + 1.4), dpi=110)
    _ci_bars(ax, rows, ys, colors, linewidth=2.5)
    ax.scatter([r["pilot_estimate"] for r in rows], ys, c=colors, marker="o", s=50, zorder=3)
    ax.scatter(*_points(rows, "actual", ys), c="#cf222e", marker="D", s=50, zorder=4)
    ax.scatter(*_points(rows, "true_effect", ys), c="black", marker="|", s=250, zorder=5)
    ax.set_yticks(ys)
    ax.set_yticklabels([r["initiative"] for r in rows])
    ax.axvline(0, color="#d0d7de", linewidth=1)
    ax.set_xlabel("return (effect x value_per_unit)")
    ax.set_title(
        "Pilot estimate and 95% CI (blue: selected, grey: not), scale actual (red), truth (|)"
    )
    return fig


def _plot_scatter(plt, rows: Sequence[Mapping[str, Any]]):
    scaled = [r for r in rows if r.get("actual") is not None]
    fig, ax = plt.subplots(figsize=(9, 7), dpi=110)
    predicted = [r["pilot_estimate"] for r in scaled]
    actual = [r["actual"] for r in scaled]
    _ci_bars(ax, scaled, actual, ["#1f6feb"] * len(scaled), alpha=0.35, linewidth=1.5)
    ax.scatter(predicted, actual, c="#1f6feb", s=14, zorder=3)
    if scaled:
        low = min(min(predicted), min(actual))
        high = max(max(predicted), max(actual))
        ax.plot([low, high], [low, high], color="#cf222e", linewidth=1, label="actual = predicted")
        ax.legend(loc="upper left")
    ax.axvline(0, color="#d0d7de", linewidth=1)
    ax.axhline(0, color="#d0d7de", linewidth=1)
    ax.set_xlabel("pilot estimate of return (bar: 95% CI)")
    ax.set_ylabel("scale actual return")
    ax.set_title(
        f"{len(scaled)} scaled of {len(rows)} initiatives: scale actual against pilot estimate"
    )
    return fig


def plot_frontier(frontier: Mapping[str, Any], path: Path) -> Path:
    """The budget frontier as a PNG at ``path``: expected and worst-case portfolio return against
    budget (``impact_assets.allocate.frontier.budget_frontier``), the chosen budget marked."""
    from impact_assets.atomic import write_bytes_atomic

    plt = load_plotting()
    points = list(frontier.get("points") or [])
    budgets = [p["budget"] for p in points]
    fig, ax = plt.subplots(figsize=(9, 5), dpi=110)
    ax.plot(
        budgets,
        [p["expected"] for p in points],
        color="#1f6feb",
        marker="o",
        markersize=3,
        label="expected return (sum of predicted returns)",
    )
    worst = [(p["budget"], p["worst"]) for p in points if p.get("worst") is not None]
    if worst:
        ax.plot(
            [w[0] for w in worst],
            [w[1] for w in worst],
            color="#cf222e",
            marker="o",
            markersize=3,
            label="worst case (sum of lower bounds)",
        )
    chosen = frontier.get("chosen_budget")
    if chosen is not None:
        ax.axvline(
            chosen, color="black", linestyle="--", linewidth=1, label=f"budget {fmt(chosen)}"
        )
    ax.axhline(0, color="#d0d7de", linewidth=1)
    ax.set_xlabel("budget")
    ax.set_ylabel("portfolio return")
    ax.set_title(f"Budget frontier ({frontier.get('rule')}, {len(points)} budgets)")
    ax.legend(loc="best")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    write_bytes_atomic(path, buffer.getvalue())
    return path
