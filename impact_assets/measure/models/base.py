"""The interface every measurement model implements, and the model registry.

A model turns a (transformed) DataFrame plus its validated parameters into a :class:`ModelFit`.
The Measure component owns everything around it: config loading, data, the job directory, the
``impact_results.json`` envelope (built from ``model_params``/``impact_estimates``/
``model_summary``) and the ``MeasureResult``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pandas as pd

from impact_assets.contracts import MIN_SAMPLE_SIZE


class ModelError(ValueError):
    """Bad model parameters or data. Messages name the model and the parameter or column."""


@dataclass
class ModelFit:
    """What one fitted model reports.

    ``ci_lower``/``ci_upper``/``p_value``/``standard_error`` are ``None`` when the method has no
    such quantity (never a zero-width interval, never ``p = 0``).
    ``model_params``, ``impact_estimates`` and ``model_summary`` carry the upstream per-model keys
    (measure-spec §3.2) so upstream readers can read our envelope; more keys may be added.
    ``diagnostics`` holds the standardized diagnostic keys that EVALUATE reads (see
    ``DIAGNOSTIC_KEYS``). ``artifacts`` are written as ``{model_type}__{name}.parquet``.
    """

    model_type: str
    effect_estimate: float
    ci_lower: float | None
    ci_upper: float | None
    p_value: float | None
    standard_error: float | None
    estimand: str
    n_observations: int
    model_params: dict[str, Any] = field(default_factory=dict)
    impact_estimates: dict[str, Any] = field(default_factory=dict)
    model_summary: dict[str, Any] = field(default_factory=dict)
    diagnostics: dict[str, Any] = field(default_factory=dict)
    artifacts: dict[str, pd.DataFrame] = field(default_factory=dict)


#: Standardized diagnostics (all optional; a model fills those that apply):
#: ``n_observations`` (rows used), ``r_squared``, ``n_pre_periods``, ``n_post_periods``,
#: ``pre_period_rmse`` and ``pre_period_rmse_relative`` (synthetic control: RMSE of the
#: synthetic vs treated pre-period trajectory, absolute and divided by the mean absolute treated
#: pre-period outcome), ``n_donors``, ``n_treated_units``, ``max_abs_smd_before`` and
#: ``max_abs_smd_after`` (matching/subclassification covariate balance), ``n_unmatched_treated``
#: (dropped by the caliper), ``n_strata``, ``n_strata_dropped``, ``share_dropped`` (fraction of
#: units in dropped strata), ``ci_method`` (text), ``n_placebos`` (synthetic control).
#: Time series: ``period`` (the period of the data: day, week, month, quarter, year, period),
#: ``series`` (one series, the unit selected, or the aggregation), ``durbin_watson``,
#: ``ljung_box_lags``/``ljung_box_stat``/``ljung_box_p_value`` (residual autocorrelation),
#: ``pre_period_trend_r_squared`` (fit of the pre-period trend alone). Synthetic control:
#: ``rmspe_ratio`` (treated post/pre RMSPE), ``p_value_method``, ``n_placebos_good_fit`` and
#: ``placebo_fit_cutoff`` (placebos with pre-MSPE <= cutoff x the treated unit's).
DIAGNOSTIC_KEYS = (
    "n_observations",
    "r_squared",
    "n_pre_periods",
    "n_post_periods",
    "pre_period_rmse",
    "pre_period_rmse_relative",
    "n_donors",
    "n_treated_units",
    "max_abs_smd_before",
    "max_abs_smd_after",
    "n_unmatched_treated",
    "n_strata",
    "n_strata_dropped",
    "share_dropped",
    "ci_method",
    "n_placebos",
    "period",
    "series",
    "durbin_watson",
    "ljung_box_lags",
    "ljung_box_stat",
    "ljung_box_p_value",
    "pre_period_trend_r_squared",
    "rmspe_ratio",
    "p_value_method",
    "n_placebos_good_fit",
    "placebo_fit_cutoff",
)


class Model(ABC):
    """A measurement model. Stateless: ``fit`` takes everything it needs.

    Sample size and minimums (``docs/measure.md``, "Sample size per model"): MEASURE calls
    :meth:`check_minimum` and :meth:`sample_size` on the transformed data before :meth:`fit`.
    ``check_minimum`` enforces the model's *own* minimum in its own terms (dates per segment,
    donors and pre-periods, treated and control units); ``sample_size`` is what
    ``MeasureResult.sample_size`` reports, which MEASURE then compares with the run's
    ``min_sample_size`` (the contract's 30 unless the measure config or the manifest sets a
    lower one for a small-panel design).
    """

    #: The ``MEASUREMENT.MODEL`` name and ``model_type`` it reports.
    name: ClassVar[str]

    #: What :meth:`sample_size` counts, in words (``diagnostics['sample_size_unit']``, messages
    #: and docs). ``None`` (the default :meth:`sample_size`): "products" when the data have a
    #: ``product_id`` column, else "rows".
    sample_size_unit: ClassVar[str | None] = None

    #: The ``MEASUREMENT.PARAMS`` keys the model reads. When set (not ``None``), a key the user
    #: wrote in the measure config that is not listed is refused by
    #: :func:`impact_assets.measure.config.resolve_model` (defaults of other models are not
    #: user-written and are never refused). ``None``: no such check (the historical behaviour).
    accepted_params: ClassVar[frozenset[str] | None] = None

    @abstractmethod
    def validate_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Check and normalize the model's parameters before any data are read.

        ``params`` is the merged ``MEASUREMENT.PARAMS``; keys of other models may be present and
        are ignored. Raise :class:`ModelError` naming the model and the parameter.
        """

    @abstractmethod
    def fit(self, data: pd.DataFrame, params: Mapping[str, Any]) -> ModelFit:
        """Fit on ``data`` with validated ``params``. Raise :class:`ModelError` for bad data."""

    def sample_size(self, data: pd.DataFrame, params: Mapping[str, Any]) -> int:
        """The number of independent observations the model's inference rests on.

        ``data`` are the transformed data ``fit`` will get, ``params`` the validated parameters.
        Default (models that do not override it): distinct ``product_id`` values, else rows,
        as MEASURE counted before per-model sample sizes existed.
        """
        if "product_id" in data.columns:
            return int(data["product_id"].nunique())
        return len(data)

    def check_minimum(self, data: pd.DataFrame, params: Mapping[str, Any]) -> None:
        """Raise :class:`ModelError` when ``data`` fall short of the model's own minimum.

        The message names the model, the field (column or parameter) and the number found,
        e.g. ``"interrupted_time_series: column 'date': 2 pre-intervention periods found; at
        least 3 are needed"``; MEASURE adds the file and the initiative. Default: at least
        :data:`~impact_assets.contracts.MIN_SAMPLE_SIZE` of :meth:`sample_size` (the generic
        gate that every model had before).
        """
        n = self.sample_size(data, params)
        if n < MIN_SAMPLE_SIZE:
            where = (
                f"column 'product_id': {n} distinct values"
                if "product_id" in data.columns
                else f"data: {n} rows"
            )
            raise ModelError(
                f"{self.name}: {where} found; at least {MIN_SAMPLE_SIZE} units are needed"
            )

    def true_effect(self, data: pd.DataFrame, params: Mapping[str, Any]) -> float | None:
        """The true value of this model's estimand when ``data`` carry potential outcomes.

        Simulated data carry ``{metric}_y0`` and ``{metric}_y1`` (untreated and treated potential
        outcomes, per row, after the transform). Return ``None`` when they are absent.
        """
        return None

    def fit_and_true_effect(
        self, data: pd.DataFrame, params: Mapping[str, Any], *, simulated: bool
    ) -> tuple[ModelFit, float | None]:
        """``fit``, then (for simulated data) ``true_effect``: what MEASURE runs.

        The result is exactly ``(self.fit(data, params), self.true_effect(data, params) if
        simulated else None)``; models whose two steps prepare the same things (units, panels)
        override it to prepare them once.
        """
        fit = self.fit(data, params)
        return fit, (self.true_effect(data, params) if simulated else None)


MODEL_REGISTRY: dict[str, type[Model]] = {}


def register_model(cls: type[Model]) -> type[Model]:
    """Class decorator adding a model to :data:`MODEL_REGISTRY` under ``cls.name``."""
    MODEL_REGISTRY[cls.name] = cls
    return cls


def get_model(name: str) -> Model:
    """Instantiate the model registered as ``name``; unknown names list the available ones."""
    from impact_assets.measure import models  # noqa: F401  (registers the built-ins)

    if name not in MODEL_REGISTRY:
        raise ModelError(f"Unknown model {name!r}. Available: {sorted(MODEL_REGISTRY)}")
    return MODEL_REGISTRY[name]()
