"""The trace-query core: traces by id, trace search, services, operations, dependencies.

Both the trace API (``/v1/traces``) and the Jaeger-compatible API (``/jaeger``) read
through these functions, so they cannot disagree. Every function takes a connection
already scoped by ``storage.transaction.scoped_transaction``: a tenant sees only its
org (the database enforces it); staff and support see every org unless ``org_id``
narrows the query. Returned records are new, immutable objects owned by the caller.
Times are integer microseconds since the epoch (the columns' precision).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import Connection

from storage.errors import InvalidInputError, NotFoundError
from storage.read import _traces_sql as sql
from storage.read._common import QueryTooBroadError
from storage.read._trace_records import (
    LlmCost,
    SpanEvent,
    SpanLink,
    SpanRecord,
    Trace,
    TraceSummary,
    cost_from_row,
    event_from_row,
    span_from_row,
    summary_from_row,
)
from storage.read._trace_search import (
    span_conditions,
    trace_conditions,
)

__all__ = [
    "BROAD_SPAN_SEARCH",
    "BROAD_TRACE_SEARCH",
    "MAX_DEPENDENCY_RANGE",
    "Dependency",
    "LlmCost",
    "Operation",
    "QueryTooBroadError",
    "SpanEvent",
    "SpanFilter",
    "SpanLink",
    "SpanRecord",
    "TaskRunRef",
    "Trace",
    "TraceQuery",
    "TraceSummary",
    "find_traces",
    "get_trace",
    "get_traces",
    "list_operations",
    "list_services",
    "search_traces",
    "service_dependencies",
    "task_run",
]

#: Longest range a search with span conditions but no service (nor task run) may cover:
#: it reads every span of the org in the range.
BROAD_SPAN_SEARCH = timedelta(hours=1)
#: Longest range a search without a service and without span conditions may cover (it
#: walks trace summaries, one row per trace, newest first).
BROAD_TRACE_SEARCH = timedelta(hours=24)
#: The first window of a span search, and how much each next (older) window grows.
FIRST_SEARCH_WINDOW = timedelta(minutes=30)
SEARCH_WINDOW_GROWTH = 4
#: Longest range of a service dependency query (it joins every span of the range to its
#: parent).
MAX_DEPENDENCY_RANGE = timedelta(days=7)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_SELECTIVE_KEYS = frozenset({"mosaic.task_run.id"})  # indexed on spans


@dataclass(frozen=True, slots=True)
class SpanFilter:
    """Conditions that one span of a trace must meet together (Jaeger's search)."""

    service: str | None = None
    operation: str | None = None
    attributes: tuple[tuple[str, str], ...] = ()
    min_duration_us: int | None = None
    max_duration_us: int | None = None

    def has_conditions(self) -> bool:
        """Whether spans must be read to answer (anything beyond the trace summary)."""
        return bool(
            self.service or self.operation or self.attributes
            or self.min_duration_us is not None or self.max_duration_us is not None
        )  # fmt: skip

    def selective(self) -> bool:
        """A service or an indexed attribute: cheap over any range."""
        return bool(self.service) or any(k in _SELECTIVE_KEYS for k, _ in self.attributes)


@dataclass(frozen=True, slots=True)
class TraceQuery:
    """A trace search: spans conditions, trace conditions, range, order and bound."""

    start: datetime
    end: datetime
    spans: SpanFilter = field(default_factory=SpanFilter)
    status: Literal["error", "ok"] | None = None
    min_duration_us: int | None = None
    max_duration_us: int | None = None
    limit: int = 20
    before: tuple[int, bytes] | None = None  # keyset: (trace start µs, trace id)
    org_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class Operation:
    """An operation (span name) of a service, with its span kind when asked for."""

    name: str
    kind: int | None = None


@dataclass(frozen=True, slots=True)
class Dependency:
    """Calls from spans of ``parent`` to spans of ``child`` (another service)."""

    parent: str
    child: str
    call_count: int
    error_count: int


@dataclass(frozen=True, slots=True)
class TaskRunRef:
    """A task run and the trace it ran in."""

    task_run_id: str
    task_id: str | None
    agent_id: str | None
    status: str
    trace_id: bytes | None
    cost_usd: Decimal
    started_at: datetime | None
    ended_at: datetime | None
    duration_ms: float | None


def get_trace(conn: Connection, trace_id: bytes, *, org_id: uuid.UUID | None = None) -> Trace:
    """The trace with all its stored spans, their events, links and LLM costs.

    A trace whose spans were pruned by sampling comes back with its summary and no
    spans (``Trace.pruned``); its costs are never pruned.

    Raises:
        NotFoundError: no such trace visible to this connection.
    """
    row = conn.execute(sql.SUMMARY_BY_ID, {"trace_id": trace_id, "org_id": org_id}).one_or_none()
    if row is None:
        raise NotFoundError(f"trace {trace_id.hex()} not found")
    return get_traces(conn, [summary_from_row(row)])[0]


def get_traces(conn: Connection, summaries: Sequence[TraceSummary]) -> list[Trace]:
    """Full traces for ``summaries`` (same order), in three statements whatever the count."""
    if not summaries:
        return []
    wanted = {(s.org_id, s.trace_id) for s in summaries}
    keys = {
        "orgs": sorted({s.org_id for s in summaries}),
        "ids": sorted({s.trace_id for s in summaries}),
        "lo": _at(min(s.start_us for s in summaries)),
        "hi": _at(max(s.end_us for s in summaries)),
    }
    events: dict[tuple[uuid.UUID, bytes, bytes], list[SpanEvent]] = {}
    for r in conn.execute(sql.EVENTS_OF_TRACES, keys):
        events.setdefault((r.org_id, bytes(r.trace_id), bytes(r.span_id)), []).append(
            event_from_row(r)
        )
    spans: dict[tuple[uuid.UUID, bytes], list[SpanRecord]] = {}
    resources: dict[str, Mapping[str, Any]] = {}  # a trace's spans share a few resources
    for row in conn.execute(sql.SPANS_OF_TRACES, keys):
        key = (row[0], bytes(row[1]))
        if key in wanted:
            span_events = events.get((*key, bytes(row[2])), ())
            spans.setdefault(key, []).append(span_from_row(row, span_events, resources))
    costs: dict[tuple[uuid.UUID, bytes], list[LlmCost]] = {}
    for r in conn.execute(sql.COSTS_OF_TRACES, keys):
        costs.setdefault((r.org_id, bytes(r.trace_id)), []).append(cost_from_row(r))
    return [
        Trace(
            s,
            tuple(spans.get((s.org_id, s.trace_id), ())),
            tuple(costs.get((s.org_id, s.trace_id), ())),
        )
        for s in summaries
    ]


def search_traces(conn: Connection, query: TraceQuery) -> list[TraceSummary]:
    """Trace summaries matching ``query``, newest start first, at most ``query.limit``.

    With span conditions the spans are searched in windows, newest first (30 min, then
    each window 4x the last), until ``limit`` traces that started inside the searched part
    are found or the range is exhausted: any trace that started there has all its spans
    there, so no newer trace can be missed, and a search that matches often reads only
    its last minutes of spans.

    Raises:
        QueryTooBroadError: the range is too long for the filters given.
        InvalidInputError: a bad condition (unknown span kind or status code, ...).
    """
    check_breadth(query)
    trace_where, params = trace_conditions(query)
    params["limit"] = query.limit
    if not query.spans.has_conditions():
        statement = sql.trace_search(trace_where, None)
        params.update(start=query.start, end=query.end)
        return [summary_from_row(r) for r in conn.execute(statement, params)]
    span_where, span_params = span_conditions(query.spans, query.org_id)
    params.update(span_params)
    statement = sql.trace_search(trace_where, span_where)
    found: dict[tuple[uuid.UUID, bytes], TraceSummary] = {}
    hi, width = query.end, FIRST_SEARCH_WINDOW
    while hi > query.start:
        lo = max(hi - width, query.start)
        for row in conn.execute(statement, {**params, "start": lo, "end": hi}):
            summary = summary_from_row(row)
            found.setdefault((summary.org_id, summary.trace_id), summary)
        inside = sum(1 for s in found.values() if _at(s.start_us) >= lo)
        if inside >= query.limit:
            break
        hi, width = lo, width * SEARCH_WINDOW_GROWTH
    ordered = sorted(found.values(), key=lambda s: (s.start_us, s.trace_id), reverse=True)
    return ordered[: query.limit]


def find_traces(conn: Connection, query: TraceQuery) -> list[Trace]:
    """:func:`search_traces`, then the full traces (Jaeger's search returns whole traces)."""
    return get_traces(conn, search_traces(conn, query))


def check_breadth(query: TraceQuery) -> None:
    """Refuses a search whose range is too long for its filters (see the constants)."""
    span = query.end - query.start
    if span <= timedelta(0):
        raise InvalidInputError("the search range must end after it starts")
    if query.spans.selective():
        return
    limit = BROAD_SPAN_SEARCH if query.spans.has_conditions() else BROAD_TRACE_SEARCH
    if span > limit:
        raise QueryTooBroadError(
            f"a search over {_hours(span)} without a service reads too many spans",
            f"name a service (or a task run, mosaic.task_run.id), or search at most "
            f"{_hours(limit)} at a time",
        )


def list_services(
    conn: Connection, since: datetime, *, org_id: uuid.UUID | None = None
) -> list[str]:
    """Names of the services that sent spans since ``since``, sorted."""
    rows = conn.execute(sql.SERVICES, {"since": since, "org_id": org_id})
    return [r.service_name for r in rows]


def list_operations(
    conn: Connection,
    service: str,
    since: datetime,
    *,
    kind: int | None = None,
    with_kinds: bool = False,
    org_id: uuid.UUID | None = None,
) -> list[Operation]:
    """The span names of ``service`` since ``since`` (with their kinds when asked)."""
    params: dict[str, Any] = {"service": service, "since": since, "org_id": org_id}
    if kind is None and not with_kinds:
        return [Operation(r.operation) for r in conn.execute(sql.OPERATIONS, params)]
    rows = conn.execute(sql.OPERATIONS_WITH_KIND, {**params, "kind": kind})
    return [Operation(r.operation, r.kind) for r in rows]


def service_dependencies(
    conn: Connection, start: datetime, end: datetime, *, org_id: uuid.UUID | None = None
) -> list[Dependency]:
    """Parent service → child service call and error counts of spans starting in range.

    Raises:
        QueryTooBroadError: the range is longer than ``MAX_DEPENDENCY_RANGE``.
    """
    if end - start > MAX_DEPENDENCY_RANGE:
        raise QueryTooBroadError(
            f"service dependencies over {_hours(end - start)} read too many spans",
            f"ask for at most {_hours(MAX_DEPENDENCY_RANGE)} at a time",
        )
    rows = conn.execute(sql.DEPENDENCIES, {"start": start, "end": end, "org_id": org_id})
    return [
        Dependency(r.parent or "", r.child or "", int(r.call_count), int(r.error_count))
        for r in rows
    ]


def task_run(conn: Connection, task_run_id: str, *, org_id: uuid.UUID | None = None) -> TaskRunRef:
    """One task run.

    Raises:
        NotFoundError: no such task run visible to this connection.
    """
    r = conn.execute(sql.TASK_RUN, {"task_run_id": task_run_id, "org_id": org_id}).one_or_none()
    if r is None:
        raise NotFoundError(f"task run {task_run_id!r} not found")
    return TaskRunRef(
        r.task_run_id, r.task_id, r.agent_id, r.status,
        bytes(r.trace_id) if r.trace_id is not None else None, Decimal(r.cost_usd),
        r.started_at, r.ended_at, r.duration_ms,
    )  # fmt: skip


def _hours(span: timedelta) -> str:
    hours = span.total_seconds() / 3600
    return f"{hours:g} h" if hours < 48 else f"{hours / 24:g} days"


def _at(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)
