"""Defaults of the measure config (the upstream ``config_defaults.yaml``, measure-spec §2.2).

A user config is deep-merged over :data:`MEASURE_DEFAULTS`: nested dicts merge key by key, any
other value (lists included) replaces the default wholesale. ``None`` marks a field that is
required in context (``start_date``/``end_date`` for the simulator, ``path`` for a file source,
the model's required parameters).

Differences from upstream (all documented in ``docs/measure.md``):

* ``DATA.SOURCE.CONFIG`` gains ``n_products`` (catalog size of a simulated pilot when no products
  file exists) and ``scale_path`` (the data file a ``file`` source reads in the scale phase).
* ``DATA.ENRICHMENT`` has no default section, but when one is given its ``PARAMS`` are merged over
  :data:`ENRICHMENT_DEFAULTS`, where the upstream *hidden* simulator defaults ``effect_size`` and
  ``ramp_days`` are explicit (and ``ramp_days`` defaults to 0: the effect starts on
  ``enrichment_start`` itself, so a one-day window at the start date has a true effect).
* ``CATALOG_SIMULATOR`` is honoured (upstream ignored user overrides) and gains the parameters of
  our own data-generating process.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

#: Catalog size of a simulated pilot when no products file exists and no sample_size is given.
DEFAULT_N_PRODUCTS = 100

#: The one set of defaults of ``nearest_neighbour_matching``: the config path (merged into
#: ``MEASUREMENT.PARAMS`` below), a direct ``validate_params`` call and the benchmarks all read
#: it. Abadie & Imbens (2006) matching: one neighbour with replacement, no caliper (a caliper
#: changes the estimand), bias-corrected (Abadie & Imbens 2011), their variance.
MATCHING_DEFAULTS: dict[str, Any] = {
    "caliper": None,
    "replace": True,
    "ratio": 1,
    "estimand": "att",
    "bias_correction": True,
    "distance": "standardized",
    "se_method": "abadie_imbens",
}

#: The one set of defaults of ``subclassification`` (same sharing as ``MATCHING_DEFAULTS``).
SUBCLASSIFICATION_DEFAULTS: dict[str, Any] = {
    "n_strata": 5,
    "estimand": "att",
    "stratify_on": "propensity",
    "regression_adjustment": True,
    "trim": True,
}

MEASURE_DEFAULTS: dict[str, Any] = {
    "DATA": {
        "SOURCE": {
            "type": "simulator",
            "CONFIG": {
                "mode": "rule",
                "seed": 42,
                "path": None,
                "scale_path": None,
                "start_date": None,
                "end_date": None,
                "product_id_column": "product_id",
                "date_column": "date",
                "n_products": DEFAULT_N_PRODUCTS,
            },
        },
        "TRANSFORM": {"FUNCTION": "passthrough", "PARAMS": {}},
    },
    "MEASUREMENT": {
        "MODEL": "interrupted_time_series",
        "PARAMS": {
            "dependent_variable": "revenue",
            # interrupted_time_series
            "intervention_date": None,
            "order": [1, 0, 0],
            "seasonal_order": [0, 0, 0, 0],
            # subclassification (+ nearest_neighbour_matching)
            **SUBCLASSIFICATION_DEFAULTS,
            "treatment_column": None,
            "covariate_columns": None,
            # nearest_neighbour_matching
            **MATCHING_DEFAULTS,
            # upstream matching keys: shuffle and n_jobs are accepted and ignored (matching here
            # is deterministic); random_state seeds synthetic_control's placebos
            "shuffle": True,
            "random_state": None,
            "n_jobs": 1,
            # experiment
            "formula": None,
            # synthetic_control
            "treatment_time": None,
            "treated_unit": None,
            "unit_column": "unit_id",
            "outcome_column": None,
            "time_column": "date",
            # optim_method / optim_initial (upstream: Nelder-Mead / equal) are the V search of
            # synthetic_control with `predictors`; they have no default here, so that giving
            # them without predictors (where they would be ignored) is refused
            # metrics_approximation
            "metric_before_column": "quality_before",
            "metric_after_column": "quality_after",
            "baseline_column": "baseline_sales",
            "RESPONSE": {"FUNCTION": "linear", "PARAMS": {"coefficient": 0.5}},
        },
    },
    "OUTPUT": {"PATH": "output"},
    "CATALOG_SIMULATOR": {
        # upstream funnel parameters (spec §2.2), honoured here
        "sale_prob": 0.7,
        "impression_to_visit_rate": 0.15,
        "visit_to_cart_rate": 0.25,
        "cart_to_order_rate": 0.80,
        "default_quality_score": 0.5,
        # our data-generating process (docs/measure.md, "Simulator")
        "mean_impressions": 100.0,
        "traffic_sigma": 0.5,
        "price_elasticity": 0.5,
        "reference_price": 100.0,
        "weekly_amplitude": 0.1,
        "daily_trend": 0.0,
        "multi_unit_rate": 0.3,
    },
}

#: Merged under a user's ``DATA.ENRICHMENT.PARAMS`` (only when ENRICHMENT is present).
ENRICHMENT_DEFAULTS: dict[str, Any] = {
    "enrichment_fraction": 0.3,
    "enrichment_start": None,  # required
    "effect_size": 0.5,
    "ramp_days": 0,
    "quality_boost": 0.0,
    "seed": 42,
    "backend": "mock",
    "prompt_path": None,
}


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``override`` over ``base``: dicts key by key, anything else replaces wholesale.

    Neither input is modified; the result shares no mutable containers with them.
    """
    return _merge_into(copy.deepcopy(dict(base)), override)


def _merge_into(merged: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``deep_merge`` on a ``merged`` that is already a private deep copy of the base (so the
    nested base mappings are not copied again at every level)."""
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge_into(dict(merged[key]), value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def defaults() -> dict[str, Any]:
    """A fresh deep copy of :data:`MEASURE_DEFAULTS`."""
    return copy.deepcopy(MEASURE_DEFAULTS)
