"""The local instance's event log storage (``impact_assets.assets.event_log``) against Dagster's.

The same partitioned job runs over a range of partitions on an instance with Dagster's
``SqliteEventLogStorage`` and on one with ``LocalSqliteEventLogStorage`` (batched writes, reused
engines); everything Dagster reads back must be the same: materialized partitions, per-partition
metadata, partition statuses (failed ones included), the asset table's latest materialization and
the run's events.
"""

import collections
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from impact_assets.assets import event_log
from impact_assets.assets.event_log import LocalSqliteEventLogStorage

ROOT = Path(__file__).resolve().parents[2]
KEYS = [f"i{k:02d}" for k in range(30)]
PARTITIONS = dg.StaticPartitionsDefinition(KEYS)
FAIL_AT = "i17"


@dg.asset(partitions_def=PARTITIONS, backfill_policy=dg.BackfillPolicy.single_run())
def first(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    for key in context.partition_keys:
        context.add_asset_metadata({"value": int(key[1:]) * 3}, partition_key=key)
    return dg.MaterializeResult()


class SecondConfig(dg.Config):
    fail: bool = False


@dg.asset(partitions_def=PARTITIONS, backfill_policy=dg.BackfillPolicy.single_run(), deps=[first])
def second(context: dg.AssetExecutionContext, config: SecondConfig) -> dg.MaterializeResult:
    if config.fail:
        raise RuntimeError(f"second failed at {FAIL_AT}")
    for key in context.partition_keys:
        context.add_asset_metadata({"double": int(key[1:]) * 6}, partition_key=key)
    return dg.MaterializeResult()


@dg.asset_check(asset=first, partitions_def=PARTITIONS, blocking=True)
def first_is_positive(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=True)


JOB = dg.define_asset_job("range_job", selection=[first, second])
DEFS = dg.Definitions(assets=[first, second], asset_checks=[first_is_positive], jobs=[JOB])
CHECK = dg.AssetCheckKey(dg.AssetKey("first"), "first_is_positive")


def make_instance(home: Path, storage: str, **config) -> dg.DagsterInstance:
    home.mkdir(parents=True)
    settings = {"telemetry": {"enabled": False}}
    if storage == "local":
        settings["event_log_storage"] = {
            "module": "impact_assets.assets.event_log",
            "class": "LocalSqliteEventLogStorage",
            "config": {"base_dir": str(home / "history" / "runs"), **config},
        }
    (home / "dagster.yaml").write_text(yaml.safe_dump(settings))
    return dg.DagsterInstance.from_config(str(home))


def run(instance: dg.DagsterInstance, fail: bool = False) -> dg.ExecuteInProcessResult:
    return DEFS.resolve_job_def("range_job").execute_in_process(
        instance=instance,
        tags={ASSET_PARTITION_RANGE_START_TAG: KEYS[0], ASSET_PARTITION_RANGE_END_TAG: KEYS[-1]},
        run_config={"ops": {"second": {"config": {"fail": fail}}}},
        raise_on_error=False,
    )


def observed(instance: dg.DagsterInstance, run_id: str) -> dict:
    """Everything a user of the instance sees of the run and its assets, without ids or times."""
    out: dict = {}
    records = instance.get_records_for_run(run_id, limit=100_000).records
    out["events"] = collections.Counter(
        r.event_log_entry.dagster_event.event_type_value
        for r in records
        if r.event_log_entry.dagster_event is not None
    )
    history = instance.event_log_storage.get_asset_check_execution_history(CHECK, limit=1000)
    out["check executions"] = sorted(
        ((record.partition, record.status.value, record.run_id == run_id) for record in history),
        key=str,
    )
    for name in ("first", "second"):
        key = dg.AssetKey(name)
        in_run = [
            r.event_log_entry.dagster_event.partition
            for r in records
            if r.event_log_entry.dagster_event is not None
            and r.event_log_entry.dagster_event.event_type_value == "ASSET_MATERIALIZATION"
            and r.event_log_entry.dagster_event.asset_key == key
        ]
        out[f"{name} last in run"] = in_run[-1] if in_run else None
        out[f"{name} materialized"] = sorted(instance.get_materialized_partitions(key))
        statuses = instance.get_status_by_partition(key, KEYS, PARTITIONS) or {}
        out[f"{name} status"] = {k: str(v) for k, v in sorted(statuses.items())}
        latest = {}
        for partition in KEYS:
            result = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition]), limit=1
            )
            for record in result.records:
                materialization = record.asset_materialization
                latest[partition] = (
                    {k: v.value for k, v in materialization.metadata.items()},
                    sorted(materialization.tags or {}),
                    record.run_id == run_id,
                )
        out[f"{name} latest"] = latest
        asset_records = instance.get_asset_records([key])
        if asset_records:
            entry = asset_records[0].asset_entry
            last = entry.last_materialization_record
            out[f"{name} asset entry"] = (
                last.event_log_entry.dagster_event.partition if last else None,
                entry.last_run_id == run_id,
            )
    return out


