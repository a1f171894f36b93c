"""Events of the current org: search (newest first, keyset paging) and a live tail.

The tail returns events after a keyset mark ``(time, event_id)`` in that order, which the
API sends as each Server-Sent Event's id, so a client resuming with ``Last-Event-ID``
continues exactly after the last event it got. An event that arrives later with a time
before the mark is not replayed (the tail follows event time, as a log tail does).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from storage.read._common import QueryTooBroadError, check_span
from storage.read._sql import events as sql
from storage.read._sql.events import EventFilter

MAX_SEARCH_RANGE = timedelta(days=31)
#: Text search reads every message of the range: a shorter bound.
MAX_TEXT_RANGE = timedelta(days=7)
MAX_TAIL_BATCH = 500

__all__ = ["Event", "EventFilter", "EventPage", "search_events", "tail_events"]


@dataclass(frozen=True, slots=True)
class Event:
    """One event (an OTLP log record or span event)."""

    time: datetime
    event_id: bytes
    observed_time: datetime | None
    severity: str
    subsystem: str
    event_type: str
    agent_id: str | None
    fleet_id: str | None
    task_run_id: str | None
    trace_id: bytes | None
    span_id: bytes | None
    service_name: str | None
    message: str | None
    payload: dict[str, Any]

    @property
    def mark(self) -> tuple[datetime, bytes]:
        """The keyset position of this event."""
        return (self.time, self.event_id)


@dataclass(frozen=True, slots=True)
class EventPage:
    """A page of events, newest first; ``next_before`` continues it."""

    events: tuple[Event, ...]
    next_before: tuple[datetime, bytes] | None


def _event(row: Any) -> Event:
    return Event(**{**row._mapping, "payload": dict(row.payload or {})})


def search_events(
    conn: Connection,
    f: EventFilter,
    *,
    start: datetime,
    end: datetime,
    before: tuple[datetime, bytes] | None = None,
    limit: int = 50,
) -> EventPage:
    """One page of the events in ``[start, end)`` matching ``f``, newest first.

    Raises:
        InvalidInputError: a bad range.
        QueryTooBroadError: over 31 days, or over 7 days with a text search.
    """
    check_span(start, end, MAX_SEARCH_RANGE, "events")
    if f.text and end - start > MAX_TEXT_RANGE:
        raise QueryTooBroadError(
            f"events: a text search may span at most {MAX_TEXT_RANGE.days} days; narrow "
            "start/end or filter without text"
        )
    rows = conn.execute(sql.search(f, start, end, before, limit + 1)).all()
    page = tuple(_event(r) for r in rows[:limit])
    return EventPage(page, page[-1].mark if len(rows) > limit and page else None)


def tail_events(
    conn: Connection,
    f: EventFilter,
    *,
    since: datetime,
    after: tuple[datetime, bytes] | None = None,
    limit: int = MAX_TAIL_BATCH,
) -> tuple[Event, ...]:
    """Events from ``since`` after the mark ``after``, oldest first (at most ``limit``)."""
    limit = max(1, min(limit, MAX_TAIL_BATCH))
    return tuple(_event(r) for r in conn.execute(sql.tail(f, since, after, limit)))
