"""The local instance's event log: Dagster's SQLite storage, tuned for runs over many partitions.

A run over N initiatives writes about five asset materializations per initiative. Dagster's
``SqliteEventLogStorage`` builds a new SQLAlchemy engine for every statement it runs, so every
statement is compiled again (about 1 ms each) and every event opens three to four connections;
it also stores a batch of events one by one. On this project's 2-core machine that was 15-20 ms
per materialization, most of a 200-initiative run (docs/performance.md).
:class:`LocalSqliteEventLogStorage` keeps the same files, schema and semantics and changes three
things:

- one engine per database file (a bounded LRU of :data:`MAX_ENGINES`), so compiled statements
  are reused, each keeping one open connection (``QueuePool`` of one, SQLAlchemy's default kind
  of pool for SQLite files): opening a connection and setting it up cost about 3.5 ms of the
  5-7 ms each single event took to store, for the hundred-odd step events of a run. Every use
  is still one transaction under the storage's lock; a connection is closed when its engine
  leaves the LRU or the storage is disposed, and a forked child never uses its parent's
  connections (``os.register_at_fork``). At most :data:`MAX_ENGINES` database files (three file
  handles each: the database, its WAL and its shared-memory index) stay open;
- :meth:`store_event_batch` writes each stretch of one run's asset events in a batch (the
  planned events at run creation, the materializations of each step output over a partition
  range) in one transaction per database file instead of one per event. The process opts into
  Dagster's batching by setting ``DAGSTER_EVENT_BATCH_SIZE`` (default :data:`DEFAULT_BATCH_SIZE`)
  unless it is already set;
- the materializations it stored are kept in memory by storage id (the latest
  :data:`MAX_CACHED_MATERIALIZATIONS`), and :meth:`fetch_materializations` for given storage ids
  serves them from there instead of reading and deserializing them again (about 0.4 ms each): the
  lineage of each outcome report reads the latest materialization of four upstream assets per
  initiative, all stored by the same run moments before. An event never changes once stored, and
  a light query still confirms that each id exists, so the answer is the database's;
- ``planned_events_as_subsets`` (default off): a run over a range of partitions would record one
  "materialization planned" event per asset holding the whole subset, not one per partition, as
  Dagster's ``DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS`` does. It is off because the UI
  derives in-progress and failed partitions from the per-partition planned events; those are
  kept, and batched.

It is enabled in ``.dagster/dagster.yaml``; importing it also applies the project's SQLite
``PRAGMA synchronous`` setting (:mod:`impact_assets.assets.sqlite_tuning`) in processes that do not
load the code location, such as the webserver and the daemon.
"""

from __future__ import annotations

import itertools
import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from dagster import AssetRecordsFilter, DagsterEventType, EventLogRecord, Field, StringSource
from dagster._core.event_api import EventRecordsResult
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.event_log.base import EventLogCursor
from dagster._core.storage.event_log.schema import (
    AssetCheckExecutionsTable,
    SqlEventLogStorageTable,
)
from dagster._core.storage.event_log.sql_event_log import enforce_max_records_limit
from dagster._core.storage.sql import create_engine
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._serdes import ConfigurableClassData, serialize_value
from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import QueuePool

from impact_assets.assets import sqlite_tuning  # noqa: F401  (PRAGMA synchronous)

BATCH_ENV = "DAGSTER_EVENT_BATCH_SIZE"
#: Materializations written per transaction when the process has not chosen a batch size.
DEFAULT_BATCH_SIZE = 1000
#: Database files (one per run, plus the index) whose engines, and one open connection each,
#: are kept.
MAX_ENGINES = 16
#: Materializations this process stored that are kept for :meth:`fetch_materializations` (about
#: 6-20 kB each; 4,096 covers the four inputs of every outcome report at 1,000 initiatives).
MAX_CACHED_MATERIALIZATIONS = 4096
#: Asset events that Dagster's SQLite storage mirrors into the index database.
_BATCHED_TYPES = frozenset(
    {
        DagsterEventType.ASSET_MATERIALIZATION,
        DagsterEventType.ASSET_MATERIALIZATION_PLANNED,
        DagsterEventType.ASSET_OBSERVATION,
    }
)


def default_base_dir() -> str:
    """Where Dagster's default SQLite storage keeps event logs: ``$DAGSTER_HOME/history/runs``."""
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        raise RuntimeError(
            "LocalSqliteEventLogStorage: set DAGSTER_HOME or give event_log_storage.config.base_dir"
        )
    return os.path.join(os.path.abspath(home), "history", "runs", "")


