"""DATA.TRANSFORM functions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from impact_assets.measure.simulator import (
    FunnelParams,
    Treatment,
    generate_catalog,
    simulate_panel,
)
from impact_assets.measure.transforms import (
    TRANSFORM_REGISTRY,
    TransformError,
    apply_transform,
    register_transform,
)

START = pd.Timestamp("2024-03-05")


@pytest.fixture
def panel() -> pd.DataFrame:
    treatment = Treatment("product_detail_boost", 0.5, START, 0.5, 0, 0.2, 3)
    return simulate_panel(
        generate_catalog(40, 2),
        pd.Timestamp("2024-03-01"),
        pd.Timestamp("2024-03-10"),
        2,
        FunnelParams(),
        treatment,
    )


def test_passthrough_is_identity(panel):
    assert apply_transform("passthrough", panel, {}) is panel


def test_aggregate_by_date(panel):
    out = apply_transform("aggregate_by_date", panel, {"metric": "revenue"})
    assert out.columns[0] == "date"
    assert len(out) == 10 and out["date"].is_monotonic_increasing
    first = panel[panel["date"] == panel["date"].min()]
    row = out.iloc[0]
    assert row["revenue"] == pytest.approx(first["revenue"].sum())
    assert row["revenue_y1"] == pytest.approx(first["revenue_y1"].sum())  # outcomes carried
    assert row["price"] == pytest.approx(first["price"].mean())  # averaged, not summed (B13)
    assert row["n_enriched"] == first["enriched"].sum() == 20  # kept as a count (B13)
    assert row["n_rows"] == 40
    assert "product_id" not in out.columns
    simple = pd.DataFrame({"date": ["2024-01-01", "2024-01-01"], "revenue": [100, 200]})
    assert apply_transform("aggregate_by_date", simple, {})["revenue"].tolist() == [300]
    with pytest.raises(TransformError, match="metric_x"):
        apply_transform("aggregate_by_date", panel, {"metric": "metric_x"})
    with pytest.raises(TransformError, match="date"):
        apply_transform("aggregate_by_date", panel.drop(columns="date"), {})


def test_aggregate_for_approximation(panel):
    out = apply_transform("aggregate_for_approximation", panel[["product_id", "revenue"]], {})
    assert list(out.columns) == ["product_id", "baseline_sales"]
    full = apply_transform("aggregate_for_approximation", panel, {})
    assert full["revenue_y0"].sum() == pytest.approx(panel["revenue_y0"].sum())
    with pytest.raises(TransformError, match="product_id"):
        apply_transform("aggregate_for_approximation", panel.drop(columns="product_id"), {})


def test_prepare_simulator_for_approximation(panel):
    out = apply_transform(
        "prepare_simulator_for_approximation", panel, {"enrichment_start": "2024-03-05"}
    )
    assert list(out.columns[:4]) == [
        "product_id",
        "quality_before",
        "quality_after",
        "baseline_sales",
    ]
    assert len(out) == 40 and out["product_id"].is_unique
    before = panel[panel["date"] < START]
    expected = before.groupby("product_id")["revenue"].sum()
    got = out.set_index("product_id")["baseline_sales"]
    pd.testing.assert_series_equal(got.sort_index(), expected.sort_index(), check_names=False)
    enriched = out.set_index("product_id")["enriched"]
    delta = out.set_index("product_id").eval("quality_after - quality_before")
    assert (delta[enriched] > 0).all() and (delta[~enriched] == 0).all()
    assert (out["n_days_before"] == 4).all() and (out["n_days_after"] == 6).all()
    after = panel[panel["date"] >= START].groupby("product_id")["revenue_y1"].sum()
    assert out.set_index("product_id")["revenue_y1"].sort_index().tolist() == pytest.approx(
        after.sort_index().tolist()
    )


def test_prepare_simulator_for_approximation_aligns_by_product_id():
    # before: A, B; after: B, C. Upstream combined these by row position (spec B15).
    data = pd.DataFrame(
        {
            "product_id": ["A", "B", "B", "C"],
            "date": pd.to_datetime(["2024-01-01", "2024-01-01", "2024-01-10", "2024-01-10"]),
            "quality_score": [0.1, 0.2, 0.5, 0.9],
            "revenue": [10.0, 20.0, 30.0, 40.0],
        }
    )
    out = apply_transform(
        "prepare_simulator_for_approximation", data, {"enrichment_start": "2024-01-05"}
    ).set_index("product_id")
    assert out.loc["B", "quality_before"] == 0.2 and out.loc["B", "quality_after"] == 0.5
    assert np.isnan(out.loc["A", "quality_after"]) and np.isnan(out.loc["C", "quality_before"])
    assert out.loc["A", "baseline_sales"] == 10.0 and out.loc["B", "baseline_sales"] == 20.0
    assert np.isnan(out.loc["C", "baseline_sales"])


def test_prepare_for_synthetic_control(panel):
    out = apply_transform("prepare_for_synthetic_control", panel, {"enrichment_start": START})
    expected = (panel["enriched"] & (panel["date"] >= START)).astype(int)
    assert out["treatment"].dtype == np.int64
    assert (out["treatment"] == expected).all()
    none = apply_transform("prepare_for_synthetic_control", panel, {})
    assert (none["treatment"] == 0).all()


def test_unknown_transform_and_registration():
    with pytest.raises(TransformError, match="Available"):
        apply_transform("nope", pd.DataFrame(), {})
    with pytest.raises(TypeError, match="callable"):
        register_transform("bad", "not a function")  # type: ignore[arg-type]
    assert "bad" not in TRANSFORM_REGISTRY
