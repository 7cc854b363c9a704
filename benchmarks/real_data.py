"""Real-data benchmark: MEASURE's models on public data with published results.

Each row is one design run by our model, beside the published figure and beside an established
library run on the same data:

* NSW randomized experiment (LaLonde 1986; Dehejia & Wahba 1999, the DW subsample: 185 treated,
  260 controls): ``experiment`` (difference in means, and regression on the covariates) against
  statsmodels OLS; published: ATT 1,794 (SE 633).
* NSW treated against the CPS-1 comparison group (15,992 non-experimental controls):
  ``nearest_neighbour_matching`` and ``subclassification`` against the ``causalinference``
  package (Abadie-Imbens bias-adjusted matching; propensity blocking). The published yardstick
  of an observational design on these data is the experimental estimate (LaLonde 1986; Dehejia
  & Wahba 1999, 2002): an estimate passes when it lies inside the experimental 95% interval
  1,794 +/- 1.96 x 633 and its own CI covers 1,794.
* Any rows of the modules in ``EXTRA_MODULES`` (each exposing ``rows() -> list[dict]``:
  ``real_data_prop99.py``, synthetic control on Proposition 99; ``real_data_its.py``, the
  interrupted time series of the Sicily smoking ban), appended when the module exists.

Data: ``benchmarks/data`` (source and licence in its README). The reference libraries are in
the ``benchmarks`` optional extra (``pip install -e '.[benchmarks]'``); a missing one leaves its
columns empty and says so.

Usage::

    python benchmarks/real_data.py                        # print the table
    python benchmarks/real_data.py --out docs/real_data.md
    python benchmarks/real_data.py --export-data          # rewrite benchmarks/data from causaldata
"""

from __future__ import annotations

import argparse
import gzip
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from impact_assets.measure.models import get_model  # noqa: E402

DATA = HERE / "data"
NSW_FILE = DATA / "nsw_dw.csv"
CPS_FILE = DATA / "cps1_controls.csv.gz"
COLUMNS = ["treat", "age", "educ", "black", "hisp", "marr", "nodegree", "re74", "re75", "re78"]
COVARIATES = ["age", "educ", "black", "hisp", "marr", "nodegree", "re74", "re75"]
#: Dehejia & Wahba's (2002) propensity specification for CPS: the covariates plus age^2, age^3,
#: educ^2, zero-earnings indicators u74, u75 and educ x re74 (columns a user adds to the CSV).
DW_COVARIATES = [*COVARIATES, "agesq", "agecube", "educsq", "u74", "u75", "educ_re74"]
#: Dehejia & Wahba (1999, Table 3; 2002): the NSW experimental estimate and its standard error.
EXPERIMENTAL_ATT = 1794.0
EXPERIMENTAL_SE = 633.0
PUBLISHED_EXPERIMENT = "1,794 (SE 633); DW 1999 Table 3, LaLonde 1986"
PUBLISHED_OBSERVATIONAL = "target: experimental 1,794, 95% range [553, 3,035]; DW 1999/2002"
#: Modules with more rows (written separately, e.g. the synthetic-control study).
EXTRA_MODULES = ("real_data_prop99", "real_data_its")
Z_95 = 1.959963984540054


def load_nsw() -> pd.DataFrame:
    """The DW NSW sample (445 rows)."""
    return pd.read_csv(NSW_FILE)


def load_nsw_cps() -> pd.DataFrame:
    """NSW treated (185) + CPS-1 controls (15,992), with the columns of ``DW_COVARIATES``."""
    nsw = load_nsw()
    data = pd.concat([nsw[nsw["treat"] == 1], pd.read_csv(CPS_FILE)], ignore_index=True)
    return data.assign(
        agesq=data["age"] ** 2,
        agecube=data["age"] ** 3,
        educsq=data["educ"] ** 2,
        u74=(data["re74"] == 0).astype(int),
        u75=(data["re75"] == 0).astype(int),
        educ_re74=data["educ"] * data["re74"],
    )


