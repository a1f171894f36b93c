"""Raw rows of one ingest transaction (psycopg 3, async, binary COPY).

Raw rows go in with binary COPY straight into their tables (the fast path). A retried
export makes that COPY fail on a primary key; the transaction is then redone through
temporary tables and ``INSERT ... ON CONFLICT DO NOTHING RETURNING`` (the slow path,
as Promscale does), which tells which rows were new.

Derived rows (traces, agents, fleets, tasks, task runs, costs): each kind goes into a
per-connection temporary table by binary COPY (fast: no per-value Python work for
arrays), then one ``INSERT ... SELECT ... ON CONFLICT`` merges it. The temporary tables
empty themselves at commit (``ON COMMIT DELETE ROWS``).

Every runtime statement of the ingest path is named here (the rollups' statements are
generated from their declarations in ``storage.ingest.rollups``).
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

from storage.ingest._derive import CostItem, TaskRunUpdate, TraceSummary
from storage.ingest.rows import AgentSighting, EventRow, MetricPointRow, SpanRow
from storage.tenancy import DbRole

# Every ingest connection (writer, platform health) acts as the ingest role for its whole
# life: the receiver's connections never serve anything else.
SET_INGEST_ROLE = f"SET ROLE {DbRole.INGEST.value}"
# A group commit's transaction, begun and committed by hand (storage.ingest._commit): its
# COMMIT is pipelined with its last statements, which psycopg's transaction() cannot do.
BEGIN = "BEGIN"
COMMIT = "COMMIT"
INSERT_PLATFORM_HEALTH = (
    "INSERT INTO platform_health (time, instance, signal, accepted, rejected, refused, requests, "
    "queue_items, commits, commit_seconds_sum, commit_seconds_max) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
)
SELECT_PRICES = (
    "SELECT id, org_id, provider, model_pattern, effective_from, input_per_mtok, "
    "output_per_mtok, cache_read_per_mtok, cache_creation_per_mtok FROM model_prices"
)
# Families recomputed from below (not summed) are written by one transaction per org at a
# time, in org order (storage.ingest.rollups.write_rollups).
ROLLUP_LOCK = (
    "SELECT pg_advisory_xact_lock(hashtext('aeos.rollup.' || %s), hashtext(o::text)) "
    "FROM unnest(%s::uuid[]) AS o ORDER BY o"
)

_PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01 in Unix microseconds
_TIMESTAMPTZ_OID = 1184
_PACK_Q = struct.Struct("!q").pack
_JSONB_VERSION = b"\x01"  # the binary jsonb format's first byte


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
    # COPY picks dumpers by column type; psycopg's default one for bytea is a Python
    # wrapper (it also accepts the DB-API Binary type). Use the C one where installed.
    try:
        from psycopg_binary._psycopg import BytesBinaryDumper  # type: ignore[attr-defined]
    except ImportError:  # pure-Python psycopg: keep the default
        return
    conn.adapters.register_dumper(bytes, BytesBinaryDumper)


def ts(ns: int) -> datetime:
    """A ``datetime`` (UTC) from Unix nanoseconds, for non-COPY parameters."""
    return datetime.fromtimestamp(ns // 1000 / 1e6, UTC)


# The types COPY is told are the wire formats of the values ``span_tuple`` builds, not
# all the columns' own: a timestamptz is sent as the int8 of microseconds since 2000 and
# a jsonb as bytea holding its binary form (version 1, then the JSON text), which are
# exactly the bytes PostgreSQL's timestamptz and jsonb receive functions read. Values
# encoded this way go through psycopg's C dumpers; the Python ones (a call per value) were
# a third of the writer's time per span.
SPAN_COLUMNS = (
    ("org_id", "uuid"), ("trace_id", "bytea"), ("span_id", "bytea"), ("parent_span_id", "bytea"),
    ("trace_state", "text"), ("name", "text"), ("kind", "int2"), ("start_time", "int8"),
    ("end_time", "int8"), ("duration_ms", "float8"), ("status_code", "int2"),
    ("status_message", "text"), ("subsystem", "text"), ("service_name", "text"),
    ("agent_id", "text"), ("fleet_id", "text"), ("task_run_id", "text"),
    ("gen_ai_operation", "text"), ("gen_ai_provider", "text"), ("gen_ai_model", "text"),
    ("input_tokens", "int8"), ("output_tokens", "int8"), ("scope_name", "text"),
    ("attributes", "bytea"), ("resource_attributes", "bytea"), ("links", "bytea[]"),
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


def jsonb_wire(obj: Any) -> bytes:
    """The binary form of a jsonb value (see ``SPAN_COLUMNS``)."""
    return _JSONB_VERSION + orjson.dumps(obj)


def shared_jsonb(obj: Any, memo: dict[int, tuple[Any, bytes]] | None) -> bytes:
    """:func:`jsonb_wire` of ``obj``, once per ``memo`` (objects shared by many rows)."""
    if memo is None:
        return jsonb_wire(obj)
    held = memo.get(id(obj))
    if held is None:
        held = memo[id(obj)] = (obj, jsonb_wire(obj))  # obj kept: its id stays its own
    return held[1]


def span_tuple(
    org_id: uuid.UUID, s: SpanRow, memo: dict[int, tuple[Any, bytes]] | None = None
) -> tuple[Any, ...]:
    """A COPY row of ``spans`` (``SPAN_COLUMNS``); ``memo``: see :func:`shared_jsonb`."""
    start, end = s.start_ns, s.end_ns
    return (
        org_id, s.trace_id, s.span_id, s.parent_span_id, s.trace_state, s.name, s.kind,
        start // 1000 - _PG_EPOCH_US, end // 1000 - _PG_EPOCH_US,
        (end - start) / 1e6 if end > start else 0.0, s.status_code, s.status_message,
        s.subsystem, s.service_name, s.agent_id, s.fleet_id, s.task_run_id, s.gen_ai_operation,
        s.gen_ai_provider, s.gen_ai_model, s.input_tokens, s.output_tokens, s.scope_name,
        jsonb_wire(s.attributes), shared_jsonb(s.resource_attributes, memo), s.links,
        s.dropped_attributes_count,
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
        # The formatter buffers rows and hands back a block now and then: formatting in
        # this loop and awaiting only those blocks saves a coroutine per row (what
        # ``Copy.write_row`` does, row by row).
        formatter = copy.formatter
        for row in rows:
            if block := formatter.write_row(row):
                await copy.write(block)


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


# Derived rows.
TRACE_COLUMNS = (
    ("o", "uuid"), ("tr", "bytea"), ("s", "timestamptz"), ("e", "timestamptz"), ("n", "int4"),
    ("err", "int4"), ("rs", "text"), ("rn", "text"), ("run", "text"),
)  # fmt: skip
FLEET_COLUMNS = (("o", "uuid"), ("fl", "text"), ("seen", "timestamptz"))
AGENT_COLUMNS = (
    ("o", "uuid"), ("ag", "text"), ("fl", "text"), ("nm", "text"), ("sub", "text"),
    ("ver", "text"), ("svc", "text"), ("res", "jsonb"), ("seen", "timestamptz"),
    ("beat", "timestamptz"), ("st", "text"),
)  # fmt: skip
TASK_COLUMNS = (("o", "uuid"), ("tk", "text"), ("ti", "text"))
RUN_COLUMNS = (
    ("o", "uuid"), ("run", "text"), ("tk", "text"), ("ag", "text"), ("st", "text"),
    ("s", "timestamptz"), ("e", "timestamptz"), ("rs", "timestamptz"), ("re", "timestamptz"),
    ("tr", "bytea"),
)  # fmt: skip
COST_COLUMNS = (
    ("org_id", "uuid"), ("time", "timestamptz"), ("trace_id", "bytea"), ("span_id", "bytea"),
    ("task_run_id", "text"), ("agent_id", "text"), ("subsystem", "text"), ("provider", "text"),
    ("model", "text"), ("tokens_in", "int8"), ("tokens_out", "int8"),
    ("cache_read_tokens", "int8"), ("cache_creation_tokens", "int8"), ("cost_usd", "numeric"),
    ("cost_source", "text"), ("price_id", "int8"),
)  # fmt: skip
TEMP_TABLES = {
    "_d_traces": TRACE_COLUMNS,
    "_d_fleets": FLEET_COLUMNS,
    "_d_agents": AGENT_COLUMNS,
    "_d_tasks": TASK_COLUMNS,
    "_d_runs": RUN_COLUMNS,
    "_d_costs": COST_COLUMNS,
}


async def create_temp_tables(conn: AsyncConnection[Any]) -> None:
    """Creates this connection's staging tables (once, right after connecting)."""
    for name, columns in TEMP_TABLES.items():
        body = ", ".join(f"{c} {t}" for c, t in columns)
        statement = f"CREATE TEMP TABLE IF NOT EXISTS {name} ({body}) ON COMMIT DELETE ROWS"
        await conn.execute(statement)


