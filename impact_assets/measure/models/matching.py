"""``nearest_neighbour_matching``: Abadie-Imbens nearest-neighbour matching (ATT, ATC, ATE).

Method
------
Units are products (rows are aggregated per ``unit_column``, see ``_units``). Each treated unit
is matched to its ``ratio`` nearest controls (ATT), each control to its nearest treated units
(ATC); ATE combines both over the matched units. Distances (``distance``):

* ``standardized`` (default): Euclidean on covariates scaled to unit variance;
* ``mahalanobis``: Euclidean after whitening with the pooled covariance;
* ``propensity``: absolute difference of the logit propensity score (logistic regression on
  the covariates), in standard deviations of the logit.

``caliper``: a match is accepted when distance / sqrt(#dimensions) <= caliper (for propensity,
the logit difference in its SDs). Units without an accepted match are dropped and counted
(``n_unmatched_treated``); the estimand is then the effect on the matched units (and
``true_effect`` uses the same units). ``replace: true`` lets a control serve several treated
units (the Abadie-Imbens setting); ``replace: false`` matches greedily, closest pair first,
each unit used at most once (deterministic; ``shuffle``/``random_state`` are ignored).

Bias correction (``bias_correction: true``, default; Abadie & Imbens 2011): each imputed
counterfactual is adjusted by ``mu(X_i) - mu(X_j)``, with ``mu`` a series regression of the
outcome on the covariates fitted within the matched-to group (quadratic in the continuous
covariates when that group has at least 5 units per regressor, else linear), removing the bias
left by the covariate gap between a unit and its matches.

Variance (``se_method: abadie_imbens``, default; Abadie & Imbens 2006): the estimator is
linear in the outcomes, unit ``k`` weighing ``c_k`` = (1 if it is an estimation unit) + (its
total weight as a match) + (its influence through the estimated bias-correction coefficients).
The population variance estimate is
``[sum_i (d_i - tau)^2 + sum_k (c_k^2 - r_k - s_k) sigma_k^2] / N^2``, where ``d_i`` are the
unit-level effect estimates, ``r_k`` marks estimation units, ``s_k`` = sum over the matches
using ``k`` of ``1/M_i^2``, and ``sigma_k^2`` the conditional variance estimated by matching
within the same arm (2 neighbours; on leverage-corrected residuals of the bias regression when
bias correction is on). Without bias correction and with fixed ``M`` this is AI's
``K_M(K_M - 1)/M^2`` (ATT) and ``(K_M/M)^2 + (2M-1)/M * K_M/M`` (ATE) term, which accounts for
controls reused across matches; the regression-influence part accounts for the estimation error
of the bias correction, which matters when matches are poor (e.g. without replacement).
``se_method: naive`` gives upstream's ``sqrt(var_t/n_t + var_c/n_c)`` over the matched rows; it
ignores reuse and, without bias correction, under-covers under confounding (for comparison only).

Ties and determinism: the units are in a canonical order (``_units``), and with replacement
every control at least as close as the ``ratio``-th nearest is a match (ties at that distance
all used, each match weighing ``1 / #matches``, Abadie & Imbens 2006), so the result does not
depend on row order. Controls with identical coordinates are searched and stored once, as a
group: the ``matched_data_att`` artifact has one row per treated unit and matched group
(``control_unit`` = the group's first unit id, ``n_controls`` its size, ``weight`` its share of
the treated unit's imputed outcome, ``outcome_control`` the group's mean outcome).

Defaults: :data:`impact_assets.measure.defaults.MATCHING_DEFAULTS`, shared by the config
path, a direct call and the benchmarks. A caliper that drops units changes the estimand: the
result's ``estimand`` then names it (e.g. "ATT on the 146 matched treated units (39 of 185
dropped)"), ``diagnostics`` carry ``n_unmatched_treated``/``share_unmatched_treated`` and a
warning, which EVALUATE's evidence scorer turns into lower confidence.

CI: ``estimate -/+ t(n - 1) se`` with ``n`` the number of estimation units (matched units of
the headline estimand); p-value: two-sided from the same t distribution. (The t reference is a
small-sample adjustment; it is the normal interval for large ``n``.)

Parameters
----------
treatment_column, covariate_columns : required.   dependent_variable : default ``revenue``.
caliper : positive number or null (no caliper), default null.   replace : bool, default true.
ratio : int >= 1, default 1.   estimand : ``att`` (default), ``atc`` or ``ate`` (the headline).
bias_correction : bool, default true.   distance : see above, default ``standardized``.
se_method : ``abadie_imbens`` (default) or ``naive``.   unit_column : default ``product_id``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree
from scipy.spatial.distance import cdist

from impact_assets.measure.defaults import MATCHING_DEFAULTS
from impact_assets.measure.models._balance import (
    balance_table,
    balance_warning,
    pooled_sd,
    propensity_logit,
    worst_covariate,
)
from impact_assets.measure.models._params import (
    get_bool,
    get_choice,
    get_int,
    get_positive_number,
    get_str,
    get_str_list,
)
from impact_assets.measure.models._units import UnitCovariateModel, Units, UnitTable
from impact_assets.measure.models.base import ModelError, ModelFit, register_model

NAME = "nearest_neighbour_matching"
log = logging.getLogger("impact_assets.measure.models")
#: Same-arm neighbours used to estimate the conditional outcome variance.
VARIANCE_MATCHES = 2
#: Units per regressor needed before the bias correction adds quadratic terms.
UNITS_PER_PARAMETER = 5
#: Distances within this relative (and absolute) tolerance of the M-th nearest are ties.
TIE_RTOL = 1e-9
TIE_ATOL = 1e-12


@dataclass
class _Direction:
    """Matches from one arm (``source``) to groups of units of the other arm.

    Target units with identical coordinates form one **group** (with replacement; without
    replacement every target unit is its own group), so ties among identical units cost one
    pair, not one per unit. Pair ``p`` matches source unit ``source[pair_row[p]]`` to every
    member of group ``pair_group[p]``; a source unit's matches are the members of all its
    groups, each weighing ``1 / n_matches`` (Abadie & Imbens 2006).
    """

    source: np.ndarray  # unit indices of the matched-from arm
    pair_row: np.ndarray  # position in ``source`` of each pair (sorted: row, distance, group)
    pair_group: np.ndarray  # group of each pair
    pair_distance: np.ndarray  # distance of each pair
    group_members: np.ndarray  # target unit indices, grouped (group g: start[g] .. + count[g])
    group_start: np.ndarray
    group_count: np.ndarray

    @property
    def n_matches(self) -> np.ndarray:
        """Matched units per source unit (0: unmatched)."""
        counts = self.group_count[self.pair_group].astype(float)
        return np.bincount(self.pair_row, weights=counts, minlength=self.source.size)

    @property
    def retained(self) -> np.ndarray:
        return self.n_matches > 0

    @property
    def pair_weight(self) -> np.ndarray:
        """Share of each pair's group in its source unit's imputation: count / n_matches."""
        return self.group_count[self.pair_group] / self.n_matches[self.pair_row]

    def group_mean(self, values: np.ndarray) -> np.ndarray:
        """Mean of ``values`` (per unit) over each group's members."""
        member_group = np.repeat(np.arange(self.group_count.size), self.group_count)
        sums = np.bincount(member_group, weights=values[self.group_members])
        return sums / self.group_count

    def per_member(self, pair_values: np.ndarray, n_units: int) -> np.ndarray:
        """Per unit: the sum over the pairs of its group of ``pair_values / group size``."""
        group = np.bincount(
            self.pair_group,
            weights=pair_values / self.group_count[self.pair_group],
            minlength=self.group_count.size,
        )
        out = np.zeros(n_units)
        out[self.group_members] = np.repeat(group, self.group_count)
        return out

    @property
    def matches(self) -> np.ndarray:
        """``(n_source, width)`` matched unit indices, -1 padded (for inspection and tests)."""
        members = [
            self.group_members[self.group_start[g] : self.group_start[g] + self.group_count[g]]
            for g in self.pair_group
        ]
        per_row: list[list[int]] = [[] for _ in range(self.source.size)]
        for row, units in zip(self.pair_row, members, strict=True):
            per_row[row].extend(int(u) for u in units)
        width = max([1, *(len(r) for r in per_row)])
        out = np.full((self.source.size, width), -1)
        for i, row in enumerate(per_row):
            out[i, : len(row)] = row
        return out


