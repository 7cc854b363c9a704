#!/bin/sh
# README command 1: set up and run the whole pipeline on the demo portfolio, in one Dagster run,
# against the project's own SQLite Dagster instance (.dagster/).
. "$(dirname "$0")/_env.sh"
echo "==> running impact_pipeline on configs/pipeline.yaml (DAGSTER_HOME=$DAGSTER_HOME)"
exec .venv/bin/dagster job execute -m impact_assets.definitions -j impact_pipeline "$@"
