"""``/events`` (search) and ``/events/stream`` (live tail as Server-Sent Events).

The stream polls in short scoped transactions (one per poll, the same tenant scope as
every view), sends each event as an SSE message whose ``id`` is a signed cursor of its
position, and resumes after ``Last-Event-ID`` when a client reconnects. A comment line
every ``KEEPALIVE_S`` keeps proxies from closing an idle stream.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from sqlalchemy import Engine

from query_api.deps import AppEngine, CurrentPrincipal, TargetOrg, ViewConn, scope_for
from query_api.errors import ERROR_RESPONSES, validation_error
from query_api.models.events import EventOut
from query_api.paging import DEFAULT_PAGE_SIZE, Page, PageSize, encode_cursor
from query_api.params import InstantQuery, TimeRangeParam, parse_instant
from query_api.routes._views import CursorQuery, cursor_values, now
from query_api.tabular import CSV_RESPONSE, tabular
from storage import EventFilter, Scope, scoped_transaction, search_events, tail_events

router = APIRouter(tags=["events"])
_ERRORS: dict[int | str, dict[str, Any]] = {
    k: ERROR_RESPONSES[k] for k in (400, 401, 403, 404, 422)
}
Severity = Literal["debug", "info", "warn", "error", "fatal"]
POLL_S = 1.0
KEEPALIVE_S = 15.0
DEFAULT_TAIL_LOOKBACK = timedelta(minutes=1)


def _filters(
    severity: Annotated[list[Severity] | None, Query()] = None,
    subsystem: Annotated[list[str] | None, Query(max_length=20)] = None,
    event_type: Annotated[list[str] | None, Query(max_length=20)] = None,
    agent_id: Annotated[str | None, Query(max_length=200)] = None,
    task_run_id: Annotated[str | None, Query(max_length=200)] = None,
    trace_id: Annotated[str | None, Query(pattern="^[0-9a-fA-F]{32}$")] = None,
    q: Annotated[str | None, Query(max_length=200, description="Text in the message.")] = None,
) -> EventFilter:
    return EventFilter(
        severity or (),
        subsystem or (),
        event_type or (),
        agent_id,
        task_run_id,
        bytes.fromhex(trace_id) if trace_id else None,
        q,
    )


def _mark(values: dict[str, Any]) -> tuple[datetime, bytes]:
    try:
        return values["t"], bytes.fromhex(values["id"])
    except ValueError:
        raise validation_error("cursor", "not a cursor of this list") from None


@router.get(
    "/events",
    response_model=Page[EventOut],
    responses={**_ERRORS, **CSV_RESPONSE},
    summary="Search events",
)
def events(
    request: Request,
    conn: ViewConn,
    rng: TimeRangeParam,
    severity: Annotated[list[Severity] | None, Query()] = None,
    subsystem: Annotated[list[str] | None, Query()] = None,
    event_type: Annotated[list[str] | None, Query()] = None,
    agent_id: Annotated[str | None, Query(max_length=200)] = None,
    task_run_id: Annotated[str | None, Query(max_length=200)] = None,
    trace_id: Annotated[str | None, Query(pattern="^[0-9a-fA-F]{32}$")] = None,
    q: Annotated[str | None, Query(max_length=200, description="Text in the message.")] = None,
    cursor: CursorQuery = None,
    limit: PageSize = DEFAULT_PAGE_SIZE,
) -> Response:
    """Events in the range, newest first, by severity, subsystem, event type, agent, task
    run, trace and text (keyset paging). At most 31 days, 7 with a text search."""
    f = _filters(severity, subsystem, event_type, agent_id, task_run_id, trace_id, q)
    values = cursor_values(cursor, {"t": datetime, "id": str})
    page = search_events(
        conn, f, start=rng.start, end=rng.end, before=_mark(values) if values else None, limit=limit
    )
    rows = [EventOut.model_validate(e) for e in page.events]
    token = None
    if page.next_before is not None:
        token = encode_cursor({"t": page.next_before[0], "id": page.next_before[1].hex()})
    return tabular(request, rows, EventOut, next_cursor=token)


@router.get(
    "/events/stream",
    summary="Live tail (Server-Sent Events)",
    responses={
        **_ERRORS,
        200: {
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
            "description": "One SSE message per event (data: an Event).",
        },
    },
)
async def stream(
    request: Request,
    engine: AppEngine,
    principal: CurrentPrincipal,
    org_id: TargetOrg,
    since: InstantQuery = None,
    severity: Annotated[list[Severity] | None, Query()] = None,
    subsystem: Annotated[list[str] | None, Query()] = None,
    event_type: Annotated[list[str] | None, Query()] = None,
    agent_id: Annotated[str | None, Query(max_length=200)] = None,
    task_run_id: Annotated[str | None, Query(max_length=200)] = None,
    trace_id: Annotated[str | None, Query(pattern="^[0-9a-fA-F]{32}$")] = None,
    q: Annotated[str | None, Query(max_length=200)] = None,
    last_event_id: Annotated[str | None, Header(description="Resume after this event.")] = None,
) -> StreamingResponse:
    """New events as they arrive (from ``since``, default a minute ago), as SSE; a client
    that reconnects with ``Last-Event-ID`` continues after the last event it got."""
    scope = scope_for(principal, org_id)
    f = _filters(severity, subsystem, event_type, agent_id, task_run_id, trace_id, q)
    start = parse_instant(since, "since") if since else now() - DEFAULT_TAIL_LOOKBACK
    values = cursor_values(last_event_id, {"t": datetime, "id": str})
    after = _mark(values) if values else None
    if after is not None:
        start = min(start, after[0])
    return StreamingResponse(
        _tail(request, engine, scope, f, start, after),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _poll(
    engine: Engine,
    scope: Scope,
    f: EventFilter,
    since: datetime,
    after: tuple[datetime, bytes] | None,
) -> Any:
    with scoped_transaction(engine, scope) as conn:
        return tail_events(conn, f, since=since, after=after)


async def _tail(
    request: Request,
    engine: Engine,
    scope: Scope,
    f: EventFilter,
    since: datetime,
    after: tuple[datetime, bytes] | None,
) -> AsyncIterator[bytes]:
    yield b": tail\n\n"
    idle = 0.0
    while not await request.is_disconnected():
        batch = await run_in_threadpool(_poll, engine, scope, f, since, after)
        for e in batch:
            after = e.mark
            token = encode_cursor({"t": e.time, "id": e.event_id.hex()})
            data = json.dumps(EventOut.model_validate(e).model_dump(mode="json"))
            yield f"id: {token}\nevent: event\ndata: {data}\n\n".encode()
        if batch:
            idle = 0.0
            continue
        await asyncio.sleep(POLL_S)
        idle += POLL_S
        if idle >= KEEPALIVE_S:
            idle = 0.0
            yield b": keepalive\n\n"