def _singletons(
    source: np.ndarray, target: np.ndarray, rows: np.ndarray, cols: np.ndarray, d: np.ndarray
) -> _Direction:
    """A direction whose groups are the single target units (``cols`` index ``target``)."""
    order = np.lexsort((cols, d, rows))
    return _Direction(
        source,
        rows[order],
        cols[order],
        d[order],
        target,
        np.arange(target.size),
        np.ones(target.size, dtype=int),
    )


def _coordinates(units: Units, distance: str) -> np.ndarray:
    X = units.X
    if distance == "propensity":
        logit = propensity_logit(X, units.treated)
        sd = logit.std()
        return (logit / (sd if sd > 0 else 1.0))[:, None]
    centered = X - X.mean(axis=0)
    if distance == "standardized":
        scale = X.std(axis=0)
        scale[scale == 0] = 1.0
        return centered / scale
    cov = np.atleast_2d(np.cov(X, rowvar=False))
    values, vectors = np.linalg.eigh(cov)
    keep = values > 1e-10 * max(values.max(), 1e-300)
    return centered @ vectors[:, keep] / np.sqrt(values[keep])


def _match(
    Z: np.ndarray, source: np.ndarray, target: np.ndarray, ratio: int, caliper, replace: bool
) -> _Direction:
    limit = np.inf if caliper is None else caliper * np.sqrt(Z.shape[1])
    k = min(ratio, target.size)
    if replace:
        return _match_with_ties(Z, source, target, k, limit)
    # Greedy without replacement, closest pair first. Done in vectorized rounds: a pair whose
    # members are each other's nearest available partner is exactly the pair the sequential
    # closest-first greedy would take, so every round assigns all such mutual-nearest pairs.
    full = cdist(Z[source], Z[target])
    cost = np.where(full <= limit, full, np.inf)
    matches = np.full((source.size, k), -1)
    dist = np.full((source.size, k), np.nan)
    filled = np.zeros(source.size, dtype=int)
    rows = np.arange(source.size)
    while True:
        best_target = cost.argmin(axis=1)
        best_source = cost.argmin(axis=0)
        finite = np.isfinite(cost[rows, best_target])
        mutual = finite & (best_source[best_target] == rows)
        if not mutual.any():
            break
        r, c = rows[mutual], best_target[mutual]
        matches[r, filled[r]] = target[c]
        dist[r, filled[r]] = full[r, c]
        filled[r] += 1
        cost[:, c] = np.inf
        cost[r[filled[r] >= k], :] = np.inf
    rows, slots = np.nonzero(matches >= 0)
    cols = np.searchsorted(target, matches[rows, slots])
    return _singletons(source, target, rows, cols, dist[rows, slots])


