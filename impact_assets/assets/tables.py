"""The reports as the Dagster UI shows them: typed tables (``MetadataValue.table`` with a
``TableSchema``), figures rounded, units in the column names, runs and assets as links.

Units: ``_money`` columns are in money (an effect times the initiative's ``value_per_unit``,
rounded to cents); ``_effect_units`` columns are in the measured outcome's own units (the
pilot's effect estimate as MEASURE reports it). The stored records keep full precision.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg

from impact_assets.reporting import table_rows

#: (column, type, description, row key, digits) of the portfolio table; digits None: as is.
PORTFOLIO_COLUMNS: tuple[tuple[str, str, str, str, int | None], ...] = (
    ("initiative", "string", "initiative id (the partition key)", "initiative", None),
    ("method", "string", "MEASURE's model at pilot scale", "method", None),
    (
        "pilot_estimate_money",
        "float",
        "pilot effect estimate x value_per_unit",
        "pilot_estimate",
        2,
    ),
    ("pilot_ci_lower_money", "float", "lower end of the pilot's CI, in money", "pilot_ci_lower", 2),
    ("pilot_ci_upper_money", "float", "upper end of the pilot's CI, in money", "pilot_ci_upper", 2),
    ("confidence", "float", "EVALUATE's confidence in the pilot, 0..1", "confidence", 3),
    ("cost_money", "float", "cost to scale (the manifest's cost_to_scale)", "cost", 2),
    ("selected", "bool", "funded by the portfolio", "selected", None),
    ("predicted_return_money", "float", "return predicted by ALLOCATE", "predicted", 2),
    ("actual_return_money", "float", "return measured at scale", "actual", 2),
    ("prediction_error_money", "float", "actual - predicted", "error", 2),
    (
        "inside_pilot_ci",
        "bool",
        "the scale effect lies inside the pilot CI",
        "inside_pilot_ci",
        None,
    ),
    ("true_effect_money", "float", "the simulated true effect, in money", "true_effect", 2),
    ("status", "string", "ok, not_scaled or failed", "status", None),
    ("reason", "string", "why not selected, or the error", "reason", None),
)

#: What each figure of ``portfolio_report`` means (shown in the asset's description).
FIGURES = {
    "n_initiatives, n_selected, n_scaled": "initiatives in the manifest, funded, measured at scale",
    "budget, budget_used, budget_left": "money",
    "predicted_return": "sum of the funded initiatives' predicted returns (ALLOCATE's, money)",
    "predicted_return_worst, predicted_return_median, predicted_return_best": "sum of EVALUATE's worst, median and best "
    "returns of the funded initiatives (money)",
    "realised_return": "sum of the returns measured at scale (money)",
    "calibration": "share of scaled initiatives whose scale effect lies inside the pilot CI (0..1)",
    "mean_absolute_error": "mean |actual - predicted| over scaled initiatives (money)",
    "regret_SCENARIO": "shortfall against the best portfolio in that scenario (money)",
}


def rounded(value: Any, digits: int | None) -> Any:
    """``value`` rounded to ``digits`` (a bool, text or None as is)."""
    if digits is None or value is None or isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return round(float(value), digits)
    return value


def significant(value: Any, digits: int = 6) -> Any:
    """A float shown to ``digits`` significant digits (195996.4838805 -> 195996.0,
    0.9453985304 -> 0.945399); anything else as is. For display only: stored records keep
    every digit."""
    if isinstance(value, float) and math.isfinite(value) and value != 0.0:
        return float(f"{value:.{digits}g}")
    return value


def figure_metadata(figures: Mapping[str, Any]) -> dict[str, Any]:
    """The portfolio figures as metadata: counts as ints, money to cents, ratios to 3
    digits, text as text."""
    out: dict[str, Any] = {}
    for key, value in figures.items():
        if value is None or isinstance(value, dict | list):
            continue
        if isinstance(value, bool | str):
            out[key] = dg.MetadataValue.text(str(value))
        elif key.startswith("n_"):
            out[key] = int(value)
        elif key == "calibration":
            out[key] = round(float(value), 3)
        else:
            out[key] = round(float(value), 2)
    return out


def _schema(columns) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[
            dg.TableColumn(name, kind, description=description)
            for name, kind, description, _, _ in columns
        ]
    )


#: The portfolio report's tables: narrow enough that the UI shows every column inline.
PORTFOLIO_TABLES: dict[str, tuple[str, ...]] = {
    "decisions": ("initiative", "selected", "cost_money", "predicted_return_money"),
    "outcomes": ("initiative", "actual_return_money", "prediction_error_money", "inside_pilot_ci"),
    "pilots": ("initiative", "pilot_estimate_money", "confidence", "true_effect_money"),
    "pilot_intervals": ("initiative", "method", "pilot_ci_lower_money", "pilot_ci_upper_money"),
    "reasons": ("initiative", "status", "reason"),
}


def portfolio_tables(rows: Sequence[Mapping[str, Any]]) -> dict[str, dg.TableMetadataValue]:
    """Every initiative of the portfolio report, one typed row each, in a few narrow tables
    (:data:`PORTFOLIO_TABLES`)."""
    by_name = {column[0]: column for column in PORTFOLIO_COLUMNS}
    out = {}
    for table, names in PORTFOLIO_TABLES.items():
        columns = [by_name[name] for name in names]
        records = [
            dg.TableRecord(
                {name: rounded(row.get(key), digits) for name, _, _, key, digits in columns}
            )
            for row in rows
        ]
        out[table] = dg.MetadataValue.table(records, schema=_schema(columns))
    return out


OUTCOME_COLUMNS: tuple[tuple[str, str, str, str, int | None], ...] = (
    ("pilot_estimate_effect_units", "float", "pilot effect estimate as MEASURE reports it", "", 4),
    ("pilot_estimate_money", "float", "the same x value_per_unit", "", 2),
    ("confidence", "float", "EVALUATE's confidence, 0..1", "", 3),
    ("cost_money", "float", "cost to scale", "", 2),
    ("selected", "bool", "funded by the portfolio", "", None),
    ("predicted_return_money", "float", "return predicted by ALLOCATE", "", 2),
    ("actual_return_money", "float", "return measured at scale", "", 2),
    ("prediction_error_money", "float", "actual - predicted", "", 2),
    ("status", "string", "ok (scaled), not_scaled or failed", "", None),
    ("reason", "string", "why not scaled, or the error", "", None),
)


def outcome_table(record: Mapping[str, Any]) -> dg.TableMetadataValue:
    """One initiative's outcome report as a one-row typed table."""
    (row,) = table_rows([record["initiative_id"]], {record["initiative_id"]: record})
    pilot = record.get("pilot") or {}
    values = {
        "pilot_estimate_effect_units": pilot.get("effect_estimate"),
        "pilot_estimate_money": row.get("pilot_estimate"),
        "confidence": record.get("confidence"),
        "cost_money": record.get("cost"),
        "selected": record.get("selected"),
        "predicted_return_money": record.get("predicted_return"),
        "actual_return_money": record.get("actual_return"),
        "prediction_error_money": record.get("prediction_error"),
        "status": record.get("status"),
        "reason": record.get("reason") or record.get("error"),
    }
    data = {name: rounded(values[name], digits) for name, _, _, _, digits in OUTCOME_COLUMNS}
    return dg.MetadataValue.table([dg.TableRecord(data)], schema=_schema(OUTCOME_COLUMNS))


def run_link(run_id: str | None) -> dg.MetadataValue | None:
    """A link to a run in the UI (None when unknown)."""
    return dg.MetadataValue.dagster_run(run_id) if run_id else None


def asset_link(name: str) -> dg.MetadataValue:
    return dg.MetadataValue.asset(dg.AssetKey(name))
