"""Rollup sums saturate at 2^63 - 1 on both engines, and migration 0017 loses no rollup.

Overflow: 1,100 histogram points of one series in one minute, each with count 2^53 (the
per-item bound of ``otlp_receiver._translate._bounds``), pass 2^63 - 1 in a sum. Before
0017 a TimescaleDB refresh raised "bigint out of range" on them, for every org's window.
Now every level of ``metric_rollup`` (and ``cost_daily``'s tokens) reads the saturated
value on both engines, in both job states, and so do the readers.

Migration: 0017 recreates continuous aggregates. Rollup rows whose raw rows were pruned
(1 day rollups outlive raw data) must still be there afterwards.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.engine import URL

from storage import admin, scoped_transaction
from storage.database import Database
from storage.ingest.rollups import cagg_refresh_order
from storage.ingest.rows import Batch, LlmCall, MetricPointRow, SpanRow
from storage.ingest.writer import IngestWriter
from storage.migrate import StorageEngine, alembic_config
from storage.read._common import Availability
from storage.read.costs import cost_report
from storage.read.query import Filter, Measure, MetricsQuery, run_query
from storage.schema import MAX_BIGINT
from storage.tenancy import DbRole, Scope
from tests._migrating import database_at, migrated_to
from tests._tsdb_jobs import jobs, run_every_job
from tests.conftest import BackgroundJobs, PgServer, settle

pytestmark = pytest.mark.usefixtures("pg_server")

MINUTE = 60 * 10**9
DAY = 1440 * MINUTE
MAX_COUNT = 2**53
POINTS = 1_100  # x 2^53 > 2^63 - 1
#: Two hours ago, on the hour: inside every 1 min and 1 h refresh window.
T_HOUR = (time.time_ns() // (60 * MINUTE)) * 60 * MINUTE - 2 * 60 * MINUTE


def _histogram(i: int, t: int) -> MetricPointRow:
    return MetricPointRow(
        metric="big", series_id=b"\x01" * 16, time_ns=t + i * 1000, start_ns=None, temporality=1,
        is_monotonic=False, unit="1", subsystem="DAMN", service_name=None, agent_id="a",
        attributes={}, resource_attributes={}, kind="histogram", count=MAX_COUNT, sum=1.0,
        min=0.5, max=2.0, explicit_bounds=[1.0], bucket_counts=[MAX_COUNT, 0],
    )  # fmt: skip


def _call(i: int, t: int, tokens: int) -> LlmCall:
    return LlmCall(
        i.to_bytes(16, "big"), i.to_bytes(8, "big"), t, None, "a", "SYSTEM", "anthropic",
        "m", tokens, tokens, 0, 0, 0.25,
    )  # fmt: skip


def _span(i: int, t: int) -> SpanRow:
    return SpanRow(
        trace_id=i.to_bytes(16, "big"), span_id=i.to_bytes(8, "big"), parent_span_id=None,
        trace_state=None, name="llm", kind=1, start_ns=t, end_ns=t + 10**6, status_code=0,
        status_message=None, subsystem="SYSTEM", service_name=None, agent_id="a",
        fleet_id=None, task_run_id=None, gen_ai_operation=None, gen_ai_provider=None,
        gen_ai_model=None, input_tokens=None, output_tokens=None, scope_name=None,
        attributes={}, resource_attributes={},
    )  # fmt: skip


def _calls(org: uuid.UUID, t: int, n: int, tokens: int) -> Batch:
    """``n`` LLM calls (on spans of their own: a call counts with its new span)."""
    return Batch(
        org,
        spans=[_span(i, t + i * 1000) for i in range(n)],
        llm_calls=[_call(i, t + i * 1000, tokens) for i in range(n)],
    )


def _write(db: Database, batches: list[Batch]) -> None:
    async def run() -> None:
        writer = IngestWriter(db.app_conninfo(), flushers=1)
        await writer.start()
        try:
            for batch in batches:
                await writer.write(batch)
        finally:
            await writer.close()

    asyncio.run(run())


def _org(db: Database) -> uuid.UUID:
    with scoped_transaction(db.admin_engine(), Scope(DbRole.STAFF)) as conn:
        return admin.create_org(conn, f"big-{uuid.uuid4().hex[:6]}", "pro").org_id


def _refresh_all(db: Database) -> None:
    with db.admin_engine().connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        for name in cagg_refresh_order():
            conn.execute(text(f"CALL refresh_continuous_aggregate('{name}', NULL, NULL)"))


def _metric_levels(conn: Connection, org: uuid.UUID) -> dict[str, list[tuple[Any, ...]]]:
    return {
        level: [
            tuple(r)
            for r in conn.execute(
                text(
                    f"SELECT bucket, count, observations, bucket_counts FROM metric_rollup_{level} "
                    "WHERE org_id = :o ORDER BY bucket"
                ),
                {"o": org},
            )
        ]
        for level in ("1m", "1h", "1d")
    }


def test_overflowing_sums_saturate_and_readers_return_them(
    database: Database, background_jobs: BackgroundJobs
) -> None:
    org = _org(database)
    t2 = T_HOUR + 5 * MINUTE  # a second minute of the same hour, without overflow
    tokens = 2**62  # three calls of one day: 3 x 2^62 > 2^63 - 1
    batches = [
        Batch(org, metric_points=[_histogram(i, T_HOUR) for i in range(j, j + 100)])
        for j in range(0, POINTS, 100)
    ]
    batches.append(Batch(org, metric_points=[_histogram(POINTS + i, t2) for i in range(3)]))
    batches.append(_calls(org, T_HOUR, 3, tokens))
    _write(database, batches)
    settle(database)  # jobs-ran: every refresh policy ran on this input, and succeeded
    if database.engine_kind is StorageEngine.TIMESCALE:
        _refresh_all(database)
    with database.admin_engine().connect() as conn:
        levels = _metric_levels(conn, org)
        costs = conn.execute(
            text("SELECT calls, tokens_in, tokens_out FROM cost_daily WHERE org_id = :o"),
            {"o": org},
        ).all()
    minute = datetime.fromtimestamp(T_HOUR // 10**9, UTC)
    second = minute + timedelta(minutes=5)
    assert levels["1m"] == [
        (minute, POINTS, MAX_BIGINT, [MAX_BIGINT, 0]),
        (second, 3, 3 * MAX_COUNT, [3 * MAX_COUNT, 0]),
    ]
    assert levels["1h"] == [(minute, POINTS + 3, MAX_BIGINT, [MAX_BIGINT, 0])]
    day = minute.replace(hour=0)
    assert levels["1d"] == [(day, POINTS + 3, MAX_BIGINT, [MAX_BIGINT, 0])]
    assert costs == [(3, MAX_BIGINT, MAX_BIGINT)]
    _check_readers(database, org, minute)


def _check_readers(db: Database, org: uuid.UUID, minute: datetime) -> None:
    """The readers add saturated rows without failing (and saturate again)."""
    with scoped_transaction(db.app_engine(), Scope(DbRole.TENANT, org)) as conn:
        q = MetricsQuery(
            "metric_rollup",
            (Measure("observations", "sum"), Measure("points", "sum")),
            minute,
            minute + timedelta(hours=1),
            filters=(Filter("metric", "eq", ("big",)),),
        )
        got = run_query(conn, q, available=Availability.unlimited())
        assert got.rows == ((MAX_BIGINT, POINTS + 3),)
        day = minute.replace(hour=0)
        report = cost_report(conn, start=day, end=day + timedelta(days=1))
        assert (report.totals.calls, report.totals.tokens_in) == (3, MAX_BIGINT)


# --- migration 0017 keeps what the aggregates hold --------------------------------------


@pytest.fixture
def db_at_0016(
    empty_database: URL, engine_kind: StorageEngine, templates: Any, pg_server: PgServer
) -> Iterator[Database]:
    """A database migrated to 0016, whose app login has the test password."""
    with database_at(empty_database, engine_kind, pg_server, "0016") as db:
        yield db


REFRESH_POLICY = "policy_refresh_continuous_aggregate"
_RELATIONS = ("metric_rollup_1m", "metric_rollup_1h", "metric_rollup_1d", "cost_daily")


def _snapshot(conn: Connection, org: uuid.UUID) -> dict[str, list[tuple[Any, ...]]]:
    return {
        name: [
            tuple(r)
            for r in conn.execute(
                text(f"SELECT * FROM {name} WHERE org_id = :o ORDER BY bucket"), {"o": org}
            )
        ]
        for name in _RELATIONS
    }


def test_0017_keeps_rollups_whose_raw_rows_were_pruned(
    db_at_0016: Database, engine_kind: StorageEngine
) -> None:
    db = db_at_0016
    org = _org(db)
    old = (time.time_ns() // DAY - 40) * DAY + 10 * MINUTE  # past every refresh window
    _write(
        db,
        [
            Batch(org, metric_points=[_histogram(i, old) for i in range(5)]),
            _calls(org, old, 2, 1000),
        ],
    )
    if engine_kind is StorageEngine.TIMESCALE:
        _refresh_all(db)
    with db.admin_engine().begin() as conn:
        before = _snapshot(conn, org)
        conn.execute(text("DELETE FROM metric_points WHERE org_id = :o"), {"o": org})
        conn.execute(text("DELETE FROM cost_line_items WHERE org_id = :o"), {"o": org})
    assert all(before.values()), before
    migrated_to(db.admin_url, engine_kind, "head")
    with db.admin_engine().connect() as conn:
        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == head
        assert _snapshot(conn, org) == before
    if engine_kind is StorageEngine.TIMESCALE:  # the new policies run, and keep them too
        conninfo = db.admin_url.set(drivername="postgresql").render_as_string(False)
        with psycopg.connect(conninfo) as pg:
            policies = {j.relation for j in jobs(pg) if j.proc_name == REFRESH_POLICY}
        assert policies >= set(_RELATIONS)
        run_every_job(conninfo)
        with db.admin_engine().connect() as conn:
            assert _snapshot(conn, org) == before
    # Tenants still read them through their views, and new rows still arrive in real time.
    now = (time.time_ns() // MINUTE - 5) * MINUTE
    _write(db, [Batch(org, metric_points=[_histogram(100 + i, now) for i in range(2)])])
    with scoped_transaction(db.app_engine(), Scope(DbRole.TENANT, org)) as conn:
        days = conn.execute(
            text("SELECT bucket, observations FROM metric_rollup_1d ORDER BY bucket")
        ).all()
        levels = conn.execute(
            text("SELECT count(*) FROM metric_rollup_levels WHERE level = interval '1 day'")
        ).scalar()
    assert days[0] == (before["metric_rollup_1d"][0][0], 5 * MAX_COUNT)
    assert days[-1][1] == 2 * MAX_COUNT
    assert levels == len(days) == 2
