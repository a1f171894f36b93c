"""Statements merging derived rows (traces, agents, fleets, tasks, task runs, costs).

Each kind is one ``INSERT ... SELECT ... FROM unnest(<one array parameter per column>)
... ON CONFLICT`` statement, so that a group commit can send all of them, the rollups
and its COMMIT in one pipeline (``storage.ingest._commit``): one round trip instead of
two or three per kind (COPY into a staging table cannot be pipelined). Timestamps travel
as ``timestamptz[]`` built from Unix nanoseconds (``NsStamp``: exact to the microsecond
over the whole accepted range), JSON as ``text[]`` cast in the statement.
Every statement orders its rows by key, so that concurrent writers lock them in the
same order.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import orjson
from psycopg import AsyncConnection

from storage.ingest._derive import CostItem, TaskRunUpdate, TraceSummary
from storage.ingest._sql import NsStamp
from storage.ingest.rows import AgentSighting

_Columns = tuple[tuple[str, str], ...]

TRACE_COLUMNS: _Columns = (
    ("o", "uuid"), ("tr", "bytea"), ("s", "timestamptz"), ("e", "timestamptz"), ("n", "int4"),
    ("err", "int4"), ("rs", "text"), ("rn", "text"), ("run", "text"),
)  # fmt: skip
FLEET_COLUMNS: _Columns = (("o", "uuid"), ("fl", "text"), ("seen", "timestamptz"))
AGENT_COLUMNS: _Columns = (
    ("o", "uuid"), ("ag", "text"), ("fl", "text"), ("nm", "text"), ("sub", "text"),
    ("ver", "text"), ("svc", "text"), ("res", "text"), ("seen", "timestamptz"),
    ("beat", "timestamptz"), ("st", "text"),
)  # fmt: skip
TASK_COLUMNS: _Columns = (("o", "uuid"), ("tk", "text"), ("ti", "text"))
RUN_COLUMNS: _Columns = (
    ("o", "uuid"), ("run", "text"), ("tk", "text"), ("ag", "text"), ("st", "text"),
    ("s", "timestamptz"), ("e", "timestamptz"), ("rs", "timestamptz"), ("re", "timestamptz"),
    ("tr", "bytea"),
)  # fmt: skip
COST_COLUMNS: _Columns = (
    ("org_id", "uuid"), ("time", "timestamptz"), ("trace_id", "bytea"), ("span_id", "bytea"),
    ("task_run_id", "text"), ("agent_id", "text"), ("subsystem", "text"), ("provider", "text"),
    ("model", "text"), ("tokens_in", "int8"), ("tokens_out", "int8"),
    ("cache_read_tokens", "int8"), ("cache_creation_tokens", "int8"), ("cost_usd", "numeric"),
    ("cost_source", "text"), ("price_id", "int8"),
)  # fmt: skip


def _unnest(columns: _Columns, alias: str) -> str:
    """``unnest(%b::t1[], ...) AS alias(c1, ...)``: the rows, one parameter per column."""
    params = ", ".join(f"%b::{t}[]" for _, t in columns)  # binary: exact, and C dumpers
    return f"unnest({params}) AS {alias}({', '.join(c for c, _ in columns)})"


def _params(rows: Sequence[tuple[Any, ...]], width: int) -> list[list[Any]]:
    """One list per column of ``rows`` (tuples of ``width`` values)."""
    columns = [list(column) for column in zip(*rows, strict=True)]
    assert len(columns) == width, "a row does not match its columns"
    return columns


def _ns(value: int | None) -> NsStamp | None:
    return None if value is None else NsStamp(value)


# Sampling (storage.jobs.sampling): a new trace is kept if it has an error or if the hash of its
# id falls within its org's percentage (a missing org keeps everything); the hash part is
# decided once, when the trace is first seen, and a later error can only turn it to kept.
# New spans of an unsampled trace whose spans the sweep already pruned clear the mark, so a
# later sweep prunes them too; a trace turned to kept keeps it (its earlier spans are gone).
MERGE_TRACES = f"""
INSERT INTO traces AS t (org_id, trace_id, start_time, end_time, duration_ms, span_count,
                         error_count, root_service_name, root_span_name, task_run_id, sampled)
SELECT d.o, d.tr, d.s, d.e, extract(epoch FROM d.e - d.s) * 1000, d.n, d.err, d.rs, d.rn, d.run,
       d.err > 0 OR aeos_trace_keep(d.tr, COALESCE(g.trace_sample_percent, 100))
  FROM {_unnest(TRACE_COLUMNS, "d")} LEFT JOIN orgs AS g ON g.id = d.o ORDER BY d.o, d.tr
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
        await conn.execute(MERGE_TRACES, _params([
            (r.org_id, r.trace_id, NsStamp(r.start_ns), NsStamp(r.end_ns), r.span_count,
             r.error_count, r.root_service_name, r.root_span_name, r.task_run_id) for r in rows
        ], len(TRACE_COLUMNS)))  # fmt: skip


