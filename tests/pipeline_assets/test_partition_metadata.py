"""``add_partition_metadata``: the per-partition metadata of a step over many partitions in one
update gives the materialization events that Dagster's per-partition calls give."""

import dagster as dg
import pytest
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from impact_assets.assets import partition_metadata
from impact_assets.assets.partition_metadata import add_partition_metadata

KEYS = [f"i{k:02d}" for k in range(30)]
PARTITIONS = dg.StaticPartitionsDefinition(KEYS)


class Mode(dg.Config):
    bulk: bool = True
    stray: bool = False


@dg.asset(partitions_def=PARTITIONS, backfill_policy=dg.BackfillPolicy.single_run())
def scored(context: dg.AssetExecutionContext, config: Mode) -> dg.MaterializeResult:
    keys = list(context.partition_keys)
    # metadata added before, for one partition, must be kept and updated
    context.add_asset_metadata({"early": 1, "value": -1}, partition_key=keys[1])
    first = {key: {"value": int(key[1:]) * 3, "status": "ok"} for key in keys}
    second = {key: {"late": dg.MetadataValue.md(f"**{key}**")} for key in keys[::2]}
    if config.stray:
        second["zz"] = {"late": "not a partition of this run"}
    for batch in (first, second):
        if config.bulk:
            add_partition_metadata(context, batch)
        else:
            for key, metadata in batch.items():
                context.add_asset_metadata(metadata, partition_key=key)
    return dg.MaterializeResult(metadata={"asset_level": "every partition"})


JOB = dg.define_asset_job("scored_job", selection=[scored])
DEFS = dg.Definitions(assets=[scored], jobs=[JOB])


def run(bulk: bool, last: str = KEYS[-1], stray: bool = False) -> dg.ExecuteInProcessResult:
    return DEFS.resolve_job_def("scored_job").execute_in_process(
        instance=dg.DagsterInstance.ephemeral(),
        tags={ASSET_PARTITION_RANGE_START_TAG: KEYS[0], ASSET_PARTITION_RANGE_END_TAG: last},
        run_config={"ops": {"scored": {"config": {"bulk": bulk, "stray": stray}}}},
        raise_on_error=False,
    )


def metadata_by_partition(result: dg.ExecuteInProcessResult) -> dict[str, dict]:
    events = result.get_asset_materialization_events()
    return {
        event.partition: dict(event.step_materialization_data.materialization.metadata)
        for event in events
    }


def test_one_update_gives_the_events_of_per_partition_calls(monkeypatch):
    public_calls = []
    public = dg.AssetExecutionContext.add_asset_metadata

    def counted(self, metadata, asset_key=None, partition_key=None):
        public_calls.append(partition_key)
        return public(self, metadata, asset_key=asset_key, partition_key=partition_key)

    monkeypatch.setattr(dg.AssetExecutionContext, "add_asset_metadata", counted)
    bulk = run(bulk=True)
    assert bulk.success
    # only the asset's own call: the fast path, not the public call per key, did the rest
    assert public_calls == [KEYS[1]]
    public_calls.clear()
    per_key = run(bulk=False)
    assert per_key.success
    assert len(public_calls) == 1 + len(KEYS) + len(KEYS[::2])

    got, expected = metadata_by_partition(bulk), metadata_by_partition(per_key)
    assert sorted(got) == KEYS
    assert got == expected
    assert got["i01"]["early"] == dg.MetadataValue.int(1)
    assert got["i01"]["value"] == dg.MetadataValue.int(3)  # updated, as the public call does
    assert got["i02"]["late"] == dg.MetadataValue.md("**i02**")
    assert "late" not in got["i03"]
    assert got["i29"]["asset_level"] == dg.MetadataValue.text("every partition")


def test_a_subrange_run_and_the_fallback_agree(monkeypatch):
    expected = metadata_by_partition(run(bulk=False, last="i09"))
    assert sorted(expected) == KEYS[:10]
    assert metadata_by_partition(run(bulk=True, last="i09")) == expected
    # where the accumulator is not found (another Dagster version), the public calls are used
    monkeypatch.setattr(partition_metadata, "_accumulator_holder", lambda context: None)
    assert metadata_by_partition(run(bulk=True, last="i09")) == expected


@pytest.mark.parametrize("bulk", [True, False])
def test_a_key_outside_the_run_is_refused_with_dagsters_message(bulk):
    result = run(bulk=bulk, last="i09", stray=True)
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    message = failure.step_failure_data.error.to_string()
    assert "Attempted to add metadata for partition key 'zz' that is not being targeted." in message
    assert result.get_asset_materialization_events() == []
