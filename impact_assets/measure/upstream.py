"""``UpstreamMeasure``: run the upstream MEASURE package and normalize its envelope.

The upstream tool (measure-spec §1) is importable as ``impact_engine`` (``evaluate_impact``,
mid-February 2026, which the upstream orchestrator targets) or ``impact_engine_measure``
(``measure_impact``, HEAD). Neither can be installed here; the adapter calls whichever is
importable and fails with a clear message when none is.

:func:`normalize_envelope` turns an upstream ``impact_results.json`` envelope (spec §3.1–§3.2)
into a :class:`~impact_assets.contracts.MeasureResult` dict, for all six model types, following
spec §3.3 with its bugs fixed:

* ``p_value`` is ``None`` when the envelope has none (never 0.0);
* ``ci_lower``/``ci_upper`` are ``None`` when the envelope has no interval (ITS,
  subclassification, metrics_approximation upstream), never a zero-width interval;
* the experiment's treatment term is found by the ``treatment_column`` parameter or by name
  (``enriched``, ``treatment``, ...), not by its position in the formula;
* NaN values (upstream writes bare ``NaN``, spec B11) count as missing;
* ``schema_version`` must be absent or ``2.x``.
"""

from __future__ import annotations

import importlib
import json
import logging
import math
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from impact_assets.component import PipelineComponent
from impact_assets.contracts import MeasureResult
from impact_assets.measure.config import PHASES, MeasureConfigError, read_config_file
from impact_assets.measure.jobdir import json_safe, validate_initiative_id

log = logging.getLogger(__name__)

#: (module, function) pairs tried in order.
UPSTREAM_ENTRY_POINTS = (
    ("impact_engine", "evaluate_impact"),
    ("impact_engine_measure", "measure_impact"),
)
Z_95 = 1.959963984540054
_TREATMENT_NAME = re.compile(r"(?i)(treat|enrich|intervention|variant|assign)")
_SCHEMA = re.compile(r"2(\.\d+)*")


class UpstreamError(ValueError):
    """The upstream package is missing, failed, or returned an envelope we cannot read."""


# --------------------------------------------------------------------------- normalization


def check_schema_version(envelope: Mapping[str, Any]) -> str | None:
    """Accept an absent ``schema_version`` or any ``2.x``; anything else is an error."""
    if "schema_version" not in envelope or envelope["schema_version"] is None:
        return None
    version = envelope["schema_version"]
    if isinstance(version, bool) or not isinstance(version, str | int | float):
        raise UpstreamError(f"unsupported envelope schema_version {version!r}; supported: 2.x")
    text = str(version)
    if not _SCHEMA.fullmatch(text):
        raise UpstreamError(
            f"unsupported envelope schema_version {text!r}; supported: absent or 2.x"
        )
    return text


