"""The statements of one ingest transaction (psycopg 3, async, binary COPY).

Raw rows go in with binary COPY straight into their tables (the fast path). A retried
export makes that COPY fail on a primary key; the transaction is then redone through
temporary tables and ``INSERT ... ON CONFLICT DO NOTHING RETURNING`` (the slow path,
as Promscale does), which tells which rows were new. Derived rows are computed from the
new rows only and upserted with ``unnest`` arrays, sorted by key.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from psycopg import AsyncConnection, sql
from psycopg.adapt import Dumper
from psycopg.pq import Format
from psycopg.types.json import set_json_dumps

from storage._derive import CostItem, TaskRunUpdate, TraceSummary
from storage.rows import AgentSighting, EventRow, MetricPointRow, SpanRow

_PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01 in Unix microseconds
_TIMESTAMPTZ_OID = 1184
_PACK_Q = struct.Struct("!q").pack


class _NsTimestamptzDumper(Dumper):
    """Binary timestamptz from Unix nanoseconds (an ``int``), for COPY columns."""

    oid = _TIMESTAMPTZ_OID
    format = Format.BINARY

    def dump(self, obj: Any) -> bytes:
        return _PACK_Q(obj // 1000 - _PG_EPOCH_US)


class NsTime(int):
    """Marker type under which the nanosecond dumper is registered."""


def configure(conn: AsyncConnection[Any]) -> None:
    """Per-connection adapters: nanosecond timestamps and fast JSON for COPY."""
    conn.adapters.register_dumper(NsTime, _NsTimestamptzDumper)
    set_json_dumps(orjson.dumps, context=conn)


def ts(ns: int) -> datetime:
    """A ``datetime`` (UTC) from Unix nanoseconds, for non-COPY parameters."""
    return datetime.fromtimestamp(ns // 1000 / 1e6, UTC)


SPAN_COLUMNS = (
    ("org_id", "uuid"), ("trace_id", "bytea"), ("span_id", "bytea"), ("parent_span_id", "bytea"),
    ("trace_state", "text"), ("name", "text"), ("kind", "int2"), ("start_time", "timestamptz"),
    ("end_time", "timestamptz"), ("duration_ms", "float8"), ("status_code", "int2"),
    ("status_message", "text"), ("subsystem", "text"), ("service_name", "text"),
    ("agent_id", "text"), ("fleet_id", "text"), ("task_run_id", "text"),
    ("gen_ai_operation", "text"), ("gen_ai_provider", "text"), ("gen_ai_model", "text"),
    ("input_tokens", "int8"), ("output_tokens", "int8"), ("scope_name", "text"),
    ("attributes", "jsonb"), ("resource_attributes", "jsonb"), ("links", "bytea[]"),
    ("dropped_attributes_count", "int4"),
)  # fmt: skip
EVENT_COLUMNS = (
    ("org_id", "uuid"), ("time", "timestamptz"), ("event_id", "bytea"),
    ("observed_time", "timestamptz"), ("severity", "text"), ("severity_number", "int2"),
    ("subsystem", "text"), ("event_type", "text"), ("agent_id", "text"), ("fleet_id", "text"),
    ("task_run_id", "text"), ("trace_id", "bytea"), ("span_id", "bytea"),
    ("service_name", "text"), ("message", "text"), ("payload", "jsonb"),
    ("resource_attributes", "jsonb"),
)  # fmt: skip
METRIC_COLUMNS = (
    ("org_id", "uuid"), ("metric", "text"), ("series_id", "bytea"), ("time", "timestamptz"),
    ("start_time", "timestamptz"), ("kind", "text"), ("temporality", "int2"),
    ("is_monotonic", "bool"), ("unit", "text"), ("value", "float8"), ("count", "int8"),
    ("sum", "float8"), ("min", "float8"), ("max", "float8"), ("explicit_bounds", "float8[]"),
    ("bucket_counts", "int8[]"), ("exp_scale", "int4"), ("exp_zero_count", "int8"),
    ("exp_positive_offset", "int4"), ("exp_positive_counts", "int8[]"),
    ("exp_negative_offset", "int4"), ("exp_negative_counts", "int8[]"), ("subsystem", "text"),
    ("service_name", "text"), ("agent_id", "text"), ("attributes", "jsonb"),
    ("resource_attributes", "jsonb"),
)  # fmt: skip


def span_tuple(org_id: uuid.UUID, s: SpanRow) -> tuple[Any, ...]:
    """A COPY row of ``spans`` (order of ``SPAN_COLUMNS``)."""
    return (
        org_id, s.trace_id, s.span_id, s.parent_span_id, s.trace_state, s.name, s.kind,
        s.start_ns, s.end_ns, s.duration_ms, s.status_code, s.status_message, s.subsystem,
        s.service_name, s.agent_id, s.fleet_id, s.task_run_id, s.gen_ai_operation,
        s.gen_ai_provider, s.gen_ai_model, s.input_tokens, s.output_tokens, s.scope_name,
        s.attributes, s.resource_attributes, s.links, s.dropped_attributes_count,
    )  # fmt: skip


def event_tuple(org_id: uuid.UUID, e: EventRow) -> tuple[Any, ...]:
    """A COPY row of ``events`` (order of ``EVENT_COLUMNS``)."""
    return (
        org_id, e.time_ns, e.event_id, e.observed_ns, e.severity, e.severity_number,
        e.subsystem, e.event_type, e.agent_id, e.fleet_id, e.task_run_id, e.trace_id,
        e.span_id, e.service_name, e.message, e.payload, e.resource_attributes,
    )  # fmt: skip


def metric_tuple(org_id: uuid.UUID, m: MetricPointRow) -> tuple[Any, ...]:
    """A COPY row of ``metric_points`` (order of ``METRIC_COLUMNS``)."""
    return (
        org_id, m.metric, m.series_id, m.time_ns, m.start_ns, m.kind, m.temporality,
        m.is_monotonic, m.unit, m.value, m.count, m.sum, m.min, m.max, m.explicit_bounds,
        m.bucket_counts, m.exp_scale, m.exp_zero_count, m.exp_positive_offset,
        m.exp_positive_counts, m.exp_negative_offset, m.exp_negative_counts, m.subsystem,
        m.service_name, m.agent_id, m.attributes, m.resource_attributes,
    )  # fmt: skip


async def copy_rows(
    conn: AsyncConnection[Any],
    table: str,
    columns: Sequence[tuple[str, str]],
    rows: Iterable[tuple[Any, ...]],
) -> None:
    """Binary COPY of ``rows`` into ``table``."""
    names = sql.SQL(", ").join(sql.Identifier(c) for c, _ in columns)
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        sql.Identifier(table), names
    )
    async with conn.cursor().copy(statement) as copy:
        copy.set_types([t for _, t in columns])
        for row in rows:
            await copy.write_row(row)


async def insert_new(
    conn: AsyncConnection[Any],
    table: str,
    columns: Sequence[tuple[str, str]],
    rows: Sequence[tuple[Any, ...]],
    key: Sequence[str],
) -> set[tuple[Any, ...]]:
    """Slow path: COPY into a temp table, insert what is new; returns the new rows' keys."""
    temp = f"_in_{table}"
    await conn.execute(
        sql.SQL(
            "CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        ).format(sql.Identifier(temp), sql.Identifier(table))
    )
    await copy_rows(conn, temp, columns, rows)
    names = sql.SQL(", ").join(sql.Identifier(c) for c, _ in columns)
    returning = sql.SQL(", ").join(_key_expr(k) for k in key)
    cur = await conn.execute(
        sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT DO NOTHING RETURNING {}").format(
            sql.Identifier(table), names, names, sql.Identifier(temp), returning
        )
    )
    return {tuple(r) for r in await cur.fetchall()}