@pytest.mark.parametrize("fail", [False, True], ids=["success", "failed-range-run"])
def test_local_storage_reads_back_what_dagsters_storage_does(tmp_path, monkeypatch, fail):
    monkeypatch.setenv(event_log.BATCH_ENV, "7")  # several batches per output, and a remainder
    seen = {}
    for storage in ("dagster", "local"):
        with make_instance(tmp_path / storage, storage) as instance:
            result = run(instance, fail=fail)
            assert result.success is (not fail)
            if storage == "local":
                assert isinstance(instance.event_log_storage, LocalSqliteEventLogStorage)
            seen[storage] = observed(instance, result.run_id)
    assert seen["local"] == seen["dagster"]
    local = seen["local"]
    assert local["events"]["ASSET_MATERIALIZATION_PLANNED"] == 2 * len(KEYS)
    # the planned check rows (one per partition, written by the local storage's executemany)
    assert sorted(p for p, _, _ in local["check executions"] if p is not None) == KEYS
    assert {status for _, status, _ in local["check executions"]} <= {"PLANNED", "SUCCEEDED"}
    assert local["first materialized"] == KEYS
    assert local["first latest"]["i05"][0] == {"value": 15}
    assert local["first asset entry"] == (local["first last in run"], True)
    if fail:
        assert local["second materialized"] == []
        assert set(local["second status"].values()) == {"AssetPartitionStatus.FAILED"}
    else:
        assert local["second latest"]["i29"][0] == {"double": 174}


def test_batches_are_written_in_one_transaction_per_database(tmp_path, monkeypatch):
    monkeypatch.setenv(event_log.BATCH_ENV, "1000")
    with make_instance(tmp_path / "local", "local") as instance:
        storage = instance.event_log_storage
        calls = collections.Counter()
        original = storage._store_asset_events

        def counting(events):
            calls[len(events)] += 1
            return original(events)

        monkeypatch.setattr(storage, "_store_asset_events", counting)
        assert run(instance).success
    # the planned events of both assets at run creation, then one batch per step output
    assert calls == {2 * len(KEYS): 1, len(KEYS): 2}


def test_planned_events_as_subsets_writes_one_planned_event_per_asset(tmp_path):
    with make_instance(tmp_path / "local", "local", planned_events_as_subsets=True) as instance:
        result = run(instance)
        assert result.success
        seen = observed(instance, result.run_id)
    assert seen["events"]["ASSET_MATERIALIZATION_PLANNED"] == 2
    assert seen["second materialized"] == KEYS


def test_engines_are_reused_and_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(event_log, "MAX_ENGINES", 3)
    with make_instance(tmp_path / "local", "local") as instance:
        storage = instance.event_log_storage
        for shard in ("a", "b", "index", "a"):
            with storage._connect(shard):
                pass
        engine = storage._engines["a"]
        with storage._connect("a"):
            pass
        assert storage._engines["a"] is engine
        with storage._connect("c"):
            pass
        assert list(storage._engines) == ["index", "a", "c"]


def test_project_instance_uses_the_local_storage(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text((ROOT / ".dagster" / "dagster.yaml").read_text())
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.get() as instance:
        storage = instance.event_log_storage
        assert isinstance(storage, LocalSqliteEventLogStorage)
        assert Path(storage._base_dir) == home / "history" / "runs"


def test_missing_dagster_home_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    with pytest.raises(RuntimeError, match="set DAGSTER_HOME or give event_log_storage"):
        LocalSqliteEventLogStorage()


def test_materializations_it_stored_are_served_from_memory_as_the_database_has_them(
    tmp_path, monkeypatch
):
    with make_instance(tmp_path / "local", "local") as instance:
        first_run = run(instance)
        second_run = run(instance)
        storage = instance.event_log_storage
        key = dg.AssetKey("first")
        latest = instance.get_latest_storage_id_by_partition(
            key, dg.DagsterEventType.ASSET_MATERIALIZATION
        )
        by_ids = dg.AssetRecordsFilter(asset_key=key, storage_ids=list(latest.values()))

        reads = collections.Counter()
        database = type(storage).__mro__[1].fetch_materializations

        def counting(self, *args, **kwargs):
            reads["database"] += 1
            return database(self, *args, **kwargs)

        monkeypatch.setattr(event_log.SqliteEventLogStorage, "fetch_materializations", counting)
        remembered = storage.fetch_materializations(by_ids, limit=len(KEYS))
        assert reads["database"] == 0
        # a fresh storage object on the same files has nothing in memory: the database answers
        from_db = LocalSqliteEventLogStorage(storage._base_dir).fetch_materializations(
            by_ids, limit=len(KEYS)
        )
        assert reads["database"] == 1
        assert [r.storage_id for r in remembered.records] == [r.storage_id for r in from_db.records]
        assert [r.event_log_entry for r in remembered.records] == [
            r.event_log_entry for r in from_db.records
        ]
        assert (remembered.cursor, remembered.has_more) == (from_db.cursor, from_db.has_more)
        assert {r.run_id for r in remembered.records} == {second_run.run_id}
        # limit and order as the database's query gives them
        two = storage.fetch_materializations(by_ids, limit=2, ascending=True)
        assert [r.storage_id for r in two.records] == sorted(latest.values())[:2]
        assert two.has_more
        # anything but asset and storage ids goes to the database
        storage.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, asset_partitions=["i03"]), limit=1
        )
        assert reads["database"] == 2
        # a deleted run's materializations are gone from the answer, as from the database
        instance.delete_run(second_run.run_id)
        assert storage.fetch_materializations(by_ids, limit=len(KEYS)).records == []
        older = instance.get_latest_storage_id_by_partition(
            key, dg.DagsterEventType.ASSET_MATERIALIZATION
        )
        again = storage.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, storage_ids=list(older.values())), limit=100
        )
        assert {r.run_id for r in again.records} == {first_run.run_id}


