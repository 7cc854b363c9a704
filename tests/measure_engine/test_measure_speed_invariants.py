"""The fast paths of the MEASURE engine give exactly what the straightforward code gives.

The simulator, the transforms and the job-directory writer were sped up without changing a
single float: these tests pin the outputs (digests computed with the original implementation)
and compare each fast path with a plain pandas/pyarrow reference on varied data (missing
values, shuffled rows, uneven groups, infinities).
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from impact_assets.measure.grouped import Grouping
from impact_assets.measure.jobdir import JobDir, arrow_table, dumps_yaml, json_safe
from impact_assets.measure.simulator import (
    FunnelParams,
    Treatment,
    generate_catalog,
    simulate_panel,
)
from impact_assets.measure.transforms import apply_transform


def digest(frame: pd.DataFrame) -> str:
    """A digest of the column names and exact values (floats by their bits)."""
    h = hashlib.sha256()
    for name in frame.columns:
        values = frame[name]
        h.update(str(name).encode() + b"\x01")
        if pd.api.types.is_datetime64_any_dtype(values):
            h.update(values.to_numpy("datetime64[ns]").view(np.int64).tobytes())
        elif pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
            array = values.to_numpy()
            h.update(np.ascontiguousarray(array).tobytes() + array.dtype.str.encode())
        else:
            h.update("\x00".join(map(str, values.tolist())).encode())
    return h.hexdigest()[:16]


START, END = pd.Timestamp("2024-03-01"), pd.Timestamp("2024-03-28")
UP = Treatment("product_detail_boost", 0.5, pd.Timestamp("2024-03-15"), 0.4, 5, 0.2, 9)
DOWN = Treatment("product_detail_boost", 0.3, pd.Timestamp("2024-03-10"), -0.3, 0, 0.0, 4)


@pytest.fixture(scope="module")
def up_panel() -> pd.DataFrame:
    return simulate_panel(
        generate_catalog(60, 5), START, END, 3, FunnelParams(daily_trend=0.01), UP
    )


def test_simulator_output_is_unchanged(up_panel):
    """Digests of the original implementation's output (same seeds, same draws)."""
    catalog = generate_catalog(60, 5)
    assert digest(catalog) == "a82c0b822f280a58"
    assert digest(simulate_panel(catalog, START, END, 3, FunnelParams())) == "e14078ba98549929"
    assert digest(up_panel) == "510d402e0a292dcb"
    assert digest(simulate_panel(catalog, START, END, 4, FunnelParams(), DOWN)) == (
        "af971de7cc1b1352"
    )


def test_transform_outputs_are_unchanged(up_panel):
    start = {"enrichment_start": "2024-03-15"}
    expected = {
        ("aggregate_by_date", ()): "413c0f29c9417dd6",
        ("aggregate_by_date", (("statistic", "mean"),)): "257a30f204dfc854",
        ("prepare_simulator_for_approximation", tuple(start.items())): "0667eea1c32a4ca1",
        ("prepare_for_synthetic_control", tuple(start.items())): "b66791ca4e57a116",
    }
    for (name, params), value in expected.items():
        assert digest(apply_transform(name, up_panel, dict(params))) == value, name


# --------------------------------------------------------------------------- reference code


def _aggregate_by_date(data: pd.DataFrame, statistic: str) -> pd.DataFrame:
    """The straightforward aggregate_by_date: a copy grouped by its parsed "date" column."""
    frame = data.copy()
    frame["date"] = pd.to_datetime(frame["date"])
    grouped = frame.groupby("date", sort=True)
    bools = [c for c in frame.columns if c != "date" and pd.api.types.is_bool_dtype(frame[c])]
    numeric = [
        c
        for c in frame.columns
        if c != "date" and c not in bools and pd.api.types.is_numeric_dtype(frame[c])
    ]
    summed = [c for c in numeric if c not in ("price", "quality_score")]
    averaged = [c for c in numeric if c in ("price", "quality_score")]
    parts = []
    if summed:
        parts.append(grouped[summed].sum() if statistic == "sum" else grouped[summed].mean())
    if averaged:
        parts.append(grouped[averaged].mean())
    if bools:
        counts = grouped[bools].sum().astype(np.int64)
        counts.columns = [f"n_{c}" for c in bools]
        parts.append(counts)
    parts.append(grouped.size().rename("n_rows").astype(np.int64).to_frame())
    return pd.concat(parts, axis=1).reset_index()


