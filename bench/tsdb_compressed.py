"""TimescaleDB columnstore benchmark: retention inside a compressed chunk, late-span ingest.

    AEOS_TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:55432/postgres \\
        .venv/bin/python bench/tsdb_compressed.py [--rows 1000000 --orgs 50 --late 20000]

Needs a TimescaleDB server (a superuser URL); makes its own databases and drops them.
Every TimescaleDB job is unscheduled, so nothing runs behind the measurements.

1. retention: one 1-day ``spans`` chunk, 5 days old, holding ``--rows`` spans of
   ``--orgs`` orgs, compressed (the ``spans`` columnstore policy, segmented by org). One
   org is on the free plan (spans kept 3 days), the others on enterprise (14 days), so the
   chunk stays and retention must prune one day of one org out of it. Timed:
   ``run_retention`` as the service runs it (every relation), then retention's ``spans``
   step alone (by segment: ``--repeat`` times, the org's day put back and recompressed
   each time), once with a Parquet export, and, on the same rows put back, the
   alternative this code does not use: decompress the chunk, delete, compress it again.
2. late ingest: ``--late`` spans 5 days late, through the product's ``IngestWriter``
   (500-span batches, 4 in flight) into a chunk of 200 000 spans that is compressed, and
   into one that is not; then the same spans again (a retried export, all duplicates).
Prints a table and, last, a one-line JSON summary. Timings only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import Engine
from sqlalchemy.engine import URL

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from storage import admin  # noqa: E402
from storage.database import Database  # noqa: E402
from storage.errors import MigrationError  # noqa: E402
from storage.ingest.rows import Batch, SpanRow  # noqa: E402
from storage.ingest.writer import IngestWriter  # noqa: E402
from storage.migrate import StorageEngine, migrate  # noqa: E402
from storage.retention._export import ParquetExport  # noqa: E402
from storage.retention._prune import prune  # noqa: E402
from storage.retention._targets import find_targets  # noqa: E402
from storage.retention.run import (  # noqa: E402
    DEFAULT_BATCH_SIZE,
    load_windows,
    plan_target,
    run_retention,
)
from storage.settings import EngineChoice, parse_database_url  # noqa: E402
from storage.tenancy import DbRole, Scope, act_as  # noqa: E402

DAY = timedelta(days=1)
BATCH = 500
IN_FLIGHT = 4

SEED_SPANS = """
INSERT INTO spans (org_id, trace_id, span_id, name, start_time, end_time, duration_ms,
                   service_name, attributes)
SELECT o.id, decode(md5(o.n || ':' || i), 'hex'), substr(decode(md5(i || ':' || o.n), 'hex'), 1, 8),
       'op-' || (i %% 20), %(day)s::timestamptz + (i * %(step)s::interval),
       %(day)s::timestamptz + (i * %(step)s::interval) + interval '5 ms', 5.0, 'svc',
       '{"k": 1}'::jsonb
  FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM orgs) o,
       generate_series(0, %(per_org)s - 1) AS i