def test_the_memory_of_stored_materializations_is_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(event_log, "MAX_CACHED_MATERIALIZATIONS", 10)
    with make_instance(tmp_path / "local", "local") as instance:
        assert run(instance).success
        stored = instance.event_log_storage._stored
        assert len(stored) == 10
        # the latest ten: the last partitions of the second asset
        kinds = {e.dagster_event.asset_key.to_user_string() for e in stored.values()}
        assert kinds == {"second"}


def test_the_pipelines_materializations_from_memory_equal_the_stored_ones(tmp_path):
    """What the lineage of the outcome reports reads, for the real records and metadata."""
    from tests.pipeline_assets.conftest import make_defs

    defs = make_defs(tmp_path / "project")
    with make_instance(tmp_path / "local", "local") as instance:
        assert defs.resolve_job_def("impact_pipeline").execute_in_process(instance=instance).success
        storage = instance.event_log_storage
        fresh = LocalSqliteEventLogStorage(storage._base_dir)
        for name in ("pilot_measurement", "evaluation", "allocation", "scale_measurement"):
            key = dg.AssetKey(name)
            ids = instance.get_latest_storage_id_by_partition(
                key, dg.DagsterEventType.ASSET_MATERIALIZATION
            )
            query = dg.AssetRecordsFilter(asset_key=key, storage_ids=list(ids.values()))
            assert set(ids.values()) <= set(storage._stored)
            remembered = storage.fetch_materializations(query, limit=100).records
            from_db = fresh.fetch_materializations(query, limit=100).records
            assert len(remembered) == len(ids) > 0
            assert remembered == from_db, name


def _dbapi(conn):
    return conn.connection.dbapi_connection


def test_each_database_keeps_one_open_connection_set_up_once(tmp_path):
    with make_instance(tmp_path / "local", "local") as instance:
        storage = instance.event_log_storage
        with storage._connect("index") as conn:
            first = _dbapi(conn)
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 0  # OFF
        with storage._connect("index") as conn:
            assert _dbapi(conn) is first
        # a whole run, then wipe: no connection stays open on the deleted run databases, and
        # the next run writes to new ones that read back
        assert run(instance).success
        instance.wipe()
        assert set(storage._engines) <= {"index"}  # wiping the index reopened it
        result = run(instance)
        assert result.success
        assert instance.get_materialized_partitions(dg.AssetKey("second")) == set(KEYS)
    assert storage._engines == {}  # disposed with the instance


def test_a_forked_child_opens_its_own_connections(tmp_path):
    import os

    with make_instance(tmp_path / "local", "local") as instance:
        storage = instance.event_log_storage
        assert run(instance).success
        with storage._connect("index") as conn:
            parents = _dbapi(conn)
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: report, write through its own connection, exit at once
            status = 1
            try:
                fresh = storage._engines == {}
                with storage._connect("index") as conn:
                    own = _dbapi(conn) is not parents
                    conn.exec_driver_sql("CREATE TABLE forked_child (x INTEGER)")
                os.write(write, b"ok" if fresh and own else b"no")
                status = 0
            finally:
                os._exit(status)
        os.close(write)
        assert os.read(read, 2) == b"ok"
        assert os.waitpid(pid, 0)[1] == 0
        with storage._connect("index") as conn:
            assert _dbapi(conn) is parents  # still the parent's own, still usable
            assert conn.exec_driver_sql("SELECT count(*) FROM forked_child").scalar() == 0
