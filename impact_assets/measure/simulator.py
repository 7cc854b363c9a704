"""Our own rule-based, seeded retail simulator: a product catalog and a daily funnel panel.

The formulas are documented in ``docs/measure.md`` ("Simulator"); in short, for product ``i`` on
day ``t``::

    w_i      = exp(traffic_sigma * z_i - traffic_sigma**2 / 2) * (price_i / reference_price) ** -price_elasticity
    s_t      = (1 + weekly_amplitude * cos(2*pi*(dow_t - 5.5) / 7)) * max(0, 1 + daily_trend * t)
    active   ~ Bernoulli(sale_prob)
    impr     ~ active * Poisson(mean_impressions * w_i * s_t)
    visits   ~ Binomial(impr, impression_to_visit_rate)
    carts0   ~ Binomial(visits, visit_to_cart_rate)
    orders0  ~ Binomial(carts0, cart_to_order_rate)
    units0   = orders0 + Binomial(orders0, multi_unit_rate)
    revenue0 = round(price_i * units0, 2)

Treatment (enrichment) multiplies the visit-to-cart probability by ``1 + effect_size * ramp(t)``,
hence the expected ordered units (and revenue) by the same factor. Both potential outcomes are
drawn with common random numbers: ``Y0`` is the funnel above, ``Y1`` adds (or, for a negative
effect, removes) carts on top of the same visits, so ``Y1 - Y0`` reflects only the effect and
``Y1 >= Y0`` whenever ``effect_size >= 0``.

Every draw comes from ``np.random.default_rng([stream, seed])`` with a fixed stream number per
purpose, so the output depends only on the seeds and parameters: not on the hash seed, the
process, dict order, or the treatment parameters (``Y0`` is identical whatever ``effect_size``).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

#: RNG stream numbers (the first entropy word), one per purpose.
STREAM_CATALOG = 11
STREAM_FUNNEL = 12
STREAM_TREATMENT = 13
STREAM_ASSIGNMENT = 14

#: Categories and their uniform price ranges (the upstream catalog, spec §5.2).
CATEGORIES: tuple[tuple[str, float, float], ...] = (
    ("Electronics", 50.0, 1500.0),
    ("Clothing", 15.0, 200.0),
    ("Home & Garden", 20.0, 500.0),
    ("Books", 10.0, 60.0),
    ("Sports & Outdoors", 15.0, 300.0),
    ("Toys & Games", 10.0, 100.0),
    ("Food & Beverage", 5.0, 50.0),
    ("Health & Beauty", 8.0, 80.0),
)

_ID_ALPHABET = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"))
_ID_BYTES = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", dtype=np.uint8)

#: The two outcome metrics that carry potential outcomes.
OUTCOME_METRICS = ("ordered_units", "revenue")
PANEL_COLUMNS = (
    "product_id",
    "date",
    "category",
    "price",
    "impressions",
    "visits",
    "add_to_cart",
    "ordered_units",
    "revenue",
    "quality_score",
    "enriched",
    "ordered_units_y0",
    "ordered_units_y1",
    "revenue_y0",
    "revenue_y1",
)


def derive_seed(seed: int, *labels: str | int) -> int:
    """A stable 63-bit seed from ``seed`` and labels (sha256; no dependence on the hash seed)."""
    text = ":".join(str(part) for part in (seed, *labels))
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big") >> 1


def _rng(stream: int, seed: int) -> np.random.Generator:
    return np.random.default_rng([stream, int(seed)])


@dataclass(frozen=True)
class FunnelParams:
    """The ``CATALOG_SIMULATOR`` section (validated)."""

    sale_prob: float = 0.7
    impression_to_visit_rate: float = 0.15
    visit_to_cart_rate: float = 0.25
    cart_to_order_rate: float = 0.80
    default_quality_score: float = 0.5
    mean_impressions: float = 100.0
    traffic_sigma: float = 0.5
    price_elasticity: float = 0.5
    reference_price: float = 100.0
    weekly_amplitude: float = 0.1
    daily_trend: float = 0.0
    multi_unit_rate: float = 0.3


@dataclass(frozen=True)
class Treatment:
    """The ``DATA.ENRICHMENT`` section (validated)."""

    function: str
    enrichment_fraction: float
    enrichment_start: pd.Timestamp
    effect_size: float
    ramp_days: int
    quality_boost: float
    seed: int
    boosts_quality: bool = True


# --------------------------------------------------------------------------- catalog


def generate_catalog(n_products: int, seed: int) -> pd.DataFrame:
    """A catalog of ``n_products``: ``product_id, category, price, quality_score``.

    ``product_id`` is ``"B"`` plus 9 characters of ``A-Z0-9`` (unique), the category is uniform
    over :data:`CATEGORIES`, the price uniform in the category's range (2 dp), and the base
    ``quality_score`` is ``Beta(4, 4)`` (3 dp).
    """
    if n_products < 1:
        raise ValueError(f"n_products must be >= 1, got {n_products}")
    rng = _rng(STREAM_CATALOG, seed)
    cat_idx = rng.integers(0, len(CATEGORIES), size=n_products)
    lo = np.array([c[1] for c in CATEGORIES])[cat_idx]
    hi = np.array([c[2] for c in CATEGORIES])[cat_idx]
    price = np.round(lo + (hi - lo) * rng.random(n_products), 2)
    quality = np.round(rng.beta(4.0, 4.0, size=n_products), 3)
    codes = rng.integers(0, len(_ID_ALPHABET), size=(n_products, 9))
    letters = np.empty((n_products, 10), dtype=np.uint8)
    letters[:, 0] = ord("B")
    letters[:, 1:] = _ID_BYTES[codes]
    ids = letters.view("S10").ravel().astype("U10").astype(object)
    if len(set(ids)) < n_products:
        # collisions are astronomically rare; redraw deterministically, in catalog order
        seen: set[str] = set()
        for k, value in enumerate(ids):
            while value in seen:
                value = "B" + "".join(_ID_ALPHABET[rng.integers(0, len(_ID_ALPHABET), size=9)])
            ids[k] = value
            seen.add(value)
    names = np.array([c[0] for c in CATEGORIES], dtype=object)
    return pd.DataFrame(
        {
            "product_id": ids,
            "category": names[cat_idx],
            "price": price.astype(float),
            "quality_score": quality.astype(float),
        }
    )


def normalize_catalog(products: pd.DataFrame, default_quality_score: float) -> pd.DataFrame:
    """Bring a products table read from disk to ``product_id, category, price, quality_score``.

    The id column is ``product_id``, else ``product_identifier``, else the first column whose
    lower-case name contains ``id`` (or is ``product``/``code``), else the row number. ``price``
    is required; ``category`` defaults to ``"Uncategorized"`` and ``quality_score`` to
    ``default_quality_score``. Rows keep their file order.
    """
    if products.empty:
        raise ValueError("the products table is empty")
    columns = list(products.columns)
    id_col = None
    for candidate in ("product_id", "product_identifier"):
        if candidate in columns:
            id_col = candidate
            break
    if id_col is None:
        for column in columns:
            low = str(column).lower()
            if "id" in low or low in ("product", "code"):
                id_col = column
                break
    ids = (
        products[id_col].astype(str).to_numpy(dtype=object)
        if id_col is not None
        else np.array([str(k) for k in range(len(products))], dtype=object)
    )
    if len(set(ids)) != len(ids):
        raise ValueError(f"the products table has duplicate ids in column {id_col!r}")
    if "price" not in columns:
        raise ValueError(f"the products table needs a 'price' column; columns: {columns}")
    price = pd.to_numeric(products["price"], errors="coerce").to_numpy(dtype=float)
    if not np.all(np.isfinite(price)) or np.any(price < 0):
        raise ValueError("the products table has missing, non-numeric or negative prices")
    category = (
        products["category"].astype(str).to_numpy(dtype=object)
        if "category" in columns
        else np.full(len(products), "Uncategorized", dtype=object)
    )
    if "quality_score" in columns:
        quality = pd.to_numeric(products["quality_score"], errors="coerce").to_numpy(dtype=float)
        quality = np.where(np.isfinite(quality), np.clip(quality, 0.0, 1.0), default_quality_score)
    else:
        quality = np.full(len(products), float(default_quality_score))
    return pd.DataFrame(
        {"product_id": ids, "category": category, "price": price, "quality_score": quality}
    )


# --------------------------------------------------------------------------- treatment


def assign_treatment(n_products: int, fraction: float, seed: int) -> np.ndarray:
    """Bool mask of the enriched products: ``floor(n * fraction)`` of them, chosen by ``seed``.

    The choice is a seeded permutation of catalog positions (independent of ids and hashing).
    """
    n_treated = min(n_products, math.floor(n_products * fraction + 1e-9))
    mask = np.zeros(n_products, dtype=bool)
    if n_treated:
        mask[_rng(STREAM_ASSIGNMENT, seed).permutation(n_products)[:n_treated]] = True
    return mask


def ramp(days_since_start: np.ndarray, ramp_days: int) -> np.ndarray:
    """Share of the full effect on each day: 0 before the start, ``min(1, (d+1)/ramp_days)``
    from day ``d = 0`` on (1 everywhere when ``ramp_days == 0``)."""
    d = np.asarray(days_since_start, dtype=float)
    share = np.ones_like(d) if ramp_days <= 0 else np.minimum(1.0, (d + 1.0) / float(ramp_days))
    return np.where(d >= 0, share, 0.0)


# --------------------------------------------------------------------------- metrics

_DEFAULT_STR_DTYPE = pd.Series(["x"]).dtype


def repeat_strings(values: pd.Series, positions: np.ndarray) -> pd.Series:
    """``values`` (strings) taken at ``positions``, as pandas' default string dtype.

    With pandas' Arrow-backed ``str`` dtype, a pyarrow ``take`` is several times faster than
    building the column from a Python object array; a column that already has that dtype hands
    over its Arrow data without a conversion.
    """
    if getattr(_DEFAULT_STR_DTYPE, "storage", None) == "pyarrow":
        import pyarrow as pa

        if values.dtype == _DEFAULT_STR_DTYPE and not values.hasnans:
            source = pa.array(values.array)
        else:
            source = pa.array(values.astype(str).to_numpy(dtype=object), type=pa.string())
        if isinstance(source, pa.ChunkedArray):
            source = source.combine_chunks()
        return pd.Series(source.take(pa.array(positions)), dtype=_DEFAULT_STR_DTYPE)
    plain = values.astype(str).to_numpy(dtype=object)
    return pd.Series(plain[positions], dtype=_DEFAULT_STR_DTYPE)


def _round_inplace(values: np.ndarray, decimals: int) -> np.ndarray:
    """``np.round(values, decimals)`` written over ``values`` (a temporary), and returned."""
    return np.round(values, decimals, out=values)


def simulate_panel(
    catalog: pd.DataFrame,
    start_date: pd.Timestamp,
    end_date: pd.Timestamp,
    seed: int,
    funnel: FunnelParams,
    treatment: Treatment | None = None,
) -> pd.DataFrame:
    """The daily product panel (date-major: every product in catalog order for each date).

    Columns: :data:`PANEL_COLUMNS`. Observed ``ordered_units``/``revenue``/``add_to_cart`` are the
    treated potential outcomes on rows where the product is enriched and ``date >=
    enrichment_start``, else the untreated ones.
    """
    dates = pd.date_range(pd.Timestamp(start_date), pd.Timestamp(end_date), freq="D")
    n_days, n_products = len(dates), len(catalog)
    if n_days == 0:
        raise ValueError(f"empty date window {start_date} .. {end_date}")
    shape = (n_days, n_products)
    price = catalog["price"].to_numpy(dtype=float)
    base_quality = catalog["quality_score"].to_numpy(dtype=float)

    rng = _rng(STREAM_FUNNEL, seed)
    sigma = float(funnel.traffic_sigma)
    z = rng.standard_normal(n_products)
    rel_price = np.maximum(price, 0.01) / float(funnel.reference_price)
    weight = np.exp(sigma * z - sigma * sigma / 2.0) * rel_price ** (
        -float(funnel.price_elasticity)
    )
    day_index = np.arange(n_days, dtype=float)
    dow = dates.day_of_week.to_numpy(dtype=float)
    season = 1.0 + float(funnel.weekly_amplitude) * np.cos(2.0 * np.pi * (dow - 5.5) / 7.0)
    trend = np.maximum(0.0, 1.0 + float(funnel.daily_trend) * day_index)
    lam = float(funnel.mean_impressions) * np.outer(season * trend, weight)

    active = rng.random(shape) < float(funnel.sale_prob)
    impressions = rng.poisson(lam)
    impressions[~active] = 0
    visits = rng.binomial(impressions, float(funnel.impression_to_visit_rate))
    v2c = float(funnel.visit_to_cart_rate)
    c2o = float(funnel.cart_to_order_rate)
    multi = float(funnel.multi_unit_rate)
    carts0 = rng.binomial(visits, v2c)
    orders0 = rng.binomial(carts0, c2o)
    multi0 = rng.binomial(orders0, multi)
    units0 = orders0 + multi0

    enriched = np.zeros(n_products, dtype=bool)
    quality = np.broadcast_to(base_quality, shape)
    if treatment is None:
        carts1, units1 = carts0, units0
        treated_rows = np.zeros(shape, dtype=bool)
    else:
        enriched = assign_treatment(n_products, treatment.enrichment_fraction, treatment.seed)
        start = pd.Timestamp(treatment.enrichment_start).normalize()
        days_since = ((dates - start) / pd.Timedelta(days=1)).to_numpy(dtype=float)
        share = ramp(days_since, treatment.ramp_days)  # per day
        uplift = float(treatment.effect_size) * share  # relative uplift per day
        trng = _rng(STREAM_TREATMENT, seed)
        if treatment.effect_size >= 0:
            # Each non-carting visit adds a cart with probability q: P(cart) = v2c * (1 + uplift).
            q = np.clip(v2c * uplift / max(1.0 - v2c, 1e-12), 0.0, 1.0)[:, None]
            extra_carts = trng.binomial(visits - carts0, np.broadcast_to(q, shape))
            extra_orders = trng.binomial(extra_carts, c2o)
            extra_units = extra_orders + trng.binomial(extra_orders, multi)
            carts1 = carts0 + extra_carts
            units1 = units0 + extra_units
        else:
            # Each cart survives with probability 1 + uplift; orders and multi-unit orders among
            # the removed carts follow by sampling without replacement.
            keep = np.clip(1.0 + uplift, 0.0, 1.0)[:, None]
            carts1 = trng.binomial(carts0, np.broadcast_to(keep, shape))
            removed_orders = trng.hypergeometric(orders0, carts0 - orders0, carts0 - carts1)
            removed_multi = trng.hypergeometric(multi0, orders0 - multi0, removed_orders)
            units1 = units0 - removed_orders - removed_multi
        treated_rows = enriched[None, :] & (days_since >= 0)[:, None]
        if treatment.boosts_quality and treatment.quality_boost:
            boosted = np.clip(base_quality + float(treatment.quality_boost), 0.0, 1.0)
            quality = np.where(treated_rows, boosted[None, :], quality)

    revenue0 = _round_inplace(units0 * price[None, :], 2)
    revenue1 = _round_inplace(units1 * price[None, :], 2)
    units = np.where(treated_rows, units1, units0)
    carts = np.where(treated_rows, carts1, carts0)
    revenue = np.where(treated_rows, revenue1, revenue0)

    positions = np.tile(np.arange(n_products), n_days)
    # Every array below is new (``np.where``/``np.round``/draws/``astype`` results, never one
    # object for two columns) and owned by the frame alone, so it is not copied again
    # (``copy=False``; ``astype(..., copy=False)`` where the dtype is already right).
    frame = pd.DataFrame(
        {
            "product_id": repeat_strings(catalog["product_id"], positions),
            "date": np.repeat(dates.to_numpy().astype("datetime64[ns]"), n_products),
            "category": repeat_strings(catalog["category"], positions),
            "price": np.tile(price, n_days),
            "impressions": impressions.ravel().astype(np.int64, copy=False),
            "visits": visits.ravel().astype(np.int64, copy=False),
            "add_to_cart": carts.ravel().astype(np.int64, copy=False),
            "ordered_units": units.ravel().astype(np.int64, copy=False),
            "revenue": revenue.ravel().astype(float, copy=False),
            "quality_score": np.round(quality, 6).ravel(),
            "enriched": np.tile(enriched, n_days),
            "ordered_units_y0": units0.ravel().astype(float),
            "ordered_units_y1": units1.ravel().astype(float),
            "revenue_y0": revenue0.ravel().astype(float, copy=False),
            "revenue_y1": revenue1.ravel().astype(float, copy=False),
        },
        copy=False,
    )
    return frame
