"""Named statements of the task-run readers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import ColumnElement, Select, and_, func, literal, or_, select, tuple_

from storage.schema import agents, cost_line_items, events, task_runs, tasks

SortKey = Literal["time", "duration", "cost"]


def like_pattern(text: str) -> str:
    """``text`` as a literal ``ILIKE`` substring pattern (wildcards escaped)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def sort_column(key: SortKey) -> ColumnElement[Any]:
    """The value a run sorts by (never NULL, so keyset comparisons hold)."""
    t = task_runs
    if key == "duration":
        return func.coalesce(t.c.duration_ms, literal(-1.0))
    if key == "cost":
        return t.c.cost_usd
    return t.c.started_at


def run_columns() -> Select[Any]:
    """Runs with their task title and the fleet of their agent."""
    t = task_runs
    return select(
        t.c.task_run_id,
        t.c.task_id,
        tasks.c.title,
        t.c.agent_id,
        agents.c.fleet_id,
        t.c.status,
        t.c.started_at,
        t.c.ended_at,
        t.c.duration_ms,
        t.c.trace_id,
        t.c.cost_usd,
        t.c.attributes,
    ).select_from(
        t.outerjoin(
            tasks, and_(tasks.c.org_id == t.c.org_id, tasks.c.task_id == t.c.task_id)
        ).outerjoin(agents, and_(agents.c.org_id == t.c.org_id, agents.c.agent_id == t.c.agent_id))
    )


def search_runs(
    *,
    start: datetime,
    end: datetime,
    statuses: Sequence[str],
    agent_id: str | None,
    fleet_id: str | None,
    task_id: str | None,
    min_duration_ms: float | None,
    max_duration_ms: float | None,
    min_cost: Decimal | None,
    max_cost: Decimal | None,
    text: str | None,
    sort: SortKey,
    descending: bool,
    after: tuple[Any, str] | None,
    limit: int,
) -> Select[Any]:
    """Runs started in ``[start, end)`` matching every given filter, in sort order."""
    t = task_runs
    key = sort_column(sort)
    conds: list[ColumnElement[bool]] = [t.c.started_at >= start, t.c.started_at < end]
    if statuses:
        conds.append(t.c.status.in_(statuses))
    for column, value in (
        (t.c.agent_id, agent_id),
        (agents.c.fleet_id, fleet_id),
        (t.c.task_id, task_id),
    ):
        if value is not None:
            conds.append(column == value)
    if min_duration_ms is not None:
        conds.append(t.c.duration_ms >= min_duration_ms)
    if max_duration_ms is not None:
        conds.append(t.c.duration_ms <= max_duration_ms)
    if min_cost is not None:
        conds.append(t.c.cost_usd >= min_cost)
    if max_cost is not None:
        conds.append(t.c.cost_usd <= max_cost)
    if text:
        pattern = like_pattern(text)
        conds.append(or_(tasks.c.title.ilike(pattern), t.c.task_run_id.ilike(pattern)))
    if after is not None:
        pair, mark = tuple_(key, t.c.task_run_id), tuple_(literal(after[0]), literal(after[1]))
        conds.append(pair < mark if descending else pair > mark)
    order = (key.desc(), t.c.task_run_id.desc()) if descending else (key, t.c.task_run_id)
    return (
        run_columns()
        .add_columns(key.label("sort_value"))
        .where(*conds)
        .order_by(*order)
        .limit(limit)
    )


def run_by_id(task_run_id: str) -> Select[Any]:
    """One run."""
    return run_columns().where(task_runs.c.task_run_id == task_run_id)


def run_costs(task_run_id: str, limit: int) -> Select[Any]:
    """A run's cost line items, oldest first."""
    c = cost_line_items
    return (
        select(
            c.c.time,
            c.c.provider,
            c.c.model,
            c.c.agent_id,
            c.c.subsystem,
            c.c.tokens_in,
            c.c.tokens_out,
            c.c.cache_read_tokens,
            c.c.cache_creation_tokens,
            c.c.cost_usd,
            c.c.cost_source,
            c.c.trace_id,
            c.c.span_id,
        )
        .where(c.c.task_run_id == task_run_id)
        .order_by(c.c.time, c.c.span_id)
        .limit(limit)
    )


def run_events(task_run_id: str, lo: datetime, hi: datetime, limit: int) -> Select[Any]:
    """A run's events within ``[lo, hi]`` (the run's time, padded), oldest first."""
    e = events
    return (
        select(
            e.c.time,
            e.c.event_id,
            e.c.severity,
            e.c.subsystem,
            e.c.event_type,
            e.c.agent_id,
            e.c.message,
            e.c.payload,
            e.c.trace_id,
            e.c.span_id,
        )
        .where(e.c.task_run_id == task_run_id, e.c.time >= lo, e.c.time <= hi)
        .order_by(e.c.time, e.c.event_id)
        .limit(limit)
    )
