"""``metrics_approximation``: a deterministic response function, no statistics.

For each product, ``delta = metric_after - metric_before`` and the response function maps
``(delta, baseline, row_attributes, **RESPONSE.PARAMS)`` to an impact; the headline is the sum
over products (rounded to cents, as upstream), or with ``aggregate: mean`` the mean per product. The built-in ``linear`` function returns
``coefficient * delta * baseline`` (coefficient default 1.0; the config default is 0.5).

There is **no sampling uncertainty** in this calculation: ``ci_lower``, ``ci_upper``,
``p_value`` and ``standard_error`` are ``None`` (never a zero-width interval or ``p = 0``). A
response function may return a dict (e.g. ``impact``/``lower``/``upper`` from coefficient
bounds); every key is summed into ``impact_estimates``, and ``impact`` is the headline, but such
scenario bounds are not a confidence interval and are not reported as one.

Missing values: rows with a NaN in the before, after or baseline column are dropped and listed
in the ``filtered_products`` artifact (upstream behaviour, now also counted in
``diagnostics['n_filtered']``). If no row is left the fit fails (upstream returned 0).

There is no minimum number of products (nothing is estimated); the ``MeasureResult`` contract
still requires ``sample_size >= 30`` downstream.

Truth (simulated data). When the prepared data carry the potential outcomes of the outcome metric
(``{outcome_metric}_y0``/``_y1``, default ``revenue``, summed per product over the after period
by ``prepare_simulator_for_approximation``), ``true_effect`` is the same aggregate (sum or mean
per product) of each product's realised effect ``enriched * (y1 - y0)``, rescaled to the length
of the baseline period (``* n_days_before / n_days_after`` when both counts are present), because
the approximation ``coefficient * delta * baseline_sales`` is a change over a period as long as
the baseline. It is therefore in the units of the estimate, and ``estimate - truth`` is the error
of the assumed response function. Without potential outcomes it is ``None``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from impact_assets.measure.models._data import require_columns
from impact_assets.measure.models._params import get_choice, get_str, param_error
from impact_assets.measure.models.base import Model, ModelError, ModelFit, register_model

NAME = "metrics_approximation"
#: ``sum`` (upstream): the headline is the catalog total, which grows with the number of products;
#: ``mean``: the impact per product, comparable between a pilot and a larger scale phase.
AGGREGATES = ("sum", "mean")

ResponseFunction = Callable[..., float | Mapping[str, float]]


def linear_response(
    delta: float, baseline: float, row_attributes: Mapping[str, Any] | None = None, **params: Any
) -> float:
    """``coefficient * delta * baseline`` (``coefficient`` defaults to 1.0)."""
    return float(params.get("coefficient", 1.0)) * delta * baseline


#: Argument names of :func:`linear_response` a ``RESPONSE.PARAMS`` key would collide with.
_LINEAR_ARGUMENTS = frozenset({"delta", "baseline", "row_attributes"})

#: Registered response functions; extend with :func:`register_response_function`.
RESPONSE_FUNCTIONS: dict[str, ResponseFunction] = {"linear": linear_response}


def register_response_function(name: str, function: ResponseFunction) -> None:
    """Register ``function`` under ``name``; it must be callable."""
    if not callable(function):
        raise ModelError(f"{NAME}: response function {name!r} must be callable")
    RESPONSE_FUNCTIONS[name] = function


@register_model
class MetricsApproximation(Model):
    """Response-function approximation; see the module docstring."""

    name = NAME

    def validate_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        response = params.get("RESPONSE", {"FUNCTION": "linear", "PARAMS": {"coefficient": 0.5}})
        if not isinstance(response, Mapping):
            raise param_error(NAME, "RESPONSE", "must be a mapping with a FUNCTION key", response)
        function = response.get("FUNCTION")
        if not isinstance(function, str) or not function:
            raise ModelError(f"{NAME}: parameter 'RESPONSE.FUNCTION' is required")
        if function not in RESPONSE_FUNCTIONS:
            raise ModelError(
                f"{NAME}: parameter 'RESPONSE.FUNCTION' names unknown response function "
                f"{function!r}. Available: {sorted(RESPONSE_FUNCTIONS)}"
            )
        response_params = response.get("PARAMS") or {}
        if not isinstance(response_params, Mapping):
            raise param_error(NAME, "RESPONSE.PARAMS", "must be a mapping", response_params)
        return {
            "metric_before_column": get_str(
                params, "metric_before_column", NAME, default="quality_before"
            ),
            "metric_after_column": get_str(
                params, "metric_after_column", NAME, default="quality_after"
            ),
            "baseline_column": get_str(params, "baseline_column", NAME, default="baseline_sales"),
            "response_function": function,
            "response_params": dict(response_params),
            "aggregate": get_choice(params, "aggregate", NAME, choices=AGGREGATES, default="sum"),
            "outcome_metric": get_str(params, "outcome_metric", NAME, default="revenue"),
        }

    def fit(self, data: pd.DataFrame, params: Mapping[str, Any]) -> ModelFit:
        before_col = params["metric_before_column"]
        after_col = params["metric_after_column"]
        baseline_col = params["baseline_column"]
        columns = [before_col, after_col, baseline_col]
        require_columns(data, columns, NAME)
        for column in columns:
            if not pd.api.types.is_numeric_dtype(data[column]):
                raise ModelError(f"{NAME}: column {column!r} must be numeric")
        incomplete = data[columns].isna().any(axis=1).to_numpy()
        ids = (
            data["product_id"].astype(str)
            if "product_id" in data.columns
            else pd.Series(data.index.astype(str), index=data.index)
        )
        rows = data.loc[~incomplete]
        if rows.empty:
            raise ModelError(
                f"{NAME}: every row has a missing value in {columns}; nothing to approximate"
            )
        function = RESPONSE_FUNCTIONS[params["response_function"]]
        response_params = params["response_params"]
        deltas = (rows[after_col] - rows[before_col]).to_numpy(float)
        baselines = rows[baseline_col].to_numpy(float)

        def misfit(err: TypeError) -> ModelError:
            return ModelError(
                f"{NAME}: parameter 'RESPONSE.PARAMS' does not fit response function "
                f"{params['response_function']!r}: {err}"
            )

        if function is linear_response and not _LINEAR_ARGUMENTS & set(response_params):
            # the built-in linear response on whole columns: the same products, in the same
            # order ((coefficient * delta) * baseline), as calling it row by row
            try:
                coefficient = float(response_params.get("coefficient", 1.0))
            except TypeError as err:
                raise misfit(err) from err
            table = pd.DataFrame({"impact": coefficient * deltas * baselines})
        else:
            results: list[dict[str, float]] = []
            for delta, baseline, attributes in zip(
                deltas, baselines, rows.to_dict(orient="records"), strict=True
            ):
                try:
                    value = function(delta, baseline, row_attributes=attributes, **response_params)
                except TypeError as err:
                    raise misfit(err) from err
                result = dict(value) if isinstance(value, Mapping) else {"impact": value}
                results.append({k: float(v) for k, v in result.items()})
            table = pd.DataFrame(results)
        if "impact" not in table.columns:
            raise ModelError(
                f"{NAME}: response function {params['response_function']!r} must return a number "
                "or a mapping with an 'impact' key"
            )
        per_product = pd.DataFrame(
            {
                "product_id": ids.loc[~incomplete].to_numpy(),
                "delta_metric": np.round(deltas, 4),
                "baseline_outcome": np.round(baselines, 2),
            }
        )
        for key in table.columns:
            per_product[key] = table[key].round(2).to_numpy()
        totals = {key: round(float(table[key].sum()), 2) for key in table.columns}
        artifacts = {"product_level_impacts": per_product}
        n_filtered = int(incomplete.sum())
        if n_filtered:
            artifacts["filtered_products"] = pd.DataFrame(
                {"product_id": ids.loc[incomplete].to_numpy()}
            )
        n = len(rows)
        aggregate = params.get("aggregate", "sum")
        headline = totals["impact"] if aggregate == "sum" else float(table["impact"].mean())
        return ModelFit(
            model_type=NAME,
            effect_estimate=headline,
            ci_lower=None,
            ci_upper=None,
            p_value=None,
            standard_error=None,
            estimand=(
                "approximated total impact (deterministic response function)"
                if aggregate == "sum"
                else "approximated impact per product (deterministic response function)"
            ),
            n_observations=n,
            model_params={
                "response_function": params["response_function"],
                "response_params": dict(response_params),
            },
            impact_estimates=totals,
            model_summary={"n_products": n},
            diagnostics={
                "n_observations": n,
                "n_filtered": n_filtered,
                "ci_method": "none: deterministic response function, no sampling uncertainty",
            },
            artifacts=artifacts,
        )

    def true_effect(self, data: pd.DataFrame, params: Mapping[str, Any]) -> float | None:
        """The realised effect in the estimate's units (module docstring); ``None`` without
        potential outcomes."""
        metric = params.get("outcome_metric", "revenue")
        y0_col, y1_col = f"{metric}_y0", f"{metric}_y1"
        if y0_col not in data.columns or y1_col not in data.columns:
            return None
        columns = [
            params["metric_before_column"],
            params["metric_after_column"],
            params["baseline_column"],
        ]
        rows = data.loc[~data[columns].isna().any(axis=1).to_numpy()]
        if rows.empty:
            return None
        effect = (rows[y1_col] - rows[y0_col]).to_numpy(float)
        if "enriched" in rows.columns:
            effect = effect * rows["enriched"].to_numpy(bool)
        if "n_days_before" in rows.columns and "n_days_after" in rows.columns:
            before = rows["n_days_before"].to_numpy(float)
            after = rows["n_days_after"].to_numpy(float)
            ratio = np.divide(before, after, out=np.ones_like(before), where=after > 0)
            effect = effect * ratio
        if params.get("aggregate", "sum") == "sum":
            return round(float(effect.sum()), 2)
        return float(effect.mean())