def _key_expr(column: str) -> sql.Composable:
    if column.endswith("time"):  # compare as Unix microseconds, as the rows hold them
        return sql.SQL("(extract(epoch FROM {}) * 1000000)::bigint").format(sql.Identifier(column))
    return sql.Identifier(column)


UPSERT_TRACES = """
INSERT INTO traces AS t (org_id, trace_id, start_time, end_time, duration_ms, span_count,
                         error_count, root_service_name, root_span_name, task_run_id)
SELECT o, tr, s, e, extract(epoch FROM e - s) * 1000, n, err, rs, rn, run
  FROM unnest(%s::uuid[], %s::bytea[], %s::timestamptz[], %s::timestamptz[], %s::int[],
              %s::int[], %s::text[], %s::text[], %s::text[]) AS u(o, tr, s, e, n, err, rs, rn, run)
ON CONFLICT (org_id, trace_id) DO UPDATE SET
  start_time = LEAST(t.start_time, EXCLUDED.start_time),
  end_time = GREATEST(t.end_time, EXCLUDED.end_time),
  duration_ms = extract(epoch FROM GREATEST(t.end_time, EXCLUDED.end_time)
                                 - LEAST(t.start_time, EXCLUDED.start_time)) * 1000,
  span_count = t.span_count + EXCLUDED.span_count,
  error_count = t.error_count + EXCLUDED.error_count,
  root_service_name = COALESCE(EXCLUDED.root_service_name, t.root_service_name),
  root_span_name = COALESCE(EXCLUDED.root_span_name, t.root_span_name),
  task_run_id = COALESCE(t.task_run_id, EXCLUDED.task_run_id)
"""