class LocalSqliteEventLogStorage(SqliteEventLogStorage):
    """``SqliteEventLogStorage`` with reused engines and connections, batched writes, the
    materializations it stored kept for fetches by id, and optional subset planned events."""

    def __init__(
        self,
        base_dir: str | None = None,
        inst_data: ConfigurableClassData | None = None,
        planned_events_as_subsets: bool = False,
    ) -> None:
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._stored: OrderedDict[int, EventLogEntry] = OrderedDict()
        self._stored_lock = threading.Lock()
        self._planned_events_as_subsets = bool(planned_events_as_subsets)
        super().__init__(base_dir or default_base_dir(), inst_data=inst_data)
        os.environ.setdefault(BATCH_ENV, str(DEFAULT_BATCH_SIZE))
        _LIVE.add(self)

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        return {
            "base_dir": Field(StringSource, is_required=False),
            "planned_events_as_subsets": Field(bool, is_required=False, default_value=False),
        }

    @classmethod
    def from_config_value(  # ty: ignore[invalid-method-override]
        cls, inst_data: ConfigurableClassData | None, config_value: dict[str, Any]
    ) -> LocalSqliteEventLogStorage:
        return cls(inst_data=inst_data, **config_value)

    @property
    def supports_partition_subset_in_asset_materialization_planned_events(self) -> bool:
        return (
            self._planned_events_as_subsets
            or super().supports_partition_subset_in_asset_materialization_planned_events
        )

    def _engine(self, shard: str) -> Engine:
        """The engine of one database file; the caller holds ``self._db_lock``."""
        engine = self._engines.get(shard)
        if engine is None:
            engine = create_engine(
                self.conn_string_for_shard(shard),
                poolclass=QueuePool,
                pool_size=1,
                # only reached if a use ever overlapped another; such connections are closed
                max_overflow=4,
                connect_args={
                    "timeout": SQLITE_BUSY_TIMEOUT_SECONDS,
                    # a pooled connection may serve another thread later (always under the lock)
                    "check_same_thread": False,
                },
            )
            self._engines[shard] = engine
            while len(self._engines) > MAX_ENGINES:
                self._engines.popitem(last=False)[1].dispose()
        else:
            self._engines.move_to_end(shard)
        return engine

    def _dispose_engines(self) -> None:
        """Close every engine's open connection and drop the engines."""
        with self._db_lock:
            engines, self._engines = list(self._engines.values()), OrderedDict()
        for engine in engines:
            engine.dispose()

    def _after_fork_in_child(self) -> None:
        """In a forked child: drop the engines without closing their connections, which belong
        to the parent, and the locks, which another thread of the parent may have held."""
        engines, self._engines = list(self._engines.values()), OrderedDict()
        self._db_lock = threading.Lock()
        self._stored_lock = threading.Lock()
        for engine in engines:
            engine.dispose(close=False)

    def dispose(self) -> None:
        super().dispose()
        self._dispose_engines()

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        with self._db_lock:
            engine = self._engine(shard)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        """Store a batch of events; each stretch of one run's asset events (materializations,
        planned materializations, observations) is written in one transaction per database file,
        anything else event by event, as Dagster does. Events keep their order."""
        for batchable, group in itertools.groupby(events, key=_batchable):
            group = list(group)
            if batchable and len(group) > 1:
                self._store_asset_events(group)
            else:
                for event in group:
                    self.store_event(event)

    def _store_asset_events(self, events: list[EventLogEntry]) -> None:
        """What ``store_event`` does for each asset event, in two transactions for the batch.

        Each event is serialized once, and the rows go to each database file in one
        ``executemany`` (the index database returns the new ids in the order of the rows).
        """
        (run_id,) = {event.run_id for event in events}
        rows = [self._event_to_row(event) for event in events]
        with self.run_connection(run_id) as conn:
            conn.execute(SqlEventLogStorageTable.insert(), rows)
        with self.index_transaction() as conn:
            returning = SqlEventLogStorageTable.insert().returning(
                SqlEventLogStorageTable.c.id, sort_by_parameter_order=True
            )
            event_ids = [row[0] for row in conn.execute(returning, rows)]
            if len(event_ids) != len(events) or any(event_id is None for event_id in event_ids):
                raise RuntimeError("the index database returned no id for a stored event")
            self._store_asset_event_tags(conn, events, event_ids)
            self._remember(events, event_ids)
            # The asset table keeps, per asset key, columns set by the latest event of each type;
            # applying only the last event of each (key, type), in order, gives the same row.
            last: dict[tuple[str, str], tuple[int, EventLogEntry, int]] = {}
            for position, (event, event_id) in enumerate(zip(events, event_ids, strict=True)):
                dagster_event = event.get_dagster_event()
                key = (dagster_event.asset_key.to_string(), dagster_event.event_type_value)
                last[key] = (position, event, event_id)
            for _, event, event_id in sorted(last.values(), key=lambda item: item[0]):
                self._store_asset_event(conn, event, event_id)

    def _remember(self, events: list[EventLogEntry], event_ids: list[int]) -> None:
        """Keep the materializations just stored, by their index-database storage id."""
        with self._stored_lock:
            for event, event_id in zip(events, event_ids, strict=True):
                if event.dagster_event_type == DagsterEventType.ASSET_MATERIALIZATION:
                    self._stored[event_id] = event
            while len(self._stored) > MAX_CACHED_MATERIALIZATIONS:
                self._stored.popitem(last=False)

    def fetch_materializations(
        self,
        records_filter: Any,
        limit: int,
        cursor: str | None = None,
        ascending: bool = False,
    ) -> EventRecordsResult:
        """Dagster's query; a query for given storage ids of materializations this process
        stored is answered from memory, for the ids the database confirms it still holds."""
        enforce_max_records_limit(limit)
        entries = self._remembered(records_filter, cursor)
        if entries is None:
            return super().fetch_materializations(records_filter, limit, cursor, ascending)
        table = SqlEventLogStorageTable
        query = select(table.c.id).where(
            table.c.id.in_(list(entries)),
            table.c.asset_key == records_filter.asset_key.to_string(),
            table.c.dagster_event_type == DagsterEventType.ASSET_MATERIALIZATION.value,
        )
        with self.index_connection() as conn:
            present = sorted((row[0] for row in conn.execute(query)), reverse=not ascending)
        records = [EventLogRecord(storage_id=i, event_log_entry=entries[i]) for i in present]
        records = records[:limit]
        # the cursor and has_more as Dagster's own query gives them
        last = records[-1].storage_id if records else -1
        return EventRecordsResult(
            records,
            cursor=EventLogCursor.from_storage_id(last).to_string(),
            has_more=len(records) == limit,
        )

    def _remembered(self, records_filter: Any, cursor: str | None) -> dict | None:
        """The remembered entries for a filter that only names an asset and storage ids, all of
        them remembered for that asset; else ``None`` (ask the database)."""
        if cursor is not None or not isinstance(records_filter, AssetRecordsFilter):
            return None
        ids = records_filter.storage_ids
        only_ids = ids and all(
            getattr(records_filter, name) is None
            for name in records_filter._fields
            if name not in ("asset_key", "storage_ids")
        )
        if not only_ids:
            return None
        with self._stored_lock:
            entries = {i: self._stored.get(i) for i in ids}
        if any(
            entry is None or entry.dagster_event.asset_key != records_filter.asset_key
            for entry in entries.values()
        ):
            return None
        return entries

    def wipe(self) -> None:
        with self._stored_lock:
            self._stored.clear()
        # the run databases are deleted: no connection may stay open on them
        self._dispose_engines()
        super().wipe()

    def _store_asset_check_evaluation_planned(
        self, event: EventLogEntry, event_id: int | None
    ) -> None:
        """The rows Dagster's storage writes for a planned check (one per partition of the run),
        with the event serialized once instead of once per partition, in one ``executemany``."""
        planned = event.get_dagster_event().event_specific_data
        keys = (
            planned.partitions_subset.get_partition_keys() if planned.partitions_subset else [None]
        )
        common = {
            "asset_key": planned.asset_key.to_string(),
            "check_name": planned.check_name,
            "run_id": event.run_id,
            "execution_status": AssetCheckExecutionRecordStatus.PLANNED.value,
            "evaluation_event": serialize_value(event),
            "evaluation_event_timestamp": self._event_insert_timestamp(event),
            "evaluation_event_storage_id": event_id,
        }
        with self.index_connection() as conn:
            conn.execute(
                AssetCheckExecutionsTable.insert(), [{**common, "partition": key} for key in keys]
            )


#: Every storage of this process, so that a forked child drops the connections it inherited.
_LIVE: weakref.WeakSet[LocalSqliteEventLogStorage] = weakref.WeakSet()


def _forget_inherited_connections() -> None:
    for storage in list(_LIVE):
        storage._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_inherited_connections)


def _batchable(event: EventLogEntry) -> tuple[str, ...] | None:
    """Events that can share a batch transaction: one run's events of an asset-event type."""
    dagster_event = event.dagster_event
    if dagster_event is None or dagster_event.event_type not in _BATCHED_TYPES:
        return None
    if dagster_event.asset_key is None:
        return None
    return (event.run_id,)
