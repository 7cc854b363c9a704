"""Empirical-Bayes shrinkage of pilot returns across the portfolio (pure functions).

Every initiative's pilot return is a noisy estimate. Funding the largest estimates and reporting
them as forecasts overstates what the funded ones return (the optimizer's curse, Smith & Winkler
2006). The remedy is to judge each estimate against what is typical across the portfolio: a
normal prior over the true returns, estimated from all initiatives (empirical Bayes; Efron &
Morris 1975, Efron 2010), and each initiative's posterior.

Units. Initiatives differ in size, so the exchangeable quantity is the **return per unit of
cost**, ``r_i = return_median_i / cost_i`` (money returned per unit of budget), with standard
error ``s_i = se_i / cost_i``. Posterior money returns are ``cost_i`` times the posterior of
``r_i``.

Standard errors (``standard_error_of``), in money (times ``value_per_unit``):

1. the measurement's own standard error when EVALUATE passed it through
   (``details.standard_error``), else
2. the confidence interval's half-width divided by ``z`` of the interval level (1.959964 for
   95%), using the wider side for an asymmetric interval, else
3. **no interval** (``metrics_approximation``, or any collapsed or zero-width interval): the
   documented method-level prior uncertainty ``s_i = no_interval_se_multiple * median_j s_j``,
   a multiple of the median standard error of the portfolio's measured initiatives (those with
   an interval; without any, of the median ``|r_j|`` of all). The default
   ``no_interval_se_multiple = 2.0`` says that an estimate resting on an assumed response
   function is half as informative as a typical pilot measurement (its error variance is four
   times a typical pilot's): it is not a measurement of this initiative's effect, and the
   assumed coefficient is off by an unknown amount in every application. The uncertainty does
   not depend on the estimate itself (an estimate is not more reliable for being small). Such an
   estimate is never treated as certain.

Prior, over a group of ``n >= MIN_PRIOR_GROUP`` (10) initiatives: the random-effects estimator of meta-analysis
(DerSimonian & Laird 1986), a method of moments weighted by precision, so that a few imprecise
estimates (approximations with their prior uncertainty) do not swamp it::

    w_i   = 1 / s_i^2,   mu_w = sum(w r) / sum(w),   Q = sum(w (r - mu_w)^2)
    tau2  = max((Q - (n - 1)) / (sum(w) - sum(w^2) / sum(w)),  TAU2_FLOOR * median(s^2))
    mu    = sum(w* r) / sum(w*),   w*_i = 1 / (s_i^2 + tau2),   var(mu_hat) = 1 / sum(w*)

The floor (1% of the median squared SE) keeps ``tau2`` off the boundary 0. ``prior="pooled"``
uses one group; ``prior="method"`` one per ``model_type`` that has at least
``MIN_METHOD_GROUP`` initiatives, the pooled prior for the rest. With fewer than 10 initiatives
no prior is estimated: the posterior is the estimate with its own standard error (flat prior, no
shrinkage, reliability 1), still never a certainty.

Posterior (normal-normal, with the uncertainty of the estimated mean added, Morris 1983)::

    B_i   = tau2 / (tau2 + s_i^2)                       (reliability)
    m_i   = mu + B_i (r_i - mu)                         (posterior mean)
    v_i   = B_i s_i^2 + (1 - B_i)^2 var(mu_hat)
    scenarios: worst/best = m_i -/+ z sqrt(v_i)          (central interval at interval_level)

``v_i > 0`` always: no posterior is a certainty.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

#: Prior groupings.
PRIORS = ("pooled", "method")
#: ``prior="method"``: a method needs this many initiatives for a prior of its own.
MIN_METHOD_GROUP = 10
#: Fewest initiatives from which a prior is estimated: with fewer, the between-initiative
#: variance (and with it the pull towards the mean) is too poorly determined (the random-effects
#: literature's caution for fewer than about 10 studies, e.g. IntHout, Ioannidis & Borm 2014), and
#: the estimates are used as they are (flat prior, no shrinkage).
MIN_PRIOR_GROUP = 10
#: Default prior uncertainty of an estimate without an interval, as a multiple of the portfolio's
#: median standard error.
NO_INTERVAL_SE_MULTIPLE = 2.0
#: Smallest prior variance, relative to the median squared standard error: a boundary estimate
#: ``tau2 = 0`` would make every posterior mean the same return per unit of cost (every portfolio
#: that spends the same budget tied) and claim more than the data show (Chung et al. 2013 on
#: boundary estimates of the between-group variance).
TAU2_FLOOR = 0.01
#: Default level of the intervals read (CI -> SE) and written (posterior scenarios).
INTERVAL_LEVEL = 0.95


class ShrinkageConfigError(ValueError):
    """Bad shrinkage parameters; the message names the field."""


def z_of(level: float) -> float:
    """Two-sided normal quantile of a central interval at ``level`` (0.95 -> 1.959964)."""
    return NormalDist().inv_cdf(0.5 + level / 2.0)


def check_params(prior: Any, no_interval_se_multiple: Any, interval_level: Any) -> None:
    """Validate the shrinkage parameters (raise :class:`ShrinkageConfigError`)."""
    if prior not in PRIORS:
        raise ShrinkageConfigError(
            f"ALLOCATE config: field 'prior': must be one of {list(PRIORS)}, got {prior!r}"
        )
    for name, value, low, high in (
        ("no_interval_se_multiple", no_interval_se_multiple, 0.0, math.inf),
        ("interval_level", interval_level, 0.0, 1.0),
    ):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ShrinkageConfigError(
                f"ALLOCATE config: field {name!r}: must be a number, got {value!r}"
            )
        if not (low < value < high) or not math.isfinite(value):
            raise ShrinkageConfigError(
                f"ALLOCATE config: field {name!r}: must be > {low:g}"
                + (f" and < {high:g}" if math.isfinite(high) else "")
                + f", got {value!r}"
            )


@dataclass(frozen=True)
class Posterior:
    """One initiative's shrinkage, per unit of cost and in money."""

    initiative_id: str
    method: str
    cost: float
    raw_return: float
    se: float
    se_source: str
    prior_group: str
    reliability: float
    mean: float
    sd: float
    lower: float
    upper: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "raw_return": self.raw_return,
            "standard_error": self.se,
            "se_source": self.se_source,
            "prior_group": self.prior_group,
            "reliability": self.reliability,
            "posterior_mean": self.mean,
            "posterior_sd": self.sd,
            "posterior_interval": [self.lower, self.upper],
        }


