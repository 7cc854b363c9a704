"""Command line: ``python -m impact_assets`` (or ``impact-assets``).

* ``report``: print the latest portfolio report from the Dagster instance (``$DAGSTER_HOME``) as a
  table, optionally exporting it (``--csv``, ``--json``).
* ``validate``: load a manifest (default: ``$IMPACT_MANIFEST`` or ``configs/pipeline.yaml``), its
  stage configs and the environment settings the code location reads, and say what is wrong in
  one line. ``scripts/demo.sh`` runs it before ``dagster job execute``.

Errors a user can cause print one line naming the file and field, and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from impact_assets import reporting
from impact_assets.config import ConfigError, load_config

EXIT_USAGE = 2


class CliError(Exception):
    """A problem the user can fix; printed as one line."""


def _instance_storage() -> Path:
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        raise CliError("DAGSTER_HOME is not set: point it at the instance the pipeline ran in")
    import dagster as dg

    with dg.DagsterInstance.get() as instance:
        event = instance.get_latest_materialization_event(dg.AssetKey("portfolio_report"))
        if event is None:
            raise CliError(
                f"no portfolio_report has been materialized in {home}: run the impact_pipeline job"
            )
        return Path(instance.storage_directory()) / "impact_assets"


def cmd_report(args: argparse.Namespace) -> int:
    root = Path(args.storage) if args.storage else _instance_storage()
    path = root / "portfolio_report.json"
    if not path.exists():
        raise CliError(f"{path}: no portfolio report stored there")
    report = json.loads(path.read_text(encoding="utf-8"))
    rows, values = report["rows"], report["figures"]
    print(reporting.text_table(rows))
    print()
    for key, value in values.items():
        print(f"{key:>24}  {reporting.fmt(value)}")
    if args.csv:
        Path(args.csv).write_text(reporting.csv_text(rows), encoding="utf-8")
        print(f"wrote {args.csv}", file=sys.stderr)
    if args.json:
        Path(args.json).write_text(
            json.dumps({"rows": rows, "figures": values}, indent=2, sort_keys=True, allow_nan=False)
            + "\n",
            encoding="utf-8",
        )
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from impact_assets.assets.manifest import backfill_policy_from_env, manifest_path
    from impact_assets.parallel import worker_nice

    config = load_config(args.manifest or manifest_path())
    for stage in ("measure", "evaluate", "allocate"):
        config.stage(stage).build()
    try:
        backfill_policy_from_env()
        worker_nice()
    except ValueError as exc:
        raise CliError(str(exc)) from None
    print(
        f"{config.path}: ok: {len(config.initiatives)} initiatives, budget {config.budget:g}, "
        f"components {config.measure.component}, {config.evaluate.component}, "
        f"{config.allocate.component}"
    )
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="impact-assets", description=__doc__.splitlines()[0])
    sub = top.add_subparsers(dest="command", required=True)
    report = sub.add_parser("report", help="print the latest portfolio report")
    report.add_argument("--csv", help="also write the table as CSV to this file")
    report.add_argument("--json", help="also write the rows and figures as JSON to this file")
    report.add_argument(
        "--storage", help="read <dir>/portfolio_report.json instead of the instance"
    )
    report.set_defaults(func=cmd_report)
    validate = sub.add_parser("validate", help="check a manifest and its stage configs")
    validate.add_argument(
        "manifest", nargs="?", help="default: $IMPACT_MANIFEST, else configs/pipeline.yaml"
    )
    validate.set_defaults(func=cmd_validate)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except (CliError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # e.g. `... report | head`: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