def export_data() -> None:
    """Rewrite ``benchmarks/data`` from the ``causaldata`` package (see the data README)."""
    from causaldata import cps_mixtape, nsw_mixtape

    for module, path in ((nsw_mixtape, NSW_FILE), (cps_mixtape, CPS_FILE)):
        frame = module.load_pandas().data[COLUMNS].copy()
        for column in ("re74", "re75", "re78"):
            frame[column] = frame[column].astype(float).round(3)
        text = frame.to_csv(index=False, float_format="%.3f", lineterminator="\n")
        if path.suffix == ".gz":
            with gzip.GzipFile(path, "wb", mtime=0) as handle:
                handle.write(text.encode())
        else:
            path.write_text(text, encoding="utf-8")


# ----------------------------------------------------------------------------- our models


def _ours(name: str, data: pd.DataFrame, raw: dict[str, Any]) -> dict[str, Any]:
    model = get_model(name)
    params = model.validate_params(raw)
    start = time.perf_counter()
    fit = model.fit(data, params)
    seconds = time.perf_counter() - start
    return {
        "estimate": fit.effect_estimate,
        "ci_lower": fit.ci_lower,
        "ci_upper": fit.ci_upper,
        "p_value": fit.p_value,
        "se": fit.standard_error,
        "n": model.sample_size(data, params),
        "estimand": fit.estimand,
        "warnings": list(fit.diagnostics.get("warnings", [])),
        "seconds": seconds,
    }


# ----------------------------------------------------------------------------- references


def _statsmodels_ols(formula: str, cov_type: str) -> Callable[[pd.DataFrame], dict[str, Any]]:
    def run(data: pd.DataFrame) -> dict[str, Any]:
        import statsmodels.formula.api as smf

        result = smf.ols(formula, data=data).fit(cov_type=cov_type, use_t=True)
        lo, hi = result.conf_int().loc["treat"]
        return {
            "estimate": float(result.params["treat"]),
            "ci_lower": float(lo),
            "ci_upper": float(hi),
            "p_value": float(result.pvalues["treat"]),
            "se": float(result.bse["treat"]),
        }

    return run


def _causalinference(
    method: str, covariates: list[str] = COVARIATES
) -> Callable[[pd.DataFrame], dict[str, Any]]:
    def run(data: pd.DataFrame) -> dict[str, Any]:
        import warnings

        from causalinference import CausalModel

        X = data[covariates].to_numpy(float)
        if method != "matching":
            # standardized: the logit is invariant to it, and its Newton steps converge on
            # terms like age^3 or educ x re74
            X = (X - X.mean(axis=0)) / X.std(axis=0)
        model = CausalModel(data["re78"].to_numpy(float), data["treat"].to_numpy(int), X)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            if method == "matching":
                model.est_via_matching(matches=1, bias_adj=True)
                estimates = model.estimates["matching"]
            elif method == "propensity_matching":
                model.est_propensity()
                pscore = model.propensity["fitted"]
                logit = np.log(pscore / (1 - pscore))
                model = CausalModel(
                    data["re78"].to_numpy(float), data["treat"].to_numpy(int), logit[:, None]
                )
                model.est_via_matching(matches=1, bias_adj=False)
                estimates = model.estimates["matching"]
            else:
                model.est_propensity()
                model.cutoff = 0.01
                model.trim()
                model.stratify_s()
                model.est_via_blocking(adj=0)
                estimates = model.estimates["blocking"]
        att, se = float(estimates["att"]), float(estimates["att_se"])
        from scipy import stats

        return {
            "estimate": att,
            "ci_lower": att - Z_95 * se,
            "ci_upper": att + Z_95 * se,
            "p_value": float(2 * stats.norm.sf(abs(att) / se)),
            "se": se,
        }

    return run


def _reference(run: Callable[[pd.DataFrame], dict[str, Any]], data: pd.DataFrame):
    try:
        return run(data), None
    except ImportError as exc:
        return None, f"not installed ({exc.name}); pip install -e '.[benchmarks]'"


# ----------------------------------------------------------------------------- rows


def _checks(ours: dict[str, Any], observational: bool) -> str:
    lo, hi = EXPERIMENTAL_ATT - Z_95 * EXPERIMENTAL_SE, EXPERIMENTAL_ATT + Z_95 * EXPERIMENTAL_SE
    inside = lo <= ours["estimate"] <= hi
    covers = (
        ours["ci_lower"] is not None and ours["ci_lower"] <= EXPERIMENTAL_ATT <= ours["ci_upper"]
    )
    parts = [
        f"estimate in published range: {'yes' if inside else 'NO'}",
        f"CI covers 1,794: {'yes' if covers else 'NO'}",
    ]
    if not observational:
        parts[0] = (
            "estimate = published: "
            f"{'yes' if abs(ours['estimate'] - EXPERIMENTAL_ATT) < 1 else 'no'}"
        )
    return "; ".join(parts)