# Sampling (storage.jobs.sampling): a new trace is kept if it has an error or if the hash of its
# id falls within its org's percentage (a missing org keeps everything); the hash part is
# decided once, when the trace is first seen, and a later error can only turn it to kept.
# New spans of an unsampled trace whose spans the sweep already pruned clear the mark, so a
# later sweep prunes them too; a trace turned to kept keeps it (its earlier spans are gone).
MERGE_TRACES = """
INSERT INTO traces AS t (org_id, trace_id, start_time, end_time, duration_ms, span_count,
                         error_count, root_service_name, root_span_name, task_run_id, sampled)
SELECT d.o, d.tr, d.s, d.e, extract(epoch FROM d.e - d.s) * 1000, d.n, d.err, d.rs, d.rn, d.run,
       d.err > 0 OR aeos_trace_keep(d.tr, COALESCE(g.trace_sample_percent, 100))
  FROM _d_traces AS d LEFT JOIN orgs AS g ON g.id = d.o ORDER BY d.o, d.tr
ON CONFLICT (org_id, trace_id) DO UPDATE SET
  start_time = LEAST(t.start_time, EXCLUDED.start_time),
  end_time = GREATEST(t.end_time, EXCLUDED.end_time),
  duration_ms = extract(epoch FROM GREATEST(t.end_time, EXCLUDED.end_time)
                                 - LEAST(t.start_time, EXCLUDED.start_time)) * 1000,
  span_count = t.span_count + EXCLUDED.span_count,
  error_count = t.error_count + EXCLUDED.error_count,
  root_service_name = COALESCE(EXCLUDED.root_service_name, t.root_service_name),
  root_span_name = COALESCE(EXCLUDED.root_span_name, t.root_span_name),
  task_run_id = COALESCE(t.task_run_id, EXCLUDED.task_run_id),
  sampled = t.sampled OR EXCLUDED.error_count > 0,
  spans_pruned_at = CASE WHEN t.sampled OR EXCLUDED.error_count > 0 THEN t.spans_pruned_at END
"""