async def upsert_traces(conn: AsyncConnection[Any], rows: Sequence[TraceSummary]) -> None:
    """Merges trace summaries into ``traces``."""
    if not rows:
        return
    await conn.execute(
        UPSERT_TRACES,
        [
            [r.org_id for r in rows], [r.trace_id for r in rows],
            [ts(r.start_ns) for r in rows], [ts(r.end_ns) for r in rows],
            [r.span_count for r in rows], [r.error_count for r in rows],
            [r.root_service_name for r in rows], [r.root_span_name for r in rows],
            [r.task_run_id for r in rows],
        ],
    )  # fmt: skip


UPSERT_FLEETS = """
INSERT INTO fleets AS f (org_id, fleet_id, name, last_seen_at)
SELECT o, fl, fl, seen FROM unnest(%s::uuid[], %s::text[], %s::timestamptz[]) AS u(o, fl, seen)
ON CONFLICT (org_id, fleet_id) DO UPDATE
  SET last_seen_at = GREATEST(f.last_seen_at, EXCLUDED.last_seen_at)
"""

UPSERT_AGENTS = """
INSERT INTO agents AS a (org_id, agent_id, fleet_id, name, subsystem, version, service_name,
                         resource_attributes, last_seen_at, last_heartbeat_at, status)
SELECT o, ag, fl, nm, sub, ver, svc, res, seen, beat, COALESCE(st, 'online')
  FROM unnest(%s::uuid[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[],
              %s::text[], %s::jsonb[], %s::timestamptz[], %s::timestamptz[], %s::text[])
       AS u(o, ag, fl, nm, sub, ver, svc, res, seen, beat, st)
ON CONFLICT (org_id, agent_id) DO UPDATE SET
  fleet_id = COALESCE(EXCLUDED.fleet_id, a.fleet_id),
  name = EXCLUDED.name,
  subsystem = EXCLUDED.subsystem,
  version = CASE WHEN EXCLUDED.last_seen_at >= a.last_seen_at OR a.last_seen_at IS NULL
                 THEN COALESCE(EXCLUDED.version, a.version) ELSE a.version END,
  service_name = COALESCE(EXCLUDED.service_name, a.service_name),
  resource_attributes = EXCLUDED.resource_attributes,
  last_seen_at = GREATEST(a.last_seen_at, EXCLUDED.last_seen_at),
  last_heartbeat_at = GREATEST(a.last_heartbeat_at, EXCLUDED.last_heartbeat_at),
  status = CASE WHEN EXCLUDED.last_heartbeat_at IS NOT NULL
                 AND (a.last_heartbeat_at IS NULL
                      OR EXCLUDED.last_heartbeat_at >= a.last_heartbeat_at)
                THEN EXCLUDED.status ELSE a.status END
"""


