#!/bin/sh
# README command 1: set up and run the whole pipeline on the demo portfolio, in one Dagster run,
# against the project's own SQLite Dagster instance (.dagster/).
. "$(dirname "$0")/_env.sh"
# A bad manifest or setting stops here with one line naming the file and the field (exit 2).
.venv/bin/python -m impact_assets validate
echo "==> running impact_pipeline on ${IMPACT_MANIFEST:-configs/pipeline.yaml} (DAGSTER_HOME=$DAGSTER_HOME)"
exec .venv/bin/dagster job execute -m impact_assets.definitions -j impact_pipeline "$@"
