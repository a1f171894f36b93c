"""Raw rows of one ingest transaction (psycopg 3, async, binary COPY).

Raw rows go in with binary COPY straight into their tables (the fast path). A retried
export makes that COPY fail on a primary key; the transaction is then redone through
temporary tables and ``INSERT ... ON CONFLICT DO NOTHING RETURNING`` (the slow path,
as Promscale does), which tells which rows were new.

Every runtime statement of the ingest path is named here or in
``storage.ingest._derived_sql`` (derived rows: traces, agents, task runs, costs); the
rollups' statements are generated from their declarations in ``storage.ingest.rollups``.
"""

from __future__ import annotations

import functools
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

from storage.ingest.rows import EventRow, MetricPointRow, SpanRow
from storage.tenancy import DbRole

# Every ingest connection (writer, platform health) acts as the ingest role for its whole
# life: the receiver's connections never serve anything else.
SET_INGEST_ROLE = f"SET ROLE {DbRole.INGEST.value}"
# A group commit's transaction, begun and committed by hand (storage.ingest._commit): its
# COMMIT is pipelined with its last statements, which psycopg's transaction() cannot do.
BEGIN = "BEGIN"
COMMIT = "COMMIT"
#: Whether the schema folds its coarse rollup levels (migration 0021: storage.ingest.folds).
FOLDS_EXIST = "SELECT to_regclass('public.rollup_folds') IS NOT NULL"
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
    """Binary timestamptz from Unix nanoseconds: an ``int`` (COPY columns) or ``NsStamp``."""

    oid = _TIMESTAMPTZ_OID
    format = Format.BINARY

    def dump(self, obj: Any) -> bytes:
        ns = obj.ns if type(obj) is NsStamp else obj
        return _PACK_Q(ns // 1000 - _PG_EPOCH_US)


class NsTime(int):
    """Marker type under which the nanosecond dumper is registered (COPY columns)."""


class NsStamp:
    """Unix nanoseconds as a ``timestamptz`` parameter, alone or in a list (an array).

    Not an ``int`` subclass: psycopg dumps every ``int`` in a list as an integer.
    """

    __slots__ = ("ns",)

    def __init__(self, ns: int) -> None:
        self.ns = ns


def configure(conn: AsyncConnection[Any]) -> None:
    """Per-connection adapters: nanosecond timestamps and fast JSON for COPY."""
    conn.adapters.register_dumper(NsTime, _NsTimestamptzDumper)
    conn.adapters.register_dumper(NsStamp, _NsTimestamptzDumper)
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
    statement, types = _copy_statement(table, tuple(columns))
    async with conn.cursor().copy(statement) as copy:
        copy.set_types(types)
        # The formatter buffers rows and hands back a block now and then: formatting in
        # this loop and awaiting only those blocks saves a coroutine per row (what
        # ``Copy.write_row`` does, row by row).
        formatter = copy.formatter
        for row in rows:
            if block := formatter.write_row(row):
                await copy.write(block)


@functools.cache
def _copy_statement(table: str, columns: tuple[tuple[str, str], ...]) -> tuple[bytes, list[str]]:
    names = ", ".join(f'"{c}"' for c, _ in columns)  # identifiers of this module: plain names
    return f'COPY "{table}" ({names}) FROM STDIN (FORMAT BINARY)'.encode(), [t for _, t in columns]


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