def _num(value: Any) -> float | None:
    """A finite float, or None for missing/NaN/inf/non-numbers."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _pair(value: Any) -> tuple[float, float] | None:
    if isinstance(value, list | tuple) and len(value) == 2:
        lo, hi = _num(value[0]), _num(value[1])
        if lo is not None and hi is not None:
            return (min(lo, hi), max(lo, hi))
    return None


def _rhs_variables(formula: str | None) -> list[str]:
    if not formula or "~" not in formula:
        return []
    rhs = formula.split("~", 1)[1]
    names = re.findall(r"[A-Za-z_][A-Za-z0-9_.]*", rhs)
    skip = {"C", "I", "np", "log", "exp", "Q", "Treatment", "center", "scale", "bs"}
    return [n for n in dict.fromkeys(names) if n not in skip]


def find_treatment_term(
    terms: list[str], formula: str | None = None, treatment_column: str | None = None
) -> str:
    """The statsmodels term holding the treatment effect.

    ``treatment_column`` (e.g. ``enriched``) is matched exactly or as ``enriched[T.True]``-style
    level terms; without it, the single main-effect term whose variable name looks like a
    treatment (``treat``, ``enrich``, ``intervention``, ``variant``, ``assign``). Anything
    ambiguous or absent is an error listing the terms.
    """
    main = [t for t in terms if t != "Intercept" and ":" not in t]

    def base(term: str) -> str:
        inner = re.sub(r"^C\((.*?)(,.*)?\)", r"\1", term)
        return inner.split("[", 1)[0].strip()

    def match(variable: str) -> str | None:
        if variable in main:
            return variable
        levels = [t for t in main if base(t) == variable and t != variable]
        if len(levels) == 1:
            return levels[0]
        for suffix in ("[T.True]", "[T.1]", "[True]"):
            for term in levels:
                if term.endswith(suffix):
                    return term
        return None

    if treatment_column:
        found = match(str(treatment_column))
        if found is None:
            raise UpstreamError(
                f"experiment: treatment_column {treatment_column!r} matches no term of the "
                f"fitted model; terms: {terms}"
            )
        return found
    variables = list(dict.fromkeys(base(t) for t in main))
    rhs = _rhs_variables(formula)
    if rhs:
        variables = [v for v in rhs if v in variables] + [v for v in variables if v not in rhs]
    candidates = [v for v in variables if _TREATMENT_NAME.search(v)]
    if len(candidates) == 1:
        found = match(candidates[0])
        if found is not None:
            return found
    reason = "several" if len(candidates) > 1 else "no"
    raise UpstreamError(
        f"experiment: {reason} terms look like the treatment ({candidates or terms}); set "
        f"MEASUREMENT.PARAMS.treatment_column to name it (formula {formula!r})"
    )


def _ci_from_se(effect: float, se: float | None) -> tuple[float | None, float | None]:
    if se is None:
        return None, None
    return effect - Z_95 * se, effect + Z_95 * se


def normalize_envelope(
    envelope: Mapping[str, Any],
    initiative_id: str,
    phase: str = "pilot",
    *,
    treatment_column: str | None = None,
) -> dict[str, Any]:
    """A validated ``MeasureResult`` dict from an upstream ``impact_results.json`` envelope.

    ``sample_size`` follows spec §3.3 (experiment: OLS nobs; ITS/NNM/subclassification:
    ``n_observations``; SC: ``n_post_periods``; metrics_approximation: ``n_products``).
    The dict also carries ``schema_version`` and, in ``diagnostics``, the upstream
    ``model_summary`` under ``upstream_model_summary``.
    """
    if not isinstance(envelope, Mapping):
        raise UpstreamError(f"the envelope must be a JSON object, got {type(envelope).__name__}")
    version = check_schema_version(envelope)
    model_type = envelope.get("model_type")
    data = envelope.get("data")
    if not isinstance(data, Mapping):
        raise UpstreamError(
            f"initiative {initiative_id!r}: envelope has no 'data' section (keys: "
            f"{sorted(envelope)}); expected {{model_type, data: {{model_params, "
            "impact_estimates, model_summary}}, metadata}"
        )
    params = data.get("model_params") or {}
    estimates = data.get("impact_estimates") or {}
    summary = data.get("model_summary") or {}
    if model_type not in _NORMALIZERS:
        raise UpstreamError(f"Unknown model_type: {model_type!r}; known: {sorted(_NORMALIZERS)}")
    fields = _NORMALIZERS[model_type](params, estimates, summary, treatment_column)
    effect = fields["effect_estimate"]
    if effect is None:
        raise UpstreamError(
            f"initiative {initiative_id!r}: {model_type} envelope has no finite effect estimate"
        )
    ci_lower, ci_upper = fields.get("ci", (None, None))
    if ci_lower is None or ci_upper is None:
        ci_lower = ci_upper = None
    diagnostics = {
        **fields.get("diagnostics", {}),
        "upstream_model_summary": json_safe(summary),
    }
    sample_size = fields["sample_size"]
    if sample_size is None:
        raise UpstreamError(
            f"initiative {initiative_id!r}: {model_type} envelope has no sample size "
            f"({fields.get('sample_size_key')})"
        )
    result = MeasureResult(
        initiative_id=initiative_id,
        effect_estimate=effect,
        ci_lower=ci_lower,
        ci_upper=ci_upper,
        p_value=fields.get("p_value"),
        sample_size=int(sample_size),
        model_type=model_type,
        diagnostics=json_safe(diagnostics),
        standard_error=fields.get("standard_error"),
        phase=phase,
        estimand=fields.get("estimand"),
        true_effect=None,
    )
    return {**result.to_dict(), "schema_version": version}


def _experiment(params, estimates, summary, treatment_column):
    coefficients = estimates.get("params") or {}
    if not isinstance(coefficients, Mapping) or not coefficients:
        raise UpstreamError("experiment: impact_estimates.params is missing or empty")
    term = find_treatment_term(list(coefficients), params.get("formula"), treatment_column)
    conf = (estimates.get("conf_int") or {}).get(term)
    pair = _pair(conf)
    nobs = _num(summary.get("nobs"))
    return {
        "effect_estimate": _num(coefficients.get(term)),
        "ci": pair if pair is not None else (None, None),
        "p_value": _num((estimates.get("pvalues") or {}).get(term)),
        "standard_error": _num((estimates.get("bse") or {}).get(term)),
        "sample_size": None if nobs is None else int(nobs),
        "sample_size_key": "model_summary.nobs",
        "estimand": f"coefficient of {term} (per row)",
        "diagnostics": {
            "n_observations": None if nobs is None else int(nobs),
            "r_squared": _num(summary.get("rsquared")),
            "treatment_term": term,
            "ci_method": "OLS t interval (upstream)",
        },
    }


def _interrupted_time_series(params, estimates, summary, treatment_column):
    n = _num(summary.get("n_observations"))
    return {
        "effect_estimate": _num(estimates.get("intervention_effect")),
        "p_value": _num(estimates.get("p_value")),
        "standard_error": _num(estimates.get("standard_error")),
        "ci": (_num(estimates.get("ci_lower")), _num(estimates.get("ci_upper"))),
        "sample_size": None if n is None else int(n),
        "sample_size_key": "model_summary.n_observations",
        "estimand": "intervention coefficient per period (upstream: no intercept, spec B1)",
        "diagnostics": {
            "n_observations": None if n is None else int(n),
            "n_pre_periods": summary.get("pre_period_length"),
            "n_post_periods": summary.get("post_period_length"),
            "absolute_change": _num(estimates.get("absolute_change")),
        },
    }


def _synthetic_control(params, estimates, summary, treatment_column):
    att = _num(estimates.get("att"))
    se = _num(estimates.get("se"))
    ci = (_num(estimates.get("ci_lower")), _num(estimates.get("ci_upper")))
    if (ci[0] is None or ci[1] is None) and att is not None:
        ci = _ci_from_se(att, se)
    n_post = _num(summary.get("n_post_periods"))
    mspe = _num(summary.get("mspe"))
    return {
        "effect_estimate": att,
        "ci": ci,
        "p_value": _num(estimates.get("p_value")),
        "standard_error": se,
        "sample_size": None if n_post is None else int(n_post),
        "sample_size_key": "model_summary.n_post_periods",
        "estimand": f"ATT per post period of unit {params.get('treated_unit')!r}",
        "diagnostics": {
            "n_observations": None if n_post is None else int(n_post),
            "n_pre_periods": summary.get("n_pre_periods"),
            "n_post_periods": summary.get("n_post_periods"),
            "n_donors": summary.get("n_control_units"),
            "n_treated_units": 1,
            "pre_period_rmse": None if mspe is None else math.sqrt(mspe),
            "ci_method": "att +/- 1.96 se, iid post-period gaps (upstream)",
        },
    }


def _nearest_neighbour_matching(params, estimates, summary, treatment_column):
    att = _num(estimates.get("att"))
    se = _num(estimates.get("att_se"))
    n = _num(summary.get("n_observations"))
    return {
        "effect_estimate": att,
        "ci": _ci_from_se(att, se) if att is not None else (None, None),
        "p_value": _num(estimates.get("p_value")),
        "standard_error": se,
        "sample_size": None if n is None else int(n),
        "sample_size_key": "model_summary.n_observations",
        "estimand": "ATT",
        "diagnostics": {
            "n_observations": None if n is None else int(n),
            "n_treated_units": summary.get("n_treated"),
            "n_matched_att": summary.get("n_matched_att"),
            "ate": _num(estimates.get("ate")),
            "ci_method": "att +/- 1.96 att_se (upstream)",
        },
    }


def _subclassification(params, estimates, summary, treatment_column):
    n = _num(summary.get("n_observations"))
    estimand = summary.get("estimand")
    return {
        "effect_estimate": _num(estimates.get("treatment_effect")),
        "ci": (_num(estimates.get("ci_lower")), _num(estimates.get("ci_upper"))),
        "p_value": _num(estimates.get("p_value")),
        "standard_error": _num(estimates.get("standard_error")),
        "sample_size": None if n is None else int(n),
        "sample_size_key": "model_summary.n_observations",
        "estimand": str(estimand).upper() if estimand else None,
        "diagnostics": {
            "n_observations": None if n is None else int(n),
            "n_strata": estimates.get("n_strata"),
            "n_strata_dropped": estimates.get("n_strata_dropped"),
        },
    }


def _metrics_approximation(params, estimates, summary, treatment_column):
    impact = _num(estimates.get("impact"))
    lo, hi = _num(estimates.get("lower")), _num(estimates.get("upper"))
    ci = (lo, hi) if lo is not None and hi is not None and impact is not None else (None, None)
    if ci[0] is not None and not (ci[0] <= impact <= ci[1]):  # type: ignore[operator]
        ci = (None, None)
    n = _num(summary.get("n_products"))
    return {
        "effect_estimate": impact,
        "ci": ci,
        "p_value": None,
        "standard_error": None,
        "sample_size": None if n is None else int(n),
        "sample_size_key": "model_summary.n_products",
        "estimand": "approximated total impact (response function; no sampling uncertainty)",
        "diagnostics": {
            "n_observations": None if n is None else int(n),
            "response_function": params.get("response_function"),
            "ci_method": "response-function bounds" if ci[0] is not None else "none",
        },
    }


_NORMALIZERS: dict[str, Callable[..., dict[str, Any]]] = {
    "experiment": _experiment,
    "interrupted_time_series": _interrupted_time_series,
    "synthetic_control": _synthetic_control,
    "nearest_neighbour_matching": _nearest_neighbour_matching,
    "subclassification": _subclassification,
    "metrics_approximation": _metrics_approximation,
}


# --------------------------------------------------------------------------- the component


def find_upstream() -> tuple[str, Callable[..., Any]] | None:
    """``(qualified name, function)`` of the first importable upstream entry point, or None."""
    for module_name, function in UPSTREAM_ENTRY_POINTS:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        fn = getattr(module, function, None)
        if callable(fn):
            return f"{module_name}.{function}", fn
    return None


def _envelope_path(returned: Any, storage_root: Path, job_id: str) -> Path:
    """Where the upstream call left ``impact_results.json``.

    ``evaluate_impact`` (Feb) returns the file path; ``measure_impact`` / later
    ``evaluate_impact`` return a ``JobInfo`` with ``full_path`` (or ``storage_path`` + ``job_id``).
    """
    if isinstance(returned, str | os.PathLike):
        path = Path(returned)
    elif getattr(returned, "full_path", None):
        path = Path(str(returned.full_path))
    elif getattr(returned, "job_id", None):
        base = getattr(returned, "storage_path", None) or storage_root
        path = Path(str(base)) / str(returned.job_id)
    elif returned is None:
        path = storage_root / job_id
    else:
        raise UpstreamError(f"unexpected return value from the upstream call: {returned!r}")
    return path / "impact_results.json" if path.is_dir() or path.suffix != ".json" else path


class UpstreamMeasure(PipelineComponent):
    """MEASURE through the upstream package (registered as ``UpstreamMeasure``).

    Each phase gets its own upstream job id, ``{initiative_id}__{phase}``, so the scale run does
    not overwrite the pilot (spec B5). The upstream tool has no sample-size knob: the event's
    ``sample_size`` is logged and not honoured.
    """

    def __init__(self, storage_url: str = "./data/upstream_measure"):
        if not isinstance(storage_url, str | os.PathLike) or not str(storage_url).strip():
            raise ValueError(f"storage_url must be a directory path, got {storage_url!r}")
        self.storage_url = str(storage_url)
        self.storage_root = Path(storage_url).expanduser().resolve()

    def params(self) -> dict[str, Any]:
        return {"storage_url": self.storage_url}

    def execute(self, event: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(event, Mapping):
            raise ValueError(f"UpstreamMeasure event must be a mapping, got {event!r}")
        initiative_id = validate_initiative_id(event.get("initiative_id"))
        phase = event.get("phase") or "pilot"
        if phase not in PHASES:
            raise ValueError(f"event field 'phase' must be one of {list(PHASES)}, got {phase!r}")
        config_value = event.get("measure_config")
        if not isinstance(config_value, str | os.PathLike) or not str(config_value).strip():
            raise ValueError(f"event field 'measure_config' must be a path, got {config_value!r}")
        config_path = Path(config_value).expanduser().resolve()
        upstream = find_upstream()
        if upstream is None:
            raise UpstreamError(
                "the upstream MEASURE package is not importable (tried "
                + ", ".join(f"{m}.{f}" for m, f in UPSTREAM_ENTRY_POINTS)
                + "); install it, or use the built-in component 'Measure'"
            )
        name, function = upstream
        if event.get("sample_size") is not None:
            log.warning(
                "%s: the upstream tool has no sample-size parameter; sample_size=%s is not "
                "honoured (initiative %s, phase %s)",
                name,
                event["sample_size"],
                initiative_id,
                phase,
            )
        treatment_column = None
        try:
            raw = read_config_file(config_path)
            treatment_column = ((raw.get("MEASUREMENT") or {}).get("PARAMS") or {}).get(
                "treatment_column"
            )
        except MeasureConfigError:
            pass  # the upstream call reports config problems itself
        self.storage_root.mkdir(parents=True, exist_ok=True)
        job_id = f"{initiative_id}__{phase}"
        try:
            returned = function(
                config_path=str(config_path), storage_url=str(self.storage_root), job_id=job_id
            )
        except Exception as exc:
            raise UpstreamError(
                f"initiative {initiative_id!r}: {name} failed on {config_path}: {exc}"
            ) from exc
        path = _envelope_path(returned, self.storage_root, job_id)
        try:
            envelope = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise UpstreamError(
                f"initiative {initiative_id!r}: cannot read the upstream envelope {path}: {exc}"
            ) from exc
        result = normalize_envelope(
            envelope, initiative_id, phase, treatment_column=treatment_column
        )
        return {**result, "job_dir": str(path.parent), "upstream": name}