def _approximation(frame: pd.DataFrame, start: str) -> pd.DataFrame:
    """The straightforward prepare_simulator_for_approximation (pandas groupby by id)."""
    stamp = pd.Timestamp(start)
    before_mask = (pd.to_datetime(frame["date"]) < stamp).to_numpy()
    after_mask = ~before_mask
    before, after = frame[before_mask], frame[after_mask]
    outcomes = [c for c in frame.columns if str(c).endswith(("_y0", "_y1"))]
    by_before = before.groupby("product_id", sort=True)
    by_after = after.groupby("product_id", sort=True)
    products = pd.Index(np.unique(frame["product_id"].astype(str).to_numpy()), name="product_id")
    out = pd.DataFrame(index=products)
    out["quality_before"] = by_before["quality_score"].mean().round(9)
    out["quality_after"] = by_after["quality_score"].mean().round(9)
    out["baseline_sales"] = by_before["revenue"].sum()
    ordered = frame.sort_values("date", kind="stable").groupby("product_id", sort=True)
    for column in ("category", "price", "enriched"):
        if column in frame.columns:
            out[column] = ordered[column].first()
    out["n_days_before"] = by_before.size().reindex(products, fill_value=0).astype(np.int64)
    out["n_days_after"] = by_after.size().reindex(products, fill_value=0).astype(np.int64)
    sums = by_after[outcomes].sum()
    for column in outcomes:
        out[column] = sums[column]
    return out.reset_index()


def _variants(panel: pd.DataFrame) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(0)
    shuffled = panel.sample(frac=1.0, random_state=1)
    uneven = panel[rng.random(len(panel)) < 0.7]
    missing = panel.copy()
    for column in ("quality_score", "revenue", "revenue_y1", "price"):
        missing.loc[rng.random(len(missing)) < 0.05, column] = np.nan
    infinite = panel.copy()
    infinite.loc[infinite.index[:3], "revenue"] = np.inf
    text_dates = shuffled.assign(date=shuffled["date"].dt.strftime("%Y-%m-%d"))
    by_product = panel.sort_values(["product_id", "date"], kind="stable")  # sorted groups
    return {
        "by product": by_product,
        "by product, missing": by_product.assign(revenue=missing["revenue"]),
        "panel": panel,
        "shuffled": shuffled,
        "uneven": uneven,
        "missing": missing,
        "infinite": infinite,
        "text dates": text_dates,
    }


def test_transforms_match_the_straightforward_pandas_code(up_panel):
    for label, data in _variants(up_panel).items():
        for statistic in ("sum", "mean"):
            got = apply_transform("aggregate_by_date", data, {"statistic": statistic})
            pd.testing.assert_frame_equal(got, _aggregate_by_date(data, statistic), obj=label)
        got = apply_transform(
            "prepare_simulator_for_approximation", data, {"enrichment_start": "2024-03-15"}
        )
        pd.testing.assert_frame_equal(got, _approximation(data, "2024-03-15"), obj=label)


