"""Task runs of the current org: search with keyset paging, and a run's detail.

Search filters by status, agent, fleet, task, start time, duration, cost and text (in the
task's title or the run id; ``ILIKE`` with wildcards escaped), sorted by start time,
duration or cost, newest / largest first by default. ``after`` is the ``(sort value, run
id)`` of the last row seen, which the API carries in a signed cursor.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection

from storage.read._common import check_span
from storage.read._sql import task_runs as sql
from storage.read._sql.task_runs import SortKey

MAX_SEARCH_RANGE = timedelta(days=400)
MAX_DETAIL_ITEMS = 1000
EVENT_PADDING = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class TaskRun:
    """One task run."""

    task_run_id: str
    task_id: str | None
    title: str | None
    agent_id: str | None
    fleet_id: str | None
    status: str
    started_at: datetime | None
    ended_at: datetime | None
    duration_ms: float | None
    trace_id: bytes | None
    cost_usd: Decimal
    attributes: dict[str, Any]


@dataclass(frozen=True, slots=True)
class TaskRunPage:
    """A page of runs; ``next_after`` continues it."""

    runs: tuple[TaskRun, ...]
    next_after: tuple[Any, str] | None


@dataclass(frozen=True, slots=True)
class CostItem:
    """One LLM call of a run."""

    time: datetime
    provider: str
    model: str
    agent_id: str | None
    subsystem: str
    tokens_in: int
    tokens_out: int
    cache_read_tokens: int
    cache_creation_tokens: int
    cost_usd: Decimal
    cost_source: str
    trace_id: bytes
    span_id: bytes


@dataclass(frozen=True, slots=True)
class RunEvent:
    """One event of a run."""

    time: datetime
    event_id: bytes
    severity: str
    subsystem: str
    event_type: str
    agent_id: str | None
    message: str | None
    payload: dict[str, Any]
    trace_id: bytes | None
    span_id: bytes | None


@dataclass(frozen=True, slots=True)
class TaskRunDetail:
    """A run, its cost line items (which sum to its cost) and its events."""

    run: TaskRun
    cost_items: tuple[CostItem, ...]
    events: tuple[RunEvent, ...]


def _run(row: Any) -> TaskRun:
    return TaskRun(
        row.task_run_id,
        row.task_id,
        row.title,
        row.agent_id,
        row.fleet_id,
        row.status,
        row.started_at,
        row.ended_at,
        row.duration_ms,
        row.trace_id,
        Decimal(row.cost_usd),
        dict(row.attributes or {}),
    )


def search_task_runs(
    conn: Connection,
    *,
    start: datetime,
    end: datetime,
    statuses: Sequence[str] = (),
    agent_id: str | None = None,
    fleet_id: str | None = None,
    task_id: str | None = None,
    min_duration_ms: float | None = None,
    max_duration_ms: float | None = None,
    min_cost: Decimal | None = None,
    max_cost: Decimal | None = None,
    text: str | None = None,
    sort: SortKey = "time",
    descending: bool = True,
    after: tuple[Any, str] | None = None,
    limit: int = 50,
) -> TaskRunPage:
    """One page of the runs started in ``[start, end)`` that match every filter.

    Raises:
        InvalidInputError: a bad range.
        QueryTooBroadError: a range over 400 days.
    """
    check_span(start, end, MAX_SEARCH_RANGE, "task runs")
    stmt = sql.search_runs(
        start=start,
        end=end,
        statuses=statuses,
        agent_id=agent_id,
        fleet_id=fleet_id,
        task_id=task_id,
        min_duration_ms=min_duration_ms,
        max_duration_ms=max_duration_ms,
        min_cost=min_cost,
        max_cost=max_cost,
        text=text,
        sort=sort,
        descending=descending,
        after=after,
        limit=limit + 1,
    )
    rows = conn.execute(stmt).all()
    more = len(rows) > limit
    rows = rows[:limit]
    last = (rows[-1].sort_value, rows[-1].task_run_id) if more and rows else None
    return TaskRunPage(tuple(_run(r) for r in rows), last)


def task_run_detail(conn: Connection, task_run_id: str, *, now: datetime) -> TaskRunDetail | None:
    """A run with its cost line items and events (None: no such run in this org)."""
    row = conn.execute(sql.run_by_id(task_run_id)).first()
    if row is None:
        return None
    run = _run(row)
    items = tuple(
        CostItem(**r._mapping) for r in conn.execute(sql.run_costs(task_run_id, MAX_DETAIL_ITEMS))
    )
    lo = (run.started_at or now) - EVENT_PADDING
    hi = (run.ended_at or now) + EVENT_PADDING
    found = conn.execute(sql.run_events(task_run_id, lo, hi, MAX_DETAIL_ITEMS))
    evs = tuple(RunEvent(**{**r._mapping, "payload": dict(r.payload or {})}) for r in found)
    return TaskRunDetail(run, items, evs)
