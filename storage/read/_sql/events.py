"""Named statements of the event readers (search and live tail)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, literal, select, tuple_

from storage.read._sql.task_runs import like_pattern
from storage.schema import events


@dataclass(frozen=True, slots=True)
class EventFilter:
    """What events to show; empty sequences and None match everything."""

    severities: Sequence[str] = ()
    subsystems: Sequence[str] = ()
    event_types: Sequence[str] = ()
    agent_id: str | None = None
    task_run_id: str | None = None
    trace_id: bytes | None = None
    text: str | None = None


def _columns() -> Select[Any]:
    e = events
    return select(
        e.c.time,
        e.c.event_id,
        e.c.observed_time,
        e.c.severity,
        e.c.subsystem,
        e.c.event_type,
        e.c.agent_id,
        e.c.fleet_id,
        e.c.task_run_id,
        e.c.trace_id,
        e.c.span_id,
        e.c.service_name,
        e.c.message,
        e.c.payload,
    )


def _conditions(f: EventFilter) -> list[ColumnElement[bool]]:
    e = events
    conds: list[ColumnElement[bool]] = []
    for column, values in (
        (e.c.severity, f.severities),
        (e.c.subsystem, f.subsystems),
        (e.c.event_type, f.event_types),
    ):
        if values:
            conds.append(column.in_(values))
    for column, value in (
        (e.c.agent_id, f.agent_id),
        (e.c.task_run_id, f.task_run_id),
        (e.c.trace_id, f.trace_id),
    ):
        if value is not None:
            conds.append(column == value)
    if f.text:
        conds.append(e.c.message.ilike(like_pattern(f.text)))
    return conds


def search(
    f: EventFilter,
    start: datetime,
    end: datetime,
    before: tuple[datetime, bytes] | None,
    limit: int,
) -> Select[Any]:
    """Events in ``[start, end)`` newest first, before the keyset mark ``before``."""
    e = events
    conds = [e.c.time >= start, e.c.time < end, *_conditions(f)]
    if before is not None:
        mark = tuple_(literal(before[0]), literal(before[1]))
        conds.append(tuple_(e.c.time, e.c.event_id) < mark)
    return _columns().where(*conds).order_by(e.c.time.desc(), e.c.event_id.desc()).limit(limit)


def tail(
    f: EventFilter, since: datetime, after: tuple[datetime, bytes] | None, limit: int
) -> Select[Any]:
    """Events from ``since`` oldest first, after the keyset mark ``after`` (live tail)."""
    e = events
    conds = [e.c.time >= since, *_conditions(f)]
    if after is not None:
        mark = tuple_(literal(after[0]), literal(after[1]))
        conds.append(tuple_(e.c.time, e.c.event_id) > mark)
    return _columns().where(*conds).order_by(e.c.time, e.c.event_id).limit(limit)
