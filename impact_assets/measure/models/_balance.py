"""Propensity scores and covariate balance (standardized mean differences).

Balance thresholds (Stuart 2010, Statistical Science; Imbens & Rubin 2015, ch. 14): a max
|standardized mean difference| after adjustment of at most :data:`SMD_GOOD` (0.1) is good, above
:data:`SMD_POOR` (0.25) it is poor. A matching or subclassification result whose max |SMD| after
adjustment exceeds :data:`SMD_POOR` carries a warning (``diagnostics["warnings"]``), is logged
as a warning, and EVALUATE's evidence scorer lowers its confidence through the balance factor.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pandas as pd

#: Max |SMD| at or below which balance is good.
SMD_GOOD = 0.1
#: Max |SMD| above which balance is poor: a warning in the result and the log.
SMD_POOR = 0.25

log = logging.getLogger("impact_assets.measure.models")


def balance_warning(model: str, max_abs_smd_after: float, worst: str) -> str | None:
    """The poor-balance warning (also logged), or ``None`` when max |SMD| <= :data:`SMD_POOR`.

    ``worst`` names the covariate with the largest |SMD| after adjustment.
    """
    if not max_abs_smd_after > SMD_POOR:
        return None
    text = (
        f"{model}: poor covariate balance after adjustment: max absolute standardized mean "
        f"difference {max_abs_smd_after:.2f} (covariate {worst!r}) exceeds {SMD_POOR} "
        "(Stuart 2010); the estimate may be biased by the remaining imbalance"
    )
    log.warning(text)
    return text


def worst_covariate(table: pd.DataFrame) -> tuple[float, str]:
    """Largest |SMD| in a :func:`balance_table` and the covariate it belongs to."""
    values = np.abs(table["smd"].to_numpy(float))
    if values.size == 0:
        return 0.0, ""
    i = int(np.argmax(values))
    return float(values[i]), str(table["covariate"].iloc[i])


def standardize(X: np.ndarray) -> np.ndarray:
    """Columns scaled to mean 0 and standard deviation 1 (constant columns stay 0)."""
    scale = X.std(axis=0)
    scale[scale == 0] = 1.0
    return (X - X.mean(axis=0)) / scale


def propensity_logit(X: np.ndarray, treated: np.ndarray) -> np.ndarray:
    """Linear predictor (logit) of a logistic regression of treatment on the covariates.

    Fitted by maximum likelihood with statsmodels (Newton); under (quasi-)separation, where the
    maximum likelihood estimate does not exist, it falls back to scikit-learn's lightly
    ridge-penalized fit so the scores stay finite (and separation then shows up as strata or
    matches without overlap).
    """
    Z = standardize(X)
    Z = Z[:, Z.std(axis=0) > 0]
    w = treated.astype(float)
    if Z.shape[1] == 0:
        share = w.mean()
        return np.full(w.shape, np.log(share / (1 - share)))
    design = np.column_stack([np.ones(len(w)), Z])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            # lazy (see models/__init__), and not ``statsmodels.api``: that imports every
            # statsmodels subpackage (about 1.5 s more in each worker process)
            from statsmodels.discrete.discrete_model import Logit

            result = Logit(w, design).fit(method="newton", disp=0, maxiter=50)
        logit = design @ result.params
        if np.all(np.isfinite(logit)) and np.max(np.abs(logit)) < 30:
            return logit
    except (Warning, np.linalg.LinAlgError, ValueError):
        pass
    from sklearn.linear_model import LogisticRegression  # lazy: see models/__init__

    model = LogisticRegression(C=1e3, solver="newton-cholesky", max_iter=200)
    model.fit(Z, treated)
    return model.decision_function(Z)


def smd(
    X: np.ndarray,
    treated: np.ndarray,
    weights: np.ndarray | None = None,
    reference_sd: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted means per group and the standardized mean difference per column.

    The denominator is ``reference_sd`` (pass the before-matching pooled SD so before/after are
    comparable) or ``sqrt((var_t + var_c) / 2)`` of the given sample.
    """
    if weights is None:
        weights = np.ones(len(X))
    wt, wc = weights * treated, weights * (~treated)
    mean_t = wt @ X / wt.sum()
    mean_c = wc @ X / wc.sum()
    if reference_sd is None:
        reference_sd = pooled_sd(X, treated)
    with np.errstate(divide="ignore", invalid="ignore"):
        diff = np.where(reference_sd > 0, (mean_t - mean_c) / reference_sd, 0.0)
    return mean_t, mean_c, diff


def pooled_sd(X: np.ndarray, treated: np.ndarray) -> np.ndarray:
    """``sqrt((var_t + var_c) / 2)`` per column (sample variances)."""
    var_t = X[treated].var(axis=0, ddof=1) if treated.sum() > 1 else np.zeros(X.shape[1])
    var_c = X[~treated].var(axis=0, ddof=1) if (~treated).sum() > 1 else np.zeros(X.shape[1])
    return np.sqrt((var_t + var_c) / 2.0)


def balance_table(
    X: np.ndarray,
    names: list[str],
    treated: np.ndarray,
    weights: np.ndarray | None = None,
    reference_sd: np.ndarray | None = None,
) -> pd.DataFrame:
    """One row per covariate: weighted group means and the SMD."""
    mean_t, mean_c, diff = smd(X, treated, weights, reference_sd)
    return pd.DataFrame(
        {"covariate": names, "mean_treated": mean_t, "mean_control": mean_c, "smd": diff}
    )