async def upsert_agents(
    conn: AsyncConnection[Any], rows: Sequence[tuple[uuid.UUID, AgentSighting]]
) -> None:
    """Upserts ``agents`` (and their ``fleets``) from resource sightings."""
    if not rows:
        return
    fleets = sorted({(o, a.fleet_id): a.seen_ns for o, a in rows if a.fleet_id}.items())
    if fleets:
        await conn.execute(
            UPSERT_FLEETS,
            [[k[0] for k, _ in fleets], [k[1] for k, _ in fleets], [ts(v) for _, v in fleets]],
        )
    await conn.execute(
        UPSERT_AGENTS,
        [
            [o for o, _ in rows], [a.agent_id for _, a in rows], [a.fleet_id for _, a in rows],
            [a.name for _, a in rows], [a.subsystem for _, a in rows], [a.version for _, a in rows],
            [a.service_name for _, a in rows],
            [orjson.dumps(a.resource_attributes).decode() for _, a in rows],
            [ts(a.seen_ns) for _, a in rows],
            [ts(a.heartbeat_ns) if a.heartbeat_ns else None for _, a in rows],
            [a.status for _, a in rows],
        ],
    )  # fmt: skip


UPSERT_TASKS = """
INSERT INTO tasks AS t (org_id, task_id, title)
SELECT o, tk, ti FROM unnest(%s::uuid[], %s::text[], %s::text[]) AS u(o, tk, ti)
ON CONFLICT (org_id, task_id) DO UPDATE SET title = COALESCE(t.title, EXCLUDED.title)
"""

INSERT_TASK_RUNS = """
INSERT INTO task_runs (org_id, task_run_id, task_id, agent_id, status, started_at, ended_at,
                       trace_id)
SELECT o, run, tk, ag, COALESCE(st, 'running'), s, e, tr
  FROM unnest(%s::uuid[], %s::text[], %s::text[], %s::text[], %s::text[], %s::timestamptz[],
              %s::timestamptz[], %s::bytea[]) AS u(o, run, tk, ag, st, s, e, tr)
ON CONFLICT (org_id, task_run_id) DO NOTHING
"""

# Merge rules: a terminal status (succeeded, failed, canceled) is only replaced by what the
# run's own (root) span says; the root span gives the run's duration and trace.
UPDATE_TASK_RUNS = """
UPDATE task_runs AS r SET
  task_id = COALESCE(r.task_id, u.tk),
  agent_id = COALESCE(r.agent_id, u.ag),
  status = CASE WHEN u.st IS NULL THEN r.status
                WHEN r.status IN ('succeeded', 'failed', 'canceled') AND u.rs IS NULL THEN r.status
                ELSE u.st END,
  started_at = LEAST(r.started_at, u.s),
  ended_at = GREATEST(r.ended_at, u.e),
  duration_ms = CASE WHEN u.rs IS NOT NULL THEN extract(epoch FROM u.re - u.rs) * 1000
                     ELSE r.duration_ms END,
  trace_id = CASE WHEN u.rs IS NOT NULL THEN u.tr ELSE COALESCE(r.trace_id, u.tr) END
  FROM unnest(%s::uuid[], %s::text[], %s::text[], %s::text[], %s::text[], %s::timestamptz[],
              %s::timestamptz[], %s::timestamptz[], %s::timestamptz[], %s::bytea[])
       AS u(o, run, tk, ag, st, s, e, rs, re, tr)
 WHERE r.org_id = u.o AND r.task_run_id = u.run
"""