async def upsert_traces(conn: AsyncConnection[Any], rows: Sequence[TraceSummary]) -> None:
    """Merges trace summaries into ``traces``."""
    if rows:
        await copy_rows(conn, "_d_traces", TRACE_COLUMNS, (
            (r.org_id, r.trace_id, r.start_ns, r.end_ns, r.span_count, r.error_count,
             r.root_service_name, r.root_span_name, r.task_run_id) for r in rows
        ))  # fmt: skip
        await conn.execute(MERGE_TRACES)


MERGE_FLEETS = """
INSERT INTO fleets AS f (org_id, fleet_id, name, last_seen_at)
SELECT o, fl, fl, seen FROM _d_fleets ORDER BY o, fl
ON CONFLICT (org_id, fleet_id) DO UPDATE
  SET last_seen_at = GREATEST(f.last_seen_at, EXCLUDED.last_seen_at)
"""

MERGE_AGENTS = """
INSERT INTO agents AS a (org_id, agent_id, fleet_id, name, subsystem, version, service_name,
                         resource_attributes, last_seen_at, last_heartbeat_at, status)
SELECT o, ag, fl, nm, sub, ver, svc, res, seen, beat, COALESCE(st, 'online')
  FROM _d_agents ORDER BY o, ag
ON CONFLICT (org_id, agent_id) DO UPDATE SET
  fleet_id = COALESCE(EXCLUDED.fleet_id, a.fleet_id),
  name = EXCLUDED.name,
  subsystem = EXCLUDED.subsystem,
  version = CASE WHEN a.last_seen_at IS NULL OR EXCLUDED.last_seen_at >= a.last_seen_at
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
    fleets = {(o, a.fleet_id): a.seen_ns for o, a in rows if a.fleet_id}
    if fleets:
        await copy_rows(
            conn, "_d_fleets", FLEET_COLUMNS, ((k[0], k[1], v) for k, v in fleets.items())
        )
        await conn.execute(MERGE_FLEETS)
    await copy_rows(conn, "_d_agents", AGENT_COLUMNS, (
        (o, a.agent_id, a.fleet_id, a.name, a.subsystem, a.version, a.service_name,
         a.resource_attributes, a.seen_ns, a.heartbeat_ns, a.status) for o, a in rows
    ))  # fmt: skip
    await conn.execute(MERGE_AGENTS)


MERGE_TASKS = """
INSERT INTO tasks AS t (org_id, task_id, title)
SELECT DISTINCT ON (o, tk) o, tk, ti FROM _d_tasks ORDER BY o, tk, ti NULLS LAST
ON CONFLICT (org_id, task_id) DO UPDATE SET title = COALESCE(t.title, EXCLUDED.title)
"""

INSERT_RUNS = """
INSERT INTO task_runs (org_id, task_run_id, task_id, agent_id, status, started_at, ended_at,
                       trace_id)