"""


def _conninfo(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def _fresh(server: URL) -> tuple[Database, str]:
    name = f"aeos_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(_conninfo(server), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = server.set(database=name)
    for attempt in range(5):  # roles are cluster-wide: a concurrent migration may collide
        try:
            migrate(url, EngineChoice.TIMESCALE)
            break
        except MigrationError as exc:
            if "concurrently updated" not in str(exc) or attempt == 4:
                raise
            time.sleep(1 + attempt)
    with psycopg.connect(_conninfo(url), autocommit=True) as conn:
        conn.execute(
            "SELECT alter_job(job_id, scheduled => false) FROM timescaledb_information.jobs"
        )
    return Database(url, None), name


def _drop(server: URL, name: str) -> None:
    with psycopg.connect(_conninfo(server), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _orgs(db: Database, count: int) -> list[uuid.UUID]:
    """``count`` orgs: the first on the free plan, the others on enterprise."""
    with db.admin_engine().begin() as conn:
        return [
            admin.create_org(conn, f"org-{i:03d}", "free" if i == 0 else "enterprise").org_id
            for i in range(count)
        ]


def _seed_day(db: Database, day: datetime, rows: int, orgs: int) -> None:
    per_org = rows // orgs
    step = timedelta(days=1) / per_org
    with psycopg.connect(_conninfo(db.admin_url), autocommit=True) as conn:
        conn.execute(SEED_SPANS, {"day": day, "step": step, "per_org": per_org})
        conn.execute("VACUUM ANALYZE spans")


def _chunk(db: Database, day: datetime) -> str:
    with psycopg.connect(_conninfo(db.admin_url), autocommit=True) as conn:
        row = conn.execute(
            "SELECT format('%%I.%%I', chunk_schema, chunk_name) FROM timescaledb_information.chunks "
            "WHERE hypertable_name = 'spans' AND range_start = %s",
            [day],
        ).fetchone()
    assert row is not None
    return str(row[0])


def _sql(db: Database, statement: str, params: Any = None) -> float:
    began = time.perf_counter()
    with psycopg.connect(_conninfo(db.admin_url), autocommit=True) as conn:
        conn.execute(statement, params)
    return time.perf_counter() - began


def bench_retention(server: URL, rows: int, orgs: int, repeat: int) -> dict[str, Any]:
    db, name = _fresh(server)
    try:
        ids = _orgs(db, orgs)
        now = datetime.now(UTC)
        day = datetime.combine((now - 5 * DAY).date(), datetime.min.time(), UTC)
        _seed_day(db, day, rows, orgs)
        chunk = _chunk(db, day)
        compress_s = _sql(db, "SELECT compress_chunk(%s)", [chunk])
        engine = db.app_engine(pool_size=2)
        began = time.perf_counter()
        report = run_retention(engine, now)
        run_s = time.perf_counter() - began
        pruned = sum(report.as_dict()["relations"]["spans"]["rows"].values())
        segment_s: list[float] = []
        for _ in range(repeat):  # the spans step alone, on the org's day put back
            _put_back(db, day, rows // orgs, ids[0], chunk)
            segment_s.append(_prune_spans(engine, now, None))
        _put_back(db, day, rows // orgs, ids[0], chunk)
        with tempfile.TemporaryDirectory() as tmp:
            export_s = _prune_spans(engine, now, ParquetExport(Path(tmp), now))
        _put_back(db, day, rows // orgs, ids[0], chunk)
        whole_s = _decompress_delete_recompress(db, chunk, ids[0], now - 3 * DAY)
        engine.dispose()
        return {
            "chunk_rows": rows, "orgs": orgs, "pruned_rows": pruned,
            "compress_chunk_s": compress_s, "retention_run_s": run_s,
            "segment_delete_s_median": statistics.median(segment_s),
            "segment_delete_s_all": [round(x, 3) for x in segment_s],
            "segment_delete_with_export_s": export_s,
            "decompress_delete_recompress_s": whole_s,
        }  # fmt: skip
    finally:
        db.close()
        _drop(server, name)


def _prune_spans(engine: Engine, now: datetime, export: ParquetExport | None) -> float:
    """Seconds for retention's ``spans`` step alone (what ``run_retention`` does for it)."""
    with engine.begin() as conn:
        act_as(conn, Scope(DbRole.WORKER))
        windows = load_windows(conn)
        target = next(
            t for t in find_targets(conn, StorageEngine.TIMESCALE) if t.relation == "spans"
        )
    began = time.perf_counter()
    report = prune(engine, plan_target(target, windows, now), dry_run=False, export=export,
                   batch_size=DEFAULT_BATCH_SIZE)  # fmt: skip
    seconds = time.perf_counter() - began
    assert sum(report.rows.values()) > 0, report
    return seconds


def _put_back(db: Database, day: datetime, per_org: int, org: uuid.UUID, chunk: str) -> None:
    step = timedelta(days=1) / per_org
    _sql(
        db,
        SEED_SPANS.replace("FROM orgs) o", "FROM orgs WHERE id = %(org)s) o"),
        {"day": day, "step": step, "per_org": per_org, "org": org},
    )
    _sql(db, "SELECT compress_chunk(%s)", [chunk])  # recompresses the partial chunk