async def upsert_task_runs(conn: AsyncConnection[Any], rows: Sequence[TaskRunUpdate]) -> None:
    """Creates or merges task runs (and their tasks)."""
    if not rows:
        return
    tasks = sorted({(r.org_id, r.task_id): r.task_title for r in rows if r.task_id}.items())
    if tasks:
        await conn.execute(
            UPSERT_TASKS,
            [[k[0] for k, _ in tasks], [k[1] for k, _ in tasks], [t for _, t in tasks]],
        )
    common = [
        [r.org_id for r in rows], [r.task_run_id for r in rows], [r.task_id for r in rows],
        [r.agent_id for r in rows], [r.status for r in rows],
        [ts(r.start_ns) for r in rows], [ts(r.end_ns) for r in rows],
    ]  # fmt: skip
    traces = [r.trace_id for r in rows]
    await conn.execute(INSERT_TASK_RUNS, [*common, traces])
    roots = [
        [ts(r.root_start_ns) if r.root_start_ns is not None else None for r in rows],
        [ts(r.root_end_ns) if r.root_end_ns is not None else None for r in rows],
    ]
    await conn.execute(UPDATE_TASK_RUNS, [*common, *roots, traces])


INSERT_COSTS = """
INSERT INTO cost_line_items (org_id, time, trace_id, span_id, task_run_id, agent_id, subsystem,
                             provider, model, tokens_in, tokens_out, cache_read_tokens,
                             cache_creation_tokens, cost_usd, cost_source, price_id)
SELECT * FROM unnest(%s::uuid[], %s::timestamptz[], %s::bytea[], %s::bytea[], %s::text[],
                     %s::text[], %s::text[], %s::text[], %s::text[], %s::int8[], %s::int8[],
                     %s::int8[], %s::int8[], %s::numeric[], %s::text[], %s::int8[])
ON CONFLICT DO NOTHING
RETURNING org_id, task_run_id, cost_usd
"""

ADD_TASK_RUN_COSTS = """
UPDATE task_runs AS r SET cost_usd = r.cost_usd + u.c
  FROM unnest(%s::uuid[], %s::text[], %s::numeric[]) AS u(o, run, c)
 WHERE r.org_id = u.o AND r.task_run_id = u.run
"""


async def insert_costs(conn: AsyncConnection[Any], items: Sequence[CostItem]) -> int:
    """Inserts cost line items (new ones only) and adds their cost to their task runs."""
    if not items:
        return 0
    calls = [i.call for i in items]
    cur = await conn.execute(
        INSERT_COSTS,
        [
            [i.org_id for i in items], [ts(c.time_ns) for c in calls], [c.trace_id for c in calls],
            [c.span_id for c in calls], [c.task_run_id for c in calls], [c.agent_id for c in calls],
            [c.subsystem for c in calls], [c.provider for c in calls], [c.model for c in calls],
            [c.input_tokens for c in calls], [c.output_tokens for c in calls],
            [c.cache_read_tokens for c in calls], [c.cache_creation_tokens for c in calls],
            [i.cost_usd for i in items], [i.source for i in items], [i.price_id for i in items],
        ],
    )  # fmt: skip
    inserted = await cur.fetchall()
    per_run: dict[tuple[uuid.UUID, str], Any] = {}
    for org_id, run, cost in inserted:
        if run is not None:
            per_run[(org_id, run)] = per_run.get((org_id, run), 0) + cost
    if per_run:
        keys = sorted(per_run)
        await conn.execute(
            ADD_TASK_RUN_COSTS,
            [[k[0] for k in keys], [k[1] for k in keys], [per_run[k] for k in keys]],
        )
    return len(inserted)