SELECT o, run, tk, ag, COALESCE(st, 'running'), s, e, tr FROM _d_runs ORDER BY o, run
ON CONFLICT (org_id, task_run_id) DO NOTHING
"""

# Merge rules: a terminal status (succeeded, failed, canceled) is only replaced by what the
# run's own (root) span says; the root span gives the run's agent, duration and trace
# (child spans of other agents carry the run id too, so their costs land on the run).
UPDATE_RUNS = """
UPDATE task_runs AS r SET
  task_id = COALESCE(r.task_id, u.tk),
  agent_id = CASE WHEN u.rs IS NOT NULL THEN COALESCE(u.ag, r.agent_id)
                  ELSE COALESCE(r.agent_id, u.ag) END,
  status = CASE WHEN u.st IS NULL THEN r.status
                WHEN r.status IN ('succeeded', 'failed', 'canceled') AND u.rs IS NULL THEN r.status
                ELSE u.st END,
  started_at = LEAST(r.started_at, u.s),
  ended_at = GREATEST(r.ended_at, u.e),
  duration_ms = CASE WHEN u.rs IS NOT NULL THEN extract(epoch FROM u.re - u.rs) * 1000
                     ELSE r.duration_ms END,
  trace_id = CASE WHEN u.rs IS NOT NULL THEN u.tr ELSE COALESCE(r.trace_id, u.tr) END
  FROM _d_runs AS u
 WHERE r.org_id = u.o AND r.task_run_id = u.run
"""


async def upsert_task_runs(conn: AsyncConnection[Any], rows: Sequence[TaskRunUpdate]) -> None:
    """Creates or merges task runs (and their tasks)."""
    if not rows:
        return
    tasks = [(r.org_id, r.task_id, r.task_title) for r in rows if r.task_id]
    if tasks:
        await copy_rows(conn, "_d_tasks", TASK_COLUMNS, tasks)
        await conn.execute(MERGE_TASKS)
    await copy_rows(conn, "_d_runs", RUN_COLUMNS, (
        (r.org_id, r.task_run_id, r.task_id, r.agent_id, r.status, r.start_ns, r.end_ns,
         r.root_start_ns, r.root_end_ns, r.trace_id) for r in rows
    ))  # fmt: skip
    await conn.execute(INSERT_RUNS)
    await conn.execute(UPDATE_RUNS)


# New cost items only (a retried export's are already there), added to their task runs.
INSERT_COSTS = """
WITH inserted AS (
  INSERT INTO cost_line_items ({columns})
  SELECT {columns} FROM _d_costs ORDER BY org_id, trace_id, span_id
  ON CONFLICT DO NOTHING RETURNING org_id, task_run_id, cost_usd
), per_run AS (
  SELECT org_id, task_run_id, sum(cost_usd) AS cost FROM inserted
   WHERE task_run_id IS NOT NULL GROUP BY org_id, task_run_id
)
UPDATE task_runs AS r SET cost_usd = r.cost_usd + p.cost
  FROM per_run AS p WHERE r.org_id = p.org_id AND r.task_run_id = p.task_run_id
""".format(columns=", ".join(c for c, _ in COST_COLUMNS))


async def insert_costs(conn: AsyncConnection[Any], items: Sequence[CostItem]) -> None:
    """Inserts cost line items and adds their cost to their task runs."""
    if items:
        await copy_rows(conn, "_d_costs", COST_COLUMNS, (
            (i.org_id, c.time_ns, c.trace_id, c.span_id, c.task_run_id, c.agent_id, c.subsystem,
             c.provider, c.model, c.input_tokens, c.output_tokens, c.cache_read_tokens,
             c.cache_creation_tokens, i.cost_usd, i.source, i.price_id)
            for i in items for c in (i.call,)
        ))  # fmt: skip
        await conn.execute(INSERT_COSTS)