def test_grouping_matches_pandas_groupby_bit_for_bit():
    rng = np.random.default_rng(3)
    for case in range(60):
        n, n_groups = int(rng.integers(1, 2000)), int(rng.integers(1, 200))
        codes = rng.integers(0, n_groups, n)
        if case % 3 == 0:  # equal groups, as in a balanced panel
            codes = np.tile(rng.permutation(n_groups), n // n_groups + 1)[:n]
        if case % 5 == 4:  # rows sorted by group (pandas sums these with reduceat)
            codes = np.sort(codes)
        frame = pd.DataFrame(
            {
                "a": rng.normal(0, 10.0 ** rng.integers(-4, 10), n),
                "b": np.round(rng.random(n) * 1000, 2),
                "c": rng.integers(-1000, 1000, n),
                "d": rng.standard_cauchy(n) * 1e6,
                "s": rng.choice(["x", "y", "z"], n),
                "e": rng.random(n) > 0.5,
            }
        )
        if case % 4 == 1:
            frame.loc[rng.random(n) < 0.1, "a"] = np.nan
        if case % 7 == 2:
            frame.loc[rng.random(n) < 0.01, "d"] = np.inf
        mask = rng.random(n) < rng.random() if case % 2 else None
        grouping = Grouping(codes)
        for how, columns in (("sum", ["a", "b", "c", "d"]), ("mean", ["a", "b", "d"])):
            selected = frame[columns] if mask is None else frame.loc[mask, columns]
            keys = codes if mask is None else codes[mask]
            if not len(keys):
                continue
            expected = getattr(selected.groupby(keys, sort=True), how)()
            got = grouping.reduce(frame, columns, how, mask)
            pd.testing.assert_frame_equal(got, expected, check_exact=True)
            for column in columns:
                if expected[column].dtype == float:
                    bits = expected[column].to_numpy().view(np.int64)
                    assert np.array_equal(got[column].to_numpy().view(np.int64), bits)
        expected = frame[["s", "b", "e", "c"]].groupby(codes, sort=True).first()
        pd.testing.assert_frame_equal(grouping.first(frame, ["s", "b", "e", "c"]), expected)


def test_grouping_rejects_what_it_cannot_number():
    with pytest.raises(ValueError, match="1-d integer"):
        Grouping(np.array([0.5, 1.0]))
    with pytest.raises(ValueError, match=">= 0"):
        Grouping(np.array([0, -1, 1]))
    with pytest.raises(ValueError, match="'sum' or 'mean'"):
        Grouping(np.array([0, 1])).reduce(pd.DataFrame({"a": [1.0, 2.0]}), ["a"], "median")


# --------------------------------------------------------------------------- job directory


def _frames(panel: pd.DataFrame) -> list[pd.DataFrame]:
    return [
        panel,
        panel.head(0),
        apply_transform("aggregate_by_date", panel, {}),
        pd.DataFrame({"x": [1.0, np.nan, np.inf], "n": [1, 2, 3], "t": ["a", None, "c"]}),
        pd.DataFrame({"when": pd.to_datetime(["2024-01-01", None, "2024-01-03"])}),
        pd.DataFrame({"mixed": ["a", 1, None], "cat": pd.Categorical(["u", "v", "u"])}),
        pd.DataFrame({"tz": pd.date_range("2024-01-01", periods=3, tz="UTC"), 3: [1, 2, 3]}),
        pd.DataFrame({"dup": [1, 2], "dup2": [1.5, 2.5]}).rename(columns={"dup2": "dup"}),
    ]


def test_arrow_table_is_what_from_pandas_builds(up_panel):
    for frame in _frames(up_panel):
        try:
            expected = pa.Table.from_pandas(frame, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError):
            continue
        got = arrow_table(frame)
        assert got.equals(expected, check_metadata=True), list(frame.columns)


def test_parquet_files_read_back_as_written(tmp_path, up_panel):
    frames = [
        up_panel,
        up_panel.head(0),
        apply_transform("aggregate_by_date", up_panel, {}),
        pd.DataFrame({"x": [1.0, np.nan, np.inf], "n": [1, 2, 3], "t": ["a", None, "c"]}),
        pd.DataFrame({"when": pd.to_datetime(["2024-01-01", None, "2024-01-03"])}),
    ]
    job = JobDir(tmp_path, "init-1", "pilot")
    for k, frame in enumerate(frames):
        job.write_parquet(f"f{k}", f"f{k}.parquet", frame)
    final = job.commit({"model_type": "test"})
    for k, frame in enumerate(frames):
        back = pd.read_parquet(final / f"f{k}.parquet")
        pd.testing.assert_frame_equal(back, frame.reset_index(drop=True), check_exact=True)
        schema = pq.read_schema(final / f"f{k}.parquet")
        assert schema.equals(pa.Table.from_pandas(frame, preserve_index=False).schema)
    assert sorted(p.name for p in final.iterdir()) == sorted(
        [*(f"f{k}.parquet" for k in range(len(frames))), "manifest.json"]
    )


def test_yaml_text_is_cached_without_changing_it():
    value = {"b": [1, 2.5, None, True, "yes", 1e-20], "a": {"ü": "x\ny"}, "c": float("nan")}
    expected = yaml.dump(
        json_safe(value), Dumper=yaml.SafeDumper, sort_keys=True, allow_unicode=True
    )
    assert dumps_yaml(value) == expected
    assert dumps_yaml(value) == expected  # from the cache
    assert yaml.safe_load(dumps_yaml(value)) == json_safe(value)
