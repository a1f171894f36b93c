"""Storage conformance: the same behaviour on every engine the test server supports.

Raw rows of any time are accepted (no partition or chunk yet is no reason to refuse),
land where they belong once partitions exist, and a retried write is stored once.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Connection, text

from storage.database import Database
from storage.jobs.partitions import ensure_partitions
from storage.migrate import StorageEngine
from storage.schema import PARTITIONED
from storage.tenancy import DbRole, Scope, act_as
from storage.transaction import scoped_transaction

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
ORG = uuid.UUID("00000000-0000-0000-0000-00000000000a")
TIMES = [NOW - timedelta(days=40), NOW, NOW + timedelta(hours=5), NOW + timedelta(days=30)]
#: Written out per table rather than derived from PARTITIONED, so that a changed
#: declaration fails here: (aeos_meta's text, the width of each partition or chunk).
EXPECTED_INTERVALS = {
    "spans": ("1 day", timedelta(days=1)),
    "events": ("1 day", timedelta(days=1)),
    "metric_points": ("1 day", timedelta(days=1)),
    "cost_line_items": ("7 days", timedelta(days=7)),
    "alert_evaluations": ("7 days", timedelta(days=7)),
}


def _insert_span(conn: Connection, at: datetime, span_id: bytes) -> int:
    return conn.execute(
        text(
            "INSERT INTO spans (org_id, trace_id, span_id, name, start_time, end_time, duration_ms) "
            "VALUES (:o, :t, :s, 'op', :ts, :ts, 2) ON CONFLICT DO NOTHING"
        ),
        {"o": ORG, "t": b"\x01" * 16, "s": span_id, "ts": at},
    ).rowcount


def _insert_event(conn: Connection, at: datetime, event_id: bytes) -> int:
    return conn.execute(
        text(
            "INSERT INTO events (org_id, time, event_id, message) VALUES (:o, :ts, :e, 'hi') "
            "ON CONFLICT DO NOTHING"
        ),
        {"o": ORG, "ts": at, "e": event_id},
    ).rowcount


def test_rows_of_any_time_are_accepted_and_stored_once(database: Database) -> None:
    with database.app_engine().begin() as conn:
        act_as(conn, Scope(DbRole.INGEST))
        for i, at in enumerate(TIMES):
            assert _insert_span(conn, at, bytes([i]) * 8) == 1
            assert _insert_event(conn, at, bytes([i]) * 16) == 1
        # A retried export: the same rows again are not stored twice.
        for i, at in enumerate(TIMES):
            assert _insert_span(conn, at, bytes([i]) * 8) == 0
            assert _insert_event(conn, at, bytes([i]) * 16) == 0
    with database.app_engine().begin() as conn:
        act_as(conn, Scope(DbRole.TENANT, ORG))
        assert conn.execute(text("SELECT count(*) FROM spans")).scalar() == len(TIMES)
        assert conn.execute(text("SELECT count(*) FROM events")).scalar() == len(TIMES)


def test_partition_maintenance_places_rows(database: Database, engine_kind: StorageEngine) -> None:
    app = database.app_engine()
    with app.begin() as conn:
        act_as(conn, Scope(DbRole.INGEST))
        for i, at in enumerate(TIMES):
            _insert_span(conn, at, bytes([i]) * 8)
    with scoped_transaction(app, Scope(DbRole.WORKER)) as conn:
        created = ensure_partitions(conn, NOW, behind=timedelta(days=1), ahead=timedelta(days=2))
    with scoped_transaction(app, Scope(DbRole.WORKER)) as conn:
        again = ensure_partitions(conn, NOW, behind=timedelta(days=1), ahead=timedelta(days=2))
    with database.admin_engine().connect() as conn:
        total = conn.execute(text("SELECT count(*) FROM spans")).scalar()
        if engine_kind is StorageEngine.POSTGRES:
            in_default = conn.execute(text("SELECT count(*) FROM spans_default")).scalar()
            today = conn.execute(text("SELECT count(*) FROM spans_p20261128")).scalar()
    assert total == len(TIMES)
    if engine_kind is StorageEngine.TIMESCALE:
        assert created == {}
        assert again == {}
        return
    assert created["spans"] == 4  # 27th .. 30th
    assert created["cost_line_items"] >= 1
    assert set(again.values()) == {0}
    assert today == 2  # the rows at NOW and NOW + 5 h moved out of DEFAULT
    assert in_default == 2  # 40 days ago and 30 days ahead: no partition yet, still kept
    app.dispose()


def test_partition_function_rejects_bad_input(
    database: Database, engine_kind: StorageEngine
) -> None:
    if engine_kind is not StorageEngine.POSTGRES:
        pytest.skip("partitions are managed by the extension on TimescaleDB")
    with database.app_engine().begin() as conn:
        act_as(conn, Scope(DbRole.WORKER))
        with pytest.raises(Exception, match="not time-partitioned"):
            conn.execute(text("SELECT aeos_ensure_partitions('orgs', now(), now())"))


def test_every_raw_table_is_time_split(database: Database, engine_kind: StorageEngine) -> None:
    """Each raw table has exactly the time column and interval the schema declares."""
    with database.admin_engine().connect() as conn:
        meta: dict[str, str] = {
            k: v for k, v in conn.execute(text("SELECT key, value FROM aeos_meta"))
        }
    assert meta["storage_engine"] == engine_kind.value
    assert set(PARTITIONED) == set(EXPECTED_INTERVALS)
    for table, spec in PARTITIONED.items():
        assert meta[f"partition_column.{table}"] == spec.time_column
        assert (meta[f"partition_interval.{table}"], spec.interval) == EXPECTED_INTERVALS[table]
    with scoped_transaction(database.app_engine(), Scope(DbRole.WORKER)) as conn:
        ensure_partitions(conn, NOW, behind=timedelta(0), ahead=timedelta(days=1))
    with database.admin_engine().connect() as conn:
        for table, (_, interval) in EXPECTED_INTERVALS.items():
            assert _split_widths(conn, engine_kind, table) == {interval}, table


def _split_widths(conn: Connection, engine_kind: StorageEngine, table: str) -> set[timedelta]:
    """The widths of the table's partitions or chunks as the engine actually made them."""
    if engine_kind is StorageEngine.TIMESCALE:
        sql = (
            "SELECT time_interval FROM timescaledb_information.dimensions "
            "WHERE hypertable_schema = 'public' AND hypertable_name = :t"
        )
    else:
        sql = (
            "SELECT range_end - range_start FROM aeos_partition_bounds(CAST(:t AS regclass)) "
            "WHERE range_end IS NOT NULL"
        )
    return set(conn.execute(text(sql), {"t": table}).scalars())
