"""The ingest writer into compressed TimescaleDB chunks: late spans and retried exports.

A span that arrives days late lands in a chunk the columnstore policy has compressed, and
so does a retried export of spans stored days ago. TimescaleDB checks the primary key of
such rows against the compressed batches (decompressing the candidates); the writer's
fast path (COPY) then fails on the duplicates and its slow path (ON CONFLICT DO NOTHING)
must store only the new rows. The server's cap on rows a DML transaction may decompress
(``timescaledb.max_tuples_decompressed_per_dml_transaction``, default 100 000) is lowered
to 100 for the test database: it must not stop ingest (measured: it applies to UPDATE and
DELETE, not to these inserts).
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from sqlalchemy import text

from storage import admin
from storage.database import Database
from storage.ingest.rows import Batch, SpanRow
from storage.ingest.writer import IngestWriter, WriteResult
from storage.migrate import StorageEngine
from tests.conftest import settle

# Both TimescaleDB job states (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("background_jobs")

PER_BATCH = 100


@pytest.fixture(params=[pytest.param(StorageEngine.TIMESCALE, marks=pytest.mark.timescale)])
def engine_kind(request: pytest.FixtureRequest) -> StorageEngine:
    """Compressed chunks exist only on TimescaleDB."""
    kind: StorageEngine = request.param
    return kind


def _spans(day: datetime, count: int, salt: int) -> list[SpanRow]:
    base = int(day.timestamp() * 1e9)
    step = 86_400 * 10**9 // count
    return [
        SpanRow(
            trace_id=uuid.UUID(int=(salt << 64) + i).bytes, span_id=(i + 1).to_bytes(8, "big"),
            parent_span_id=None, trace_state=None, name="op", kind=1,
            start_ns=base + i * step, end_ns=base + i * step + 1_000_000, status_code=0,
            status_message=None, subsystem="MOSAIC", service_name="svc", agent_id="a",
            fleet_id=None, task_run_id=None, gen_ai_operation=None, gen_ai_provider=None,
            gen_ai_model=None, input_tokens=None, output_tokens=None, scope_name="t",
            attributes={}, resource_attributes={},
        )
        for i in range(count)
    ]  # fmt: skip


def _write(db: Database, org: uuid.UUID, spans: list[SpanRow]) -> list[WriteResult]:
    async def run() -> list[WriteResult]:
        writer = IngestWriter(db.app_conninfo(), flushers=1)
        await writer.start()
        try:
            batches = [
                Batch(org, spans=spans[i : i + PER_BATCH]) for i in range(0, len(spans), PER_BATCH)
            ]
            return list(await asyncio.gather(*(writer.write(b) for b in batches)))
        finally:
            await writer.close()

    return asyncio.run(run())


def test_late_and_retried_spans_into_a_compressed_chunk(database: Database) -> None:
    with database.admin_engine().begin() as conn:
        org = admin.create_org(conn, "late", "enterprise").org_id
    day = datetime.combine((datetime.now(UTC) - timedelta(days=5)).date(), datetime.min.time(), UTC)
    stored = _spans(day, 2000, salt=1)
    assert sum(r.spans for r in _write(database, org, stored)) == 2000
    settle(database)
    conninfo = database.admin_url.set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        chunk = conn.execute(
            "SELECT format('%%I.%%I', chunk_schema, chunk_name) FROM timescaledb_information.chunks "
            "WHERE hypertable_name = 'spans' AND range_start = %s",
            [day],
        ).fetchone()
        assert chunk is not None
        conn.execute("SELECT compress_chunk(%s, if_not_compressed => true)", [chunk[0]])
        name = database.admin_url.database
        conn.execute(
            f'ALTER DATABASE "{name}" SET timescaledb.max_tuples_decompressed_per_dml_transaction'
            " = 100"
        )

    late = _spans(day + timedelta(minutes=1), 500, salt=2)
    retried = stored[::4]  # an export stored days ago, sent again
    results = _write(database, org, late + retried)

    assert sum(r.spans for r in results) == len(late)
    assert sum(r.duplicates for r in results) == len(retried)
    with database.admin_engine().connect() as conn:
        total, distinct = conn.execute(
            text(
                "SELECT count(*), count(DISTINCT (trace_id, span_id)) FROM spans WHERE org_id = :o"
            ),
            {"o": org},
        ).one()
        summaries = conn.execute(
            text("SELECT count(*), sum(span_count) FROM traces WHERE org_id = :o"), {"o": org}
        ).one()
    assert (total, distinct) == (2500, 2500)
    assert tuple(summaries) == (2500, 2500)  # one trace per span here, each counted once