def _match_with_ties(
    Z: np.ndarray, source: np.ndarray, target: np.ndarray, k: int, limit: float
) -> _Direction:
    """Every target within the ``k``-th nearest distance of each source unit (Abadie & Imbens
    2006: ``J_M(i)`` holds all units at least as close as the M-th match, so ties are all used
    and each match weighs ``1/#J_M(i)``), then those beyond the caliper ``limit`` removed.

    Distances equal up to :data:`TIE_RTOL` count as ties, so that two controls at the same
    distance are both used whatever their position; the result does not depend on row order.
    Target units with identical coordinates are searched once, as a group.
    """
    points, inverse, counts = np.unique(Z[target], axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.ravel()
    members = target[np.argsort(inverse, kind="stable")]
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    tree = cKDTree(points)
    n_near = min(k, points.shape[0])
    dist, idx = tree.query(Z[source], k=n_near)
    dist, idx = dist.reshape(source.size, n_near), idx.reshape(source.size, n_near)
    # the k-th nearest *unit*: the first group at which the running unit count reaches k
    reached = np.cumsum(counts[idx], axis=1) >= min(k, target.size)
    kth = dist[np.arange(source.size), reached.argmax(axis=1)]
    radius = kth * (1.0 + TIE_RTOL) + TIE_ATOL
    balls = tree.query_ball_point(Z[source], r=radius)
    sizes = np.fromiter((len(b) for b in balls), dtype=int, count=source.size)
    rows = np.repeat(np.arange(source.size), sizes)
    groups = np.fromiter((g for b in balls for g in b), dtype=int, count=int(sizes.sum()))
    d = np.sqrt(((Z[source][rows] - points[groups]) ** 2).sum(axis=1))
    keep = d <= limit
    rows, groups, d = rows[keep], groups[keep], d[keep]
    order = np.lexsort((groups, d, rows))
    return _Direction(source, rows[order], groups[order], d[order], members, starts, counts)


def _series_design(X: np.ndarray, n_arm: int) -> np.ndarray:
    """Bias-correction regressors: quadratic in the continuous covariates when the arm is big.

    ``[1, X, squares and pairwise products of the non-binary columns]`` when the arm has at
    least :data:`UNITS_PER_PARAMETER` units per regressor, otherwise ``[1, X]``.
    """
    linear = np.column_stack([np.ones(len(X)), X])
    continuous = X[:, [len(np.unique(col)) > 2 for col in X.T]]
    if continuous.shape[1] == 0:
        return linear
    scale = continuous.std(axis=0)
    scale[scale == 0] = 1.0
    Zc = (continuous - continuous.mean(axis=0)) / scale
    i, j = np.triu_indices(Zc.shape[1])
    quadratic = np.column_stack([linear, Zc[:, i] * Zc[:, j]])
    return quadratic if n_arm >= UNITS_PER_PARAMETER * quadratic.shape[1] else linear


@dataclass
class _BiasModel:
    """Series regression of y on X within one arm: ``fitted = design @ (pinv @ y[arm])``."""

    arm: np.ndarray  # unit indices of the arm the regression is fitted on
    design: np.ndarray  # regressors for every unit
    pinv: np.ndarray  # pseudo-inverse of design[arm]; maps y[arm] to the coefficients
    fitted: np.ndarray  # predictions for every unit


def _bias_model(units: Units, arm: np.ndarray) -> _BiasModel:
    """Fit the bias-correction regression within ``arm`` (a bool mask)."""
    design = _series_design(units.X, int(arm.sum()))
    pinv = np.linalg.pinv(design[arm])
    return _BiasModel(np.flatnonzero(arm), design, pinv, design @ (pinv @ units.y[arm]))


def _conditional_variance(
    units: Units, Z: np.ndarray, bias: dict[bool, _BiasModel] | None
) -> np.ndarray:
    """sigma^2_k by matching within the same arm (Abadie & Imbens 2006, section 4).

    With bias correction the neighbours are compared on the residuals of the arm's bias
    regression (leverage-corrected), so that the covariate gap to a neighbour does not
    inflate the variance.
    """
    sigma2 = np.zeros(len(units.y))
    for treated_arm in (True, False):
        arm = units.treated if treated_arm else ~units.treated
        if bias is None:
            y = units.y
        else:
            # residuals of the arm's regression, scaled by 1/sqrt(1 - leverage) (as in HC2)
            model = bias[treated_arm]
            leverage = np.zeros(len(units.y))
            leverage[model.arm] = np.einsum("ij,ji->i", model.design[model.arm], model.pinv)
            y = (units.y - model.fitted) / np.sqrt(np.clip(1.0 - leverage, 1e-8, None))
        idx = np.flatnonzero(arm)
        j = min(VARIANCE_MATCHES, idx.size - 1)
        if j < 1:
            continue
        _, neighbours = cKDTree(Z[idx]).query(Z[idx], k=j + 1)
        own = neighbours == np.arange(idx.size)[:, None]
        # drop the unit itself (or, among exact ties, the last neighbour)
        drop = np.where(own.any(axis=1), own.argmax(axis=1), j)
        keep = np.ones_like(neighbours, dtype=bool)
        keep[np.arange(idx.size), drop] = False
        others = neighbours[keep].reshape(idx.size, j)
        mean_others = y[idx][others].mean(axis=1)
        sigma2[idx] = j / (j + 1.0) * (y[idx] - mean_others) ** 2
    return sigma2


@dataclass
class _Estimate:
    effect: float | None
    se: float | None
    n_units: int


def _estimate(
    units: Units,
    directions: list[tuple[_Direction, int]],
    bias: dict[bool, _BiasModel] | None,
    sigma2: np.ndarray,
    se_method: str,
) -> _Estimate:
    """Effect and SE over the retained source units of ``directions``.

    Each direction comes with a sign: +1 for treated->control (d = Y - Y0_hat, bias model of
    the controls), -1 for control->treated (d = Y1_hat - Y, bias model of the treated).

    The estimator is linear in the outcomes: unit ``k`` enters with weight ``c_k = r_k +
    w_k + b_k`` (in absolute value, up to the common 1/N), where ``r_k`` marks estimation
    units, ``w_k`` is the unit's total match weight and ``b_k`` its influence through the
    estimated bias-correction coefficients (zero without bias correction). The pair term
    ``sum (d_i - tau)^2`` already counts ``r_k + s_k`` times ``sigma_k^2`` (``s_k`` = sum of
    squared match weights), so the remainder ``c_k^2 - r_k - s_k`` is added with the
    matching-based ``sigma_k^2`` (Abadie & Imbens 2006, extended to the estimated
    regression of the 2011 bias correction).
    """
    n = len(units.y)
    effects, weights_c, s, r = [], np.zeros(n), np.zeros(n), np.zeros(n)
    naive_parts = []
    for direction, sign in directions:
        keep = direction.retained
        src = direction.source[keep]
        w = direction.pair_weight
        rows = direction.pair_row
        values = direction.group_mean(units.y)[direction.pair_group]
        if bias is not None:
            model = bias[sign < 0]
            fitted = model.fitted
            values = values - direction.group_mean(fitted)[direction.pair_group]
        imputed = np.bincount(rows, weights=w * values, minlength=direction.source.size)[keep]
        match_weight = direction.per_member(w, n)
        if bias is not None:
            imputed = imputed + fitted[src]
            # sum_i (phi(X_i) - sum_j w_ij phi(X_j)) times the coefficient map
            gap = model.design[src].sum(axis=0) - match_weight @ model.design
            weights_c[model.arm] += gap @ model.pinv
        effects.append(sign * (units.y[src] - imputed))
        r[src] += 1.0
        weights_c += match_weight
        s += direction.per_member(w**2 / direction.group_count[direction.pair_group], n)
        # the matched outcomes with their multiplicity (times each unit is a match)
        times = direction.per_member(direction.group_count[direction.pair_group], n)
        naive_parts.append((units.y[src], times))
    d = np.concatenate(effects)
    n_est = d.size
    if n_est == 0:
        return _Estimate(None, None, 0)
    tau = float(d.mean())
    if se_method == "naive":
        if len(naive_parts) != 1:
            return _Estimate(tau, None, n_est)
        own, times = naive_parts[0]
        size = float(times.sum())
        if own.size < 2 or size < 2:
            return _Estimate(tau, None, n_est)
        mean = float(times @ units.y) / size
        matched_var = float(times @ (units.y - mean) ** 2) / (size - 1)
        se = float(np.sqrt(own.var(ddof=1) / own.size + matched_var / size))
        return _Estimate(tau, se, n_est)
    c = r + weights_c
    pairs = float(np.sum((d - tau) ** 2))
    total = pairs + float((c**2 - r - s) @ sigma2)
    variance = (total if total > 0 else pairs) / n_est**2
    return _Estimate(tau, float(np.sqrt(variance)), n_est)


def _estimand_name(estimand: str, n_out_t: int, n_t: int, n_out_c: int, n_c: int) -> str:
    """What the estimate is the effect on, once a caliper has dropped units."""
    if estimand == "att":
        if not n_out_t:
            return "ATT"
        return f"ATT on the {n_t - n_out_t} matched treated units ({n_out_t} of {n_t} dropped)"
    if estimand == "atc":
        if not n_out_c:
            return "ATC"
        return f"ATC on the {n_c - n_out_c} matched control units ({n_out_c} of {n_c} dropped)"
    if not (n_out_t or n_out_c):
        return "ATE"
    return (
        f"ATE on the {n_t - n_out_t + n_c - n_out_c} matched units ({n_out_t} of {n_t} "
        f"treated and {n_out_c} of {n_c} control units dropped)"
    )


@dataclass
class _Prepared:
    table: UnitTable
    units: Units
    Z: np.ndarray
    att_dir: _Direction
    atc_dir: _Direction


@register_model
class NearestNeighbourMatching(UnitCovariateModel):
    """Nearest-neighbour matching with Abadie-Imbens inference; see the module docstring."""

    name = NAME

    def validate_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        d = MATCHING_DEFAULTS
        return {
            "treatment_column": get_str(params, "treatment_column", NAME, required=True),
            "covariate_columns": get_str_list(params, "covariate_columns", NAME, required=True),
            "dependent_variable": get_str(params, "dependent_variable", NAME, default="revenue"),
            "caliper": get_positive_number(params, "caliper", NAME, default=d["caliper"]),
            "replace": get_bool(params, "replace", NAME, default=d["replace"]),
            "ratio": get_int(params, "ratio", NAME, default=d["ratio"]),
            "estimand": get_choice(
                params, "estimand", NAME, choices=("att", "atc", "ate"), default=d["estimand"]
            ),
            "bias_correction": get_bool(
                params, "bias_correction", NAME, default=d["bias_correction"]
            ),
            "distance": get_choice(
                params,
                "distance",
                NAME,
                choices=("standardized", "mahalanobis", "propensity"),
                default=d["distance"],
            ),
            "se_method": get_choice(
                params,
                "se_method",
                NAME,
                choices=("abadie_imbens", "naive"),
                default=d["se_method"],
            ),
            "unit_column": get_str(params, "unit_column", NAME, default="product_id"),
        }

    def _prepare(self, table: UnitTable, params: Mapping[str, Any]) -> _Prepared:
        """Units, coordinates and both match directions: what the fit and the true effect
        share."""
        units = table.units()
        Z = _coordinates(units, params["distance"])
        att_dir, atc_dir = self._directions(units, Z, params)
        return _Prepared(table, units, Z, att_dir, atc_dir)

    @staticmethod
    def _directions(units: Units, Z: np.ndarray, params: Mapping[str, Any]):
        treated, controls = np.flatnonzero(units.treated), np.flatnonzero(~units.treated)
        args = (params["ratio"], params["caliper"], params["replace"])
        return _match(Z, treated, controls, *args), _match(Z, controls, treated, *args)

    def _fit(self, prepared: _Prepared, params: Mapping[str, Any]) -> ModelFit:
        units, Z = prepared.units, prepared.Z
        att_dir, atc_dir = prepared.att_dir, prepared.atc_dir
        estimand = params["estimand"]
        needed = {"att": [att_dir], "atc": [atc_dir], "ate": [att_dir, atc_dir]}[estimand]
        if not all(d.retained.any() for d in needed):
            raise ModelError(
                f"{NAME}: no unit has a match within parameter 'caliper' "
                f"({params['caliper']}) for estimand {estimand!r}: the treated and control "
                "covariate distributions do not overlap"
            )
        mu = None
        if params["bias_correction"]:
            mu = {
                False: _bias_model(units, ~units.treated),
                True: _bias_model(units, units.treated),
            }
        sigma2 = _conditional_variance(units, Z, mu)
        method = params["se_method"]
        att = _estimate(units, [(att_dir, 1)], mu, sigma2, method)
        atc = _estimate(units, [(atc_dir, -1)], mu, sigma2, method)
        ate = _estimate(units, [(att_dir, 1), (atc_dir, -1)], mu, sigma2, method)
        if method == "naive" and att.effect is not None and atc.effect is not None:
            w_t, w_c = att.n_units, atc.n_units
            ate = _Estimate((w_t * att.effect + w_c * atc.effect) / (w_t + w_c), None, w_t + w_c)
        head = {"att": att, "atc": atc, "ate": ate}[estimand]
        lower = upper = p_value = None
        if head.se is not None and np.isfinite(head.se) and head.se > 0:
            # t reference with (estimation units - 1) df: a small-sample adjustment that
            # matters when a caliper leaves few units and vanishes for large samples
            df = max(head.n_units - 1, 1)
            from scipy import stats  # lazy: see models/__init__

            half = float(stats.t.ppf(0.975, df)) * head.se
            lower, upper = head.effect - half, head.effect + half
            p_value = float(2.0 * stats.t.sf(abs(head.effect) / head.se, df))

        reference = pooled_sd(units.X, units.treated)
        before = balance_table(units.X, units.names, units.treated, reference_sd=reference)
        weights = np.zeros(len(units.y))
        weights[att_dir.source[att_dir.retained]] = 1.0
        weights += att_dir.per_member(att_dir.pair_weight, len(units.y))
        after = balance_table(units.X, units.names, units.treated, weights, reference)
        groups = att_dir.pair_group
        first = att_dir.group_members[att_dir.group_start[groups]]
        source_units = att_dir.source[att_dir.pair_row]
        matched = pd.DataFrame(
            {
                "treated_unit": units.ids[source_units],
                "control_unit": units.ids[first],
                "n_controls": att_dir.group_count[groups],
                "distance": att_dir.pair_distance,
                "weight": att_dir.pair_weight,
                "outcome_treated": units.y[source_units],
                "outcome_control": att_dir.group_mean(units.y)[groups],
            }
        )
        n_unmatched = int((~att_dir.retained).sum())
        n_unmatched_c = int((~atc_dir.retained).sum())
        n_t, n_c = int(units.treated.sum()), int((~units.treated).sum())
        se_text = (
            "Abadie-Imbens (2006) variance with match-count term"
            if method == "abadie_imbens"
            else "naive two-sample SE over matched rows (ignores reuse of controls)"
        )
        bc_text = "bias-corrected (Abadie-Imbens 2011)" if mu is not None else "no bias correction"
        dropped = {
            "att": n_unmatched,
            "atc": n_unmatched_c,
            "ate": n_unmatched + n_unmatched_c,
        }[estimand]
        reported = _estimand_name(estimand, n_unmatched, n_t, n_unmatched_c, n_c)
        warnings = []
        if dropped:
            warnings.append(
                f"{NAME}: parameter 'caliper' ({params['caliper']}) left {n_unmatched} of {n_t} "
                f"treated and {n_unmatched_c} of {n_c} control units without a match; the "
                f"estimate is the {reported}, not the {estimand.upper()} of the whole sample"
            )
            log.warning(warnings[-1])
        smd_after, worst = worst_covariate(after)
        poor = balance_warning(NAME, smd_after, worst)
        if poor:
            warnings.append(poor)
        diagnostics = {
            "n_observations": len(units.y),
            "n_treated": n_t,
            "n_control": n_c,
            "max_abs_smd_before": float(np.max(np.abs(before["smd"]))),
            "max_abs_smd_after": smd_after,
            "balance_poor": poor is not None,
            "n_unmatched_treated": n_unmatched,
            "n_unmatched_control": n_unmatched_c,
            "share_unmatched_treated": n_unmatched / n_t,
            "estimand_reported": reported,
            "ci_method": f"t interval (df = matched units - 1); {bc_text}; {se_text}",
        }
        if warnings:
            diagnostics["warnings"] = warnings
        return ModelFit(
            model_type=NAME,
            effect_estimate=float(head.effect),
            ci_lower=lower,
            ci_upper=upper,
            p_value=p_value,
            standard_error=head.se,
            estimand=estimand if not dropped else reported,
            n_observations=len(units.y),
            model_params={
                "dependent_variable": params["dependent_variable"],
                "treatment_column": params["treatment_column"],
                "covariate_columns": list(params["covariate_columns"]),
                "distance": params["distance"],
                "bias_correction": params["bias_correction"],
                "se_method": method,
                "estimand": estimand,
            },
            impact_estimates={
                "att": att.effect,
                "atc": atc.effect,
                "ate": ate.effect,
                "att_se": att.se,
                "atc_se": atc.se,
                "ate_se": ate.se,
            },
            model_summary={
                "n_observations": len(units.y),
                "n_rows": units.n_rows,
                "n_treated": n_t,
                "n_control": n_c,
                "n_matched_att": int(att_dir.retained.sum()),
                "n_matched_atc": int(atc_dir.retained.sum()),
                "caliper": params["caliper"],
                "replace": params["replace"],
                "ratio": params["ratio"],
            },
            diagnostics=diagnostics,
            artifacts={
                "matched_data_att": matched,
                "balance_before": before,
                "balance_after": after,
            },
        )

    @staticmethod
    def _true_effect(
        prepared: _Prepared, effects: pd.DataFrame, params: Mapping[str, Any]
    ) -> float | None:
        att_dir, atc_dir = prepared.att_dir, prepared.atc_dir
        treated_ids = att_dir.source[att_dir.retained]
        control_ids = atc_dir.source[atc_dir.retained]
        realized = effects["realized"].to_numpy(float)
        potential = effects["potential"].to_numpy(float)
        parts = {
            "att": realized[treated_ids],
            "atc": potential[control_ids],
            "ate": np.concatenate([realized[treated_ids], potential[control_ids]]),
        }[params["estimand"]]
        if parts.size == 0 or not np.all(np.isfinite(parts)):
            return None
        return float(parts.mean())
