"""Real data: California's Proposition 99 (Abadie, Diamond & Hainmueller 2010) through MEASURE.

The panel (``benchmarks/data/prop99_smoking.csv``, source and licence in
``benchmarks/data/README.md``): per-capita cigarette sales (packs) in California and the 38 states
of ADH's donor pool, 1970-2000, with the covariates of ADH's Table 1. Proposition 99 took effect
in 1989.

Rows (see :func:`rows`):

* ``synthetic_control``, ADH specification: predictors ln(income), retail price and the share
  aged 15-24 (means 1980-1988), beer consumption (1984-1988) and cigarette sales in 1975, 1980
  and 1988; V by the nested search; run through the ``Measure`` component from a measure config
  and the CSV, as a user would. Published: an average effect of "almost 20 packs" per capita
  over 1989-2000 (ADH 2010, section 3; about 26 packs by 2000), weights Utah .334, Nevada .234,
  Montana .199, Colorado .164, Connecticut .069, and p = 1/39 = 0.026 from the post/pre RMSPE
  ratio (California ranks first of 39).
* ``synthetic_control``, outcome only (every pre-period year as a predictor): a different
  specification than ADH's, shown because it is our default.
* ``synthetic_control`` on the Basque Country (Abadie & Gardeazabal 2003, ``basque.csv``): 17
  regions (Spain as a whole dropped), outcome-only fit, terrorism from 1970; a 17-unit panel,
  run with ``MEASUREMENT.min_sample_size: 17``. Published: per-capita GDP about 10 percentage
  points below the synthetic control after the outbreak of terrorism (no p-value published).
* ``interrupted_time_series``, California alone (``unit`` filter), 1970-2000 with a slope change:
  a single-series design without a control group, for contrast (no published ITS estimate; it
  attributes the whole break in California's own trend to the law).

The reference library (optional extra ``benchmarks``: ``pysyncon``) is run on the same data and
specification (ADH's): its ``Synth`` (weights, ATT, pre-period RMSPE) and, with
``--reference-placebo``, its ``PlaceboTest`` (the same RMSPE-ratio p-value). Without it the
reference columns are ``None``.

Usage::

    python benchmarks/real_data_prop99.py                       # prints the table (~5 min)
    python benchmarks/real_data_prop99.py --reference-placebo   # + pysyncon's p-value (hours)
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from impact_assets.measure.component import Measure  # noqa: E402

DATA = Path(__file__).resolve().parent / "data" / "prop99_smoking.csv"
BASQUE = Path(__file__).resolve().parent / "data" / "basque.csv"
TREATED = "California"
TREATMENT_YEAR = 1989
PUBLISHED = {
    "estimate": -20.0,  # "almost 20 packs" per capita, average 1989-2000
    # "almost 20" on average (read as 18 to 20) up to the gap by 2000 ("about 26 packs")
    "range": (-26.0, -18.0),
    "p_value": 1 / 39,
    "weights": {
        "Utah": 0.334,
        "Nevada": 0.234,
        "Montana": 0.199,
        "Colorado": 0.164,
        "Connecticut": 0.069,
    },
    "source": "Abadie, Diamond & Hainmueller (2010), JASA 105(490), Table 2, Figures 2, 4, 8",
}
#: ADH's predictors (Table 1): covariate means over windows and three lagged outcomes.
ADH_PREDICTORS: list[dict[str, Any]] = [
    {"column": "lnincome", "start": 1980, "end": 1988},
    {"column": "retprice", "start": 1980, "end": 1988},
    {"column": "age15to24", "start": 1980, "end": 1988},
    {"column": "beer", "start": 1984, "end": 1988},
    {"column": "cigsale", "start": 1975, "end": 1975},
    {"column": "cigsale", "start": 1980, "end": 1980},
    {"column": "cigsale", "start": 1988, "end": 1988},
]
BASE_PARAMS = {
    "treatment_time": TREATMENT_YEAR,
    "treated_unit": TREATED,
    "outcome_column": "cigsale",
    "unit_column": "state",
    "time_column": "year",
}


def _measure(
    workdir: Path,
    name: str,
    model: str,
    params: dict[str, Any],
    data: Path = DATA,
    min_sample_size: int | None = None,
) -> dict[str, Any]:
    """Run the Measure component on a CSV with one measure config."""
    measurement: dict[str, Any] = {"MODEL": model, "PARAMS": params}
    if min_sample_size is not None:
        measurement["min_sample_size"] = min_sample_size
    config = {
        "DATA": {"SOURCE": {"type": "file", "CONFIG": {"path": str(data)}}},
        "MEASUREMENT": measurement,
    }
    path = workdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    measure = Measure(storage_url=str(workdir / "store"))
    return measure.execute({"initiative_id": name, "measure_config": str(path)})


def _pysyncon(predictors: bool, placebo_test: bool = False) -> dict[str, Any] | None:
    """pysyncon's Synth (and, when asked, its PlaceboTest) on the same data and specification;
    None without pysyncon. One fit with ADH's 7 predictors takes about 3.5 minutes (its V search
    is a Nelder-Mead over an inner SLSQP), so the placebo test is off by default."""
    try:
        from pysyncon import Dataprep, Synth
        from pysyncon.utils import PlaceboTest
    except ImportError:
        return None
    data = pd.read_csv(DATA)
    data["year"] = data["year"].astype(int)
    controls = sorted(set(data["state"]) - {TREATED})
    pre = range(1970, TREATMENT_YEAR)
    if predictors:
        prep = Dataprep(
            foo=data,
            predictors=["lnincome", "retprice", "age15to24"],
            predictors_op="mean",
            time_predictors_prior=range(1980, TREATMENT_YEAR),
            special_predictors=[
                ("beer", range(1984, TREATMENT_YEAR), "mean"),
                ("cigsale", [1975], "mean"),
                ("cigsale", [1980], "mean"),
                ("cigsale", [1988], "mean"),
            ],
            dependent="cigsale",
            unit_variable="state",
            time_variable="year",
            treatment_identifier=TREATED,
            controls_identifier=controls,
            time_optimize_ssr=pre,
        )
    else:
        prep = Dataprep(
            foo=data,
            predictors=[],
            predictors_op="mean",
            time_predictors_prior=pre,
            special_predictors=[("cigsale", [year], "mean") for year in pre],
            dependent="cigsale",
            unit_variable="state",
            time_variable="year",
            treatment_identifier=TREATED,
            controls_identifier=controls,
            time_optimize_ssr=pre,
        )
    options = {"optim_method": "Nelder-Mead", "optim_initial": "equal"}
    with contextlib.redirect_stdout(io.StringIO()):
        synth = Synth()
        synth.fit(dataprep=prep, **options)
        att = synth.att(time_period=range(TREATMENT_YEAR, 2001))
        p_value = None
        if placebo_test:  # 39 more fits: about 2 hours on a loaded 2-core host
            placebo = PlaceboTest()
            placebo.fit(
                dataprep=prep, scm=Synth(), scm_options=options, max_workers=1, verbose=False
            )
            p_value = float(placebo.pvalue(treatment_time=TREATMENT_YEAR))
    weights = synth.weights(round=3)
    return {
        "estimate": float(att["att"]),
        "p_value": p_value,
        "pre_period_rmspe": float(synth.mspe()) ** 0.5,
        "weights": {k: float(v) for k, v in weights[weights > 0.01].items()},
    }


def weights_of(result_job_dir: Path) -> dict[str, float]:
    """Donor weights > 0.01 from a synthetic-control job directory's impact_results.json."""
    envelope = json.loads((result_job_dir / "impact_results.json").read_text())
    weights = envelope["data"]["model_summary"]["weights"]
    return {k: v for k, v in weights.items() if v > 0.01}