def nsw_rows(references: bool = True) -> list[dict[str, Any]]:
    """The NSW/CPS rows: experiment, matching and subclassification (``references=False``:
    without the reference libraries' runs)."""
    nsw, obs = load_nsw(), load_nsw_cps()
    adjusted = "re78 ~ treat + " + " + ".join(COVARIATES)
    specs = [
        (
            "NSW experiment (185 T / 260 C)",
            "experiment: difference in means, HC2 (Neyman) SE",
            "experiment",
            nsw,
            {"formula": "re78 ~ treat"},
            "statsmodels OLS, HC2",
            _statsmodels_ols("re78 ~ treat", "HC2"),
            PUBLISHED_EXPERIMENT,
            False,
        ),
        (
            "NSW experiment (185 T / 260 C)",
            "experiment: difference in means, classical OLS SE (as published)",
            "experiment",
            nsw,
            {"formula": "re78 ~ treat", "cov_type": "nonrobust"},
            "statsmodels OLS, nonrobust",
            _statsmodels_ols("re78 ~ treat", "nonrobust"),
            PUBLISHED_EXPERIMENT,
            False,
        ),
        (
            "NSW experiment (185 T / 260 C)",
            "experiment: regression on the 8 covariates, HC2",
            "experiment",
            nsw,
            {"formula": adjusted},
            "statsmodels OLS, HC2",
            _statsmodels_ols(adjusted, "HC2"),
            PUBLISHED_EXPERIMENT,
            True,
        ),
        (
            "NSW treated + CPS-1 (185 T / 15,992 C)",
            "nearest_neighbour_matching: defaults (M = 1, with replacement, bias-corrected, "
            "Abadie-Imbens SE)",
            "nearest_neighbour_matching",
            obs,
            {"treatment_column": "treat", "covariate_columns": COVARIATES},
            "causalinference 0.1.3 est_via_matching (M = 1, bias_adj)",
            _causalinference("matching"),
            PUBLISHED_OBSERVATIONAL,
            True,
        ),
        (
            "NSW treated + CPS-1 (185 T / 15,992 C)",
            "subclassification: defaults (5 strata on treated score quantiles, trimmed, "
            "regression within strata)",
            "subclassification",
            obs,
            {"treatment_column": "treat", "covariate_columns": COVARIATES},
            "causalinference 0.1.3 blocking (score cut-off 0.01, data-driven blocks)",
            _causalinference("blocking"),
            PUBLISHED_OBSERVATIONAL,
            True,
        ),
        (
            "NSW treated + CPS-1 (185 T / 15,992 C)",
            "subclassification: defaults, DW (2002) score specification (14 terms)",
            "subclassification",
            obs,
            {"treatment_column": "treat", "covariate_columns": DW_COVARIATES},
            "causalinference 0.1.3 blocking, same 14 terms",
            _causalinference("blocking", DW_COVARIATES),
            PUBLISHED_OBSERVATIONAL,
            True,
        ),
        (
            "NSW treated + CPS-1 (185 T / 15,992 C)",
            "nearest_neighbour_matching: on the DW (2002) logit score, with replacement, "
            "bias-corrected",
            "nearest_neighbour_matching",
            obs,
            {
                "treatment_column": "treat",
                "covariate_columns": DW_COVARIATES,
                "distance": "propensity",
            },
            "causalinference 0.1.3 matching on the same logit score (M = 1, no bias_adj)",
            _causalinference("propensity_matching", DW_COVARIATES),
            PUBLISHED_OBSERVATIONAL,
            True,
        ),
    ]
    rows = []
    for study, method, name, data, raw, ref_name, ref_run, published, observational in specs:
        if name != "experiment":
            raw = {**raw, "dependent_variable": "re78"}
        ours = _ours(name, data, raw)
        if references:
            reference, missing = _reference(ref_run, data)
        else:
            reference, missing = None, "not run"
        rows.append(
            {
                "study": study,
                "method": method,
                "model": name,
                "n": ours["n"],
                "estimate": ours["estimate"],
                "se": ours["se"],
                "ci_lower": ours["ci_lower"],
                "ci_upper": ours["ci_upper"],
                "p_value": ours["p_value"],
                "estimand": ours["estimand"],
                "warnings": ours["warnings"],
                "seconds": ours["seconds"],
                "reference": ref_name if missing is None else f"{ref_name}: {missing}",
                "ref_estimate": None if reference is None else reference["estimate"],
                "ref_se": None if reference is None else reference["se"],
                "ref_ci_lower": None if reference is None else reference["ci_lower"],
                "ref_ci_upper": None if reference is None else reference["ci_upper"],
                "ref_p_value": None if reference is None else reference["p_value"],
                "published": published,
                "checks": _checks(ours, observational),
            }
        )
    return rows