@dataclass(frozen=True)
class Prior:
    """A normal prior over returns per unit of cost, and how it was estimated."""

    mu: float | None
    tau2: float | None
    var_mu: float
    n: int
    tau2_estimate: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "mu": self.mu,
            "tau2": self.tau2,
            "tau": _sqrt(self.tau2),
            "tau2_estimate": self.tau2_estimate,
            "var_mu": self.var_mu,
            "n": self.n,
        }


def _sqrt(value: float | None) -> float | None:
    return None if value is None else math.sqrt(value)


def _get(item: Mapping[str, Any], key: str, default: Any = None) -> Any:
    value = item.get(key, default)
    return default if value is None else value


def standard_error_of(item: Mapping[str, Any], z: float) -> tuple[float | None, str]:
    """The money standard error of one EVALUATE result and where it came from.

    Returns ``(None, "none")`` when the result has no interval and no standard error.
    """
    details = _get(item, "details", {})
    vpu = float(_get(item, "value_per_unit", 1.0))
    se = details.get("standard_error") if isinstance(details, Mapping) else None
    if isinstance(se, int | float) and not isinstance(se, bool) and math.isfinite(se) and se > 0:
        return float(se) * vpu, "standard_error"
    best, median, worst = (float(item[k]) for k in ("return_best", "return_median", "return_worst"))
    half = max(best - median, median - worst)
    if not item.get("returns_collapsed", False) and half > 0:
        return half / z, "confidence_interval"
    return None, "none"


def estimate_prior(r: np.ndarray, s2: np.ndarray) -> Prior:
    """Random-effects normal prior (DerSimonian & Laird 1986), see the module docstring."""
    n = len(r)
    if n < MIN_PRIOR_GROUP:
        return Prior(None, None, 0.0, n)
    w = 1.0 / s2
    mu_fixed = float(np.sum(w * r) / np.sum(w))
    q = float(np.sum(w * (r - mu_fixed) ** 2))
    denominator = float(np.sum(w) - np.sum(w**2) / np.sum(w))
    tau2_dl = max(0.0, (q - (n - 1)) / denominator) if denominator > 0 else 0.0
    tau2 = max(tau2_dl, TAU2_FLOOR * float(np.median(s2)))
    w_star = 1.0 / (s2 + tau2)
    mu = float(np.sum(w_star * r) / np.sum(w_star))
    return Prior(mu, tau2, 1.0 / float(np.sum(w_star)), n, tau2_dl)