def _decompress_delete_recompress(db: Database, chunk: str, org: uuid.UUID, cutoff: Any) -> float:
    began = time.perf_counter()
    with psycopg.connect(_conninfo(db.admin_url), autocommit=True) as conn:
        conn.execute("SELECT decompress_chunk(%s)", [chunk])
        conn.execute("DELETE FROM spans WHERE org_id = %s AND start_time < %s", [org, cutoff])
        conn.execute("SELECT compress_chunk(%s)", [chunk])
    return time.perf_counter() - began


def _late_spans(org: uuid.UUID, start: datetime, count: int, salt: int) -> list[SpanRow]:
    base = int(start.timestamp() * 1e9)
    step = 86_400 * 10**9 // count
    return [
        SpanRow(
            trace_id=uuid.UUID(int=(salt << 64) + i).bytes, span_id=(i + 1).to_bytes(8, "big"),
            parent_span_id=None, trace_state=None, name=f"late-{i % 20}", kind=1,
            start_ns=base + i * step, end_ns=base + i * step + 5_000_000, status_code=0,
            status_message=None, subsystem="MOSAIC", service_name="svc", agent_id="a-1",
            fleet_id=None, task_run_id=None, gen_ai_operation=None, gen_ai_provider=None,
            gen_ai_model=None, input_tokens=None, output_tokens=None, scope_name="bench",
            attributes={"late": True}, resource_attributes={},
        )
        for i in range(count)
    ]  # fmt: skip


async def _write(db: Database, batches: list[Batch]) -> float:
    writer = IngestWriter(db.app_conninfo(), flushers=2)
    await writer.start()
    began = time.perf_counter()
    try:
        for i in range(0, len(batches), IN_FLIGHT):
            await asyncio.gather(*(writer.write(b) for b in batches[i : i + IN_FLIGHT]))
    finally:
        await writer.close()
    return time.perf_counter() - began


def bench_late_ingest(server: URL, late: int, orgs: int) -> dict[str, Any]:
    db, name = _fresh(server)
    try:
        ids = _orgs(db, orgs)
        now = datetime.now(UTC)
        days = {
            kind: datetime.combine((now - offset * DAY).date(), datetime.min.time(), UTC)
            for kind, offset in (("compressed", 5), ("uncompressed", 6))
        }
        for day in days.values():
            _seed_day(db, day, 200_000, orgs)
        _sql(db, "SELECT compress_chunk(%s)", [_chunk(db, days["compressed"])])
        out: dict[str, Any] = {"late_spans": late}
        for salt, (kind, day) in enumerate(days.items(), start=1):
            spans = _late_spans(ids[1], day, late, salt)
            batches = [Batch(ids[1], spans=spans[i : i + BATCH]) for i in range(0, late, BATCH)]
            seconds = asyncio.run(_write(db, batches))
            retry = asyncio.run(_write(db, batches))
            out[f"{kind}_spans_per_s"] = late / seconds
            out[f"{kind}_retry_spans_per_s"] = late / retry
        return out
    finally:
        db.close()
        _drop(server, name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--orgs", type=int, default=50)
    parser.add_argument("--late", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    raw = os.environ.get("AEOS_TEST_DATABASE_URL")
    if not raw:
        sys.exit("set AEOS_TEST_DATABASE_URL to a TimescaleDB server (a superuser URL)")
    server = parse_database_url(raw)
    retention = bench_retention(server, args.rows, args.orgs, args.repeat)
    ingest = bench_late_ingest(server, args.late, args.orgs)
    print(f"{'measure':44} value")
    for key, value in {**retention, **ingest}.items():
        text = f"{value:,.3f}" if isinstance(value, float) else str(value)
        print(f"{key:44} {text}")
    print(json.dumps({"retention": retention, "late_ingest": ingest}))


if __name__ == "__main__":
    main()