def extra_rows(
    directory: Path = HERE, modules: tuple[str, ...] = EXTRA_MODULES
) -> list[dict[str, Any]]:
    """Rows of each ``{directory}/{module}.py`` in ``modules`` that exists (others skipped):
    the module's ``rows()``, a list of dicts with the keys of :func:`nsw_rows` (missing keys
    print as '–')."""
    import importlib.util

    rows = []
    for name in modules:
        path = directory / f"{name}.py"
        if not path.exists():
            continue
        spec = importlib.util.spec_from_file_location(f"_real_data_{name}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        rows.extend(module.rows())
    return rows


def all_rows(references: bool = True) -> list[dict[str, Any]]:
    return nsw_rows(references) + extra_rows()


# ----------------------------------------------------------------------------- output


def _num(value: Any, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, str):
        return value
    return f"{value:,.{digits}f}"


def _p(value: Any) -> str:
    if value is None:
        return "–"
    return f"{value:.3f}" if value >= 0.001 else f"{value:.1e}"


def _ci(lo: Any, hi: Any, digits: int = 0) -> str:
    if lo is None or hi is None:
        return "none"
    return f"[{_num(lo, digits)}, {_num(hi, digits)}]"


def markdown(rows: list[dict[str, Any]]) -> str:
    """The comparison table (one line per row) and the warnings and estimands below it."""
    header = (
        "| study | method | n | ours: estimate (SE) | ours: 95% CI | ours: p | reference "
        "library | reference: estimate (SE) | reference: 95% CI | reference: p | published "
        "| checks |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    notes = []
    for row in rows:
        method = row.get("method") or f"{row.get('model')}: {row.get('specification')}"
        d = row.get("digits", 0)  # decimals of estimates (e.g. 4 for a log-scale effect)
        lines.append(
            f"| {row['study']} | {method} | {_num(row.get('n', row.get('sample_size')))} | "
            f"{_num(row['estimate'], d)} ({_num(row.get('se'), d)}) | "
            f"{_ci(row.get('ci_lower'), row.get('ci_upper'), d)} | {_p(row.get('p_value'))} | "
            f"{row.get('reference', '–')} | {_num(row.get('ref_estimate'), d)} "
            f"({_num(row.get('ref_se'), d)}) | "
            f"{_ci(row.get('ref_ci_lower'), row.get('ref_ci_upper'), d)} | "
            f"{_p(row.get('ref_p_value'))} | {row.get('published', '–')} | "
            f"{row.get('checks', '–')} |"
        )
        for text in row.get("warnings") or []:
            notes.append(f"- {method}: {text}")
        estimand = row.get("estimand")
        if estimand and estimand not in ("att", "ate", "atc") and not estimand.startswith("coef"):
            notes.append(f"- {method}: estimand reported: {estimand}")
    text = header + "\n".join(lines) + "\n"
    if notes:
        text += "\nWarnings and estimands reported by MEASURE:\n\n" + "\n".join(notes) + "\n"
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="", help="write the table to this Markdown file")
    parser.add_argument("--export-data", action="store_true", help="rewrite benchmarks/data")
    parser.add_argument("--no-references", action="store_true", help="skip reference libraries")
    args = parser.parse_args(argv)
    if args.export_data:
        export_data()
        return 0
    table = markdown(all_rows(references=not args.no_references))
    print(table)
    if args.out:
        Path(args.out).write_text(table, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