def shrink(
    initiatives: Sequence[Mapping[str, Any]],
    *,
    prior: str = "pooled",
    no_interval_se_multiple: float = NO_INTERVAL_SE_MULTIPLE,
    interval_level: float = INTERVAL_LEVEL,
) -> tuple[list[Posterior], dict[str, Prior]]:
    """Empirical-Bayes posteriors of every initiative's return (module docstring).

    ``initiatives`` are EVALUATE result dicts (``initiative_id``, ``cost``, ``return_*``,
    optionally ``model_type``, ``value_per_unit``, ``returns_collapsed`` and
    ``details.standard_error``). Returns the posteriors in input order and the priors by group
    (``"pooled"`` and, with ``prior="method"``, each method that has its own).
    """
    check_params(prior, no_interval_se_multiple, interval_level)
    z = z_of(interval_level)
    n = len(initiatives)
    if n == 0:
        return [], {}
    # computed in canonical (id) order, so that the input order cannot change a float
    order = sorted(range(n), key=lambda k: str(initiatives[k]["initiative_id"]))
    posteriors, priors = _shrink([initiatives[k] for k in order], prior, no_interval_se_multiple, z)
    by_position = dict(zip(order, posteriors, strict=True))
    return [by_position[k] for k in range(n)], priors


def _shrink(
    initiatives: Sequence[Mapping[str, Any]], prior: str, no_interval_se_multiple: float, z: float
) -> tuple[list[Posterior], dict[str, Prior]]:
    n = len(initiatives)
    cost = np.array([float(i["cost"]) for i in initiatives])
    r = np.array([float(i["return_median"]) for i in initiatives]) / cost
    methods = [str(_get(i, "model_type", "unknown")) for i in initiatives]
    se_money = [standard_error_of(i, z) for i in initiatives]
    measured = [se / cost[k] for k, (se, _) in enumerate(se_money) if se is not None]
    typical = float(np.median(measured)) if measured else float(np.median(np.abs(r)))
    if not typical > 0:
        typical = 1e-12  # a portfolio of zeros: still not certain
    s = np.empty(n)
    sources = []
    for k, (se, source) in enumerate(se_money):
        if se is None:
            s[k] = no_interval_se_multiple * typical
            sources.append("no interval: prior uncertainty")
        else:
            s[k] = se / cost[k]
            sources.append(source)
    s2 = s**2
    priors = {"pooled": estimate_prior(r, s2)}
    group_of = ["pooled"] * n
    if prior == "method":
        for method in sorted(set(methods)):
            rows = [k for k in range(n) if methods[k] == method]
            if len(rows) >= MIN_METHOD_GROUP:
                priors[method] = estimate_prior(r[rows], s2[rows])
                for k in rows:
                    group_of[k] = method
    out = []
    for k, item in enumerate(initiatives):
        p = priors[group_of[k]]
        if p.mu is None:
            reliability, mean, var = 1.0, float(r[k]), float(s2[k])
        else:
            reliability = p.tau2 / (p.tau2 + s2[k]) if p.tau2 + s2[k] > 0 else 1.0
            mean = p.mu + reliability * (float(r[k]) - p.mu)
            var = reliability * float(s2[k]) + (1.0 - reliability) ** 2 * p.var_mu
        sd = math.sqrt(max(var, 0.0))
        c = float(cost[k])
        out.append(
            Posterior(
                initiative_id=str(item["initiative_id"]),
                method=methods[k],
                cost=c,
                raw_return=float(item["return_median"]),
                se=float(s[k]) * c,
                se_source=sources[k],
                prior_group=group_of[k],
                reliability=float(reliability),
                mean=mean * c,
                sd=sd * c,
                lower=(mean - z * sd) * c,
                upper=(mean + z * sd) * c,
            )
        )
    return out, priors