def _row(study: str, model: str, spec: str, result: dict[str, Any]) -> dict[str, Any]:
    return {
        "study": study,
        "model": model,
        "specification": spec,
        "estimate": result["effect_estimate"],
        "ci_lower": result["ci_lower"],
        "ci_upper": result["ci_upper"],
        "p_value": result["p_value"],
        "sample_size": result["sample_size"],
        "ci_method": result["diagnostics"].get("ci_method"),
    }


def rows(reference: bool = True, reference_placebo: bool = False) -> list[dict[str, Any]]:
    """The rows: ours beside the published figures and the reference library's.

    ``reference=False`` skips the reference library (its one fit takes minutes);
    ``reference_placebo=True`` adds its placebo p-value (hours). The reference is run for ADH's
    specification only (an outcome-only fit in pysyncon is a 19-predictor V search).
    """
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        study = "Proposition 99, California 1970-2000 (ADH 2010)"
        adh = _measure(
            workdir,
            "prop99-adh",
            "synthetic_control",
            {**BASE_PARAMS, "predictors": ADH_PREDICTORS},
        )
        outcome_only = _measure(workdir, "prop99-outcomes", "synthetic_control", BASE_PARAMS)
        regions = pd.read_csv(BASQUE)
        regions = regions[regions["regionname"] != "Spain (Espana)"]
        regions_path = workdir / "basque_regions.csv"
        regions.to_csv(regions_path, index=False)
        basque = _measure(
            workdir,
            "basque",
            "synthetic_control",
            {
                "treatment_time": 1970,
                "treated_unit": "Basque Country (Pais Vasco)",
                "outcome_column": "gdpcap",
                "unit_column": "regionname",
                "time_column": "year",
            },
            data=regions_path,
            min_sample_size=17,
        )
        for result in (adh, outcome_only, basque):
            result["_weights"] = weights_of(Path(result["job_dir"]))
        trajectory = pd.read_parquet(
            Path(basque["job_dir"]) / "synthetic_control__trajectory.parquet"
        )
        post = trajectory[trajectory["post"]]
        basque["_relative_gap"] = float((post["gap"] / post["synthetic"]).mean())
        its = _measure(
            workdir,
            "prop99-its",
            "interrupted_time_series",
            {
                "intervention_date": TREATMENT_YEAR,
                "dependent_variable": "cigsale",
                "time_column": "year",
                "unit": TREATED,
                "unit_column": "state",
                "slope_change": True,
            },
        )
    for spec, result, uses_predictors in (
        ("ADH predictors, nested V", adh, True),
        ("outcome only (all pre-period years)", outcome_only, False),
    ):
        row = _row(study, "synthetic_control", spec, result)
        row.update(
            weights=result["_weights"],
            published_estimate=PUBLISHED["estimate"],
            published_range=PUBLISHED["range"],
            published_p_value=PUBLISHED["p_value"] if uses_predictors else None,
            published_weights=PUBLISHED["weights"] if uses_predictors else None,
            pre_period_rmspe=result["diagnostics"]["pre_period_rmse"],
            n_placebos=result["diagnostics"]["n_placebos"],
        )
        ref = _pysyncon(True, reference_placebo) if reference and uses_predictors else None
        row.update(
            reference_library="pysyncon 1.7.0" if ref is not None else None,
            reference_estimate=None if ref is None else ref["estimate"],
            reference_p_value=None if ref is None else ref["p_value"],
            reference_weights=None if ref is None else ref["weights"],
            reference_pre_period_rmspe=None if ref is None else ref["pre_period_rmspe"],
        )
        out.append(row)
    row = _row(
        "Basque Country 1955-1997, 17 regions (Abadie & Gardeazabal 2003)",
        "synthetic_control",
        "outcome only, treatment 1970, min_sample_size 17",
        basque,
    )
    row.update(
        weights=basque["_weights"],
        relative_gap=basque["_relative_gap"],
        published_estimate=None,
        published_relative_gap=-0.10,  # "about 10 percentage points" of per-capita GDP
        published_range=None,
        published_p_value=None,
        pre_period_rmspe=basque["diagnostics"]["pre_period_rmse"],
        n_placebos=basque["diagnostics"]["n_placebos"],
        reference_library=None,
        reference_estimate=None,
        reference_p_value=None,
    )
    out.append(row)
    row = _row(study, "interrupted_time_series", "California alone, level + slope change", its)
    row.update(
        published_estimate=None,
        published_range=None,
        published_p_value=None,
        reference_library="statsmodels OLS + HAC (the same regression)",
        reference_estimate=its["effect_estimate"],
        reference_p_value=its["p_value"],
    )
    out.append(row)
    return out


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, tuple):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    if isinstance(value, dict):
        return ", ".join(f"{k} {v:.3f}" for k, v in sorted(value.items(), key=lambda kv: -kv[1]))
    return str(value)


def main() -> None:
    table = rows(reference_placebo="--reference-placebo" in sys.argv[1:])
    columns = [
        "model",
        "specification",
        "estimate",
        "ci_lower",
        "ci_upper",
        "p_value",
        "published_estimate",
        "published_range",
        "published_p_value",
        "reference_estimate",
        "reference_p_value",
    ]
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for row in table:
        print("| " + " | ".join(_fmt(row.get(c)) for c in columns) + " |")
    print()
    for row in table:
        if row.get("weights") is not None:
            print(f"{row['specification']}: our weights: {_fmt(row['weights'])}")
        if row.get("published_weights") is not None:
            print(f"{row['specification']}: ADH weights: {_fmt(row['published_weights'])}")
        if row.get("reference_weights") is not None:
            print(f"{row['specification']}: pysyncon weights: {_fmt(row['reference_weights'])}")
        print(f"{row['specification']}: CI method: {row['ci_method']}")
        if row.get("relative_gap") is not None:
            print(
                f"{row['specification']}: mean post-period gap / synthetic = "
                f"{row['relative_gap']:.3f} (published about {row['published_relative_gap']})"
            )


if __name__ == "__main__":
    main()