MERGE_FLEETS = f"""
INSERT INTO fleets AS f (org_id, fleet_id, name, last_seen_at)
SELECT o, fl, fl, seen FROM {_unnest(FLEET_COLUMNS, "d")} ORDER BY o, fl
ON CONFLICT (org_id, fleet_id) DO UPDATE
  SET last_seen_at = GREATEST(f.last_seen_at, EXCLUDED.last_seen_at)
"""

MERGE_AGENTS = f"""
INSERT INTO agents AS a (org_id, agent_id, fleet_id, name, subsystem, version, service_name,
                         resource_attributes, last_seen_at, last_heartbeat_at, status)
SELECT o, ag, fl, nm, sub, ver, svc, res::jsonb, seen, beat, COALESCE(st, 'online')
  FROM {_unnest(AGENT_COLUMNS, "d")} ORDER BY o, ag
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
    """Upserts ``agents`` (and their ``fleets``) from resource sightings (one per agent)."""
    if not rows:
        return
    fleets = {(o, a.fleet_id): a.seen_ns for o, a in rows if a.fleet_id}
    if fleets:
        await conn.execute(MERGE_FLEETS, _params(
            [(k[0], k[1], NsStamp(v)) for k, v in fleets.items()], len(FLEET_COLUMNS)
        ))  # fmt: skip
    await conn.execute(MERGE_AGENTS, _params([
        (o, a.agent_id, a.fleet_id, a.name, a.subsystem, a.version, a.service_name,
         orjson.dumps(a.resource_attributes).decode(), NsStamp(a.seen_ns), _ns(a.heartbeat_ns),
         a.status) for o, a in rows
    ], len(AGENT_COLUMNS)))  # fmt: skip


MERGE_TASKS = f"""
INSERT INTO tasks AS t (org_id, task_id, title)
SELECT DISTINCT ON (o, tk) o, tk, ti FROM {_unnest(TASK_COLUMNS, "d")} ORDER BY o, tk, ti NULLS LAST
ON CONFLICT (org_id, task_id) DO UPDATE SET title = COALESCE(t.title, EXCLUDED.title)
"""

INSERT_RUNS = f"""
INSERT INTO task_runs (org_id, task_run_id, task_id, agent_id, status, started_at, ended_at,
                       trace_id)
SELECT o, run, tk, ag, COALESCE(st, 'running'), s, e, tr FROM {_unnest(RUN_COLUMNS, "d")}
 ORDER BY o, run
ON CONFLICT (org_id, task_run_id) DO NOTHING
"""

# Merge rules: a terminal status (succeeded, failed, canceled) is only replaced by what the
# run's own (root) span says; the root span gives the run's agent, duration and trace
# (child spans of other agents carry the run id too, so their costs land on the run).
UPDATE_RUNS = f"""
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
  FROM {_unnest(RUN_COLUMNS, "u")}
 WHERE r.org_id = u.o AND r.task_run_id = u.run
"""


async def upsert_task_runs(conn: AsyncConnection[Any], rows: Sequence[TaskRunUpdate]) -> None:
    """Creates or merges task runs (and their tasks); ``rows`` are sorted by key."""
    if not rows:
        return
    tasks = [(r.org_id, r.task_id, r.task_title) for r in rows if r.task_id]
    if tasks:
        await conn.execute(MERGE_TASKS, _params(tasks, len(TASK_COLUMNS)))
    runs = _params([
        (r.org_id, r.task_run_id, r.task_id, r.agent_id, r.status, NsStamp(r.start_ns),
         NsStamp(r.end_ns), _ns(r.root_start_ns), _ns(r.root_end_ns), r.trace_id) for r in rows
    ], len(RUN_COLUMNS))  # fmt: skip
    await conn.execute(INSERT_RUNS, runs)
    await conn.execute(UPDATE_RUNS, runs)


# New cost items only (a retried export's are already there), added to their task runs.
INSERT_COSTS = """
WITH inserted AS (
  INSERT INTO cost_line_items ({columns})
  SELECT {columns} FROM {source} ORDER BY org_id, trace_id, span_id
  ON CONFLICT DO NOTHING RETURNING org_id, task_run_id, cost_usd
), per_run AS (
  SELECT org_id, task_run_id, sum(cost_usd) AS cost FROM inserted
   WHERE task_run_id IS NOT NULL GROUP BY org_id, task_run_id
)
UPDATE task_runs AS r SET cost_usd = r.cost_usd + p.cost
  FROM per_run AS p WHERE r.org_id = p.org_id AND r.task_run_id = p.task_run_id
""".format(columns=", ".join(c for c, _ in COST_COLUMNS), source=_unnest(COST_COLUMNS, "d"))


async def insert_costs(conn: AsyncConnection[Any], items: Sequence[CostItem]) -> None:
    """Inserts cost line items and adds their cost to their task runs."""
    if items:
        await conn.execute(INSERT_COSTS, _params([
            (i.org_id, NsStamp(c.time_ns), c.trace_id, c.span_id, c.task_run_id, c.agent_id,
             c.subsystem, c.provider, c.model, c.input_tokens, c.output_tokens,
             c.cache_read_tokens, c.cache_creation_tokens, i.cost_usd, i.source, i.price_id)
            for i in items for c in (i.call,)
        ], len(COST_COLUMNS)))  # fmt: skip
