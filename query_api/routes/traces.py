"""Traces: a trace by id (tree, critical path, totals), trace search, a task run's trace,
and service dependencies. Tenant views: mounted under ``/v1`` and
``/v1/staff/orgs/{org_id}``; everything is read through the trace-query core in
``storage`` (the Jaeger API reads the same core)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response

from query_api.deps import ViewConn
from query_api.errors import ApiError, validation_error
from query_api.jaeger_params import ParamError, hex_trace_id
from query_api.models.traces import (
    DependenciesPublic,
    TaskRunTracePublic,
    TraceSummaryPublic,
    TraceViewPublic,
    dependencies_public,
    summary_public,
    task_run_public,
    trace_json,
)
from query_api.paging import Page, decode_cursor, encode_cursor
from query_api.params import TimeRangeParam
from storage import (
    NotFoundError,
    QueryTooBroadError,
    SpanFilter,
    TraceQuery,
    analyse_trace,
    get_task_run,
    get_trace,
    search_traces,
    service_dependencies,
)

router = APIRouter(tags=["traces"])

DEFAULT_SEARCH_LIMIT = 20
MAX_SEARCH_LIMIT = 500
TRACE_ID_DOC = "32 hex digits (shorter ids are zero-padded 64-bit ones)"


def too_broad(exc: QueryTooBroadError) -> ApiError:
    """The problem document for a search that would scan too much."""
    return ApiError(400, "query-too-broad", "Query too broad", str(exc))


def parse_trace_id(raw: str) -> bytes:
    """A trace id path parameter (hex), or a 422 naming it."""
    try:
        return hex_trace_id(raw, "trace_id")
    except ParamError as exc:
        raise validation_error("trace_id", str(exc)) from None


@router.get("/traces/{trace_id}", response_model=TraceViewPublic, summary="A trace by id")
def trace_by_id(conn: ViewConn, trace_id: Annotated[str, Path(description=TRACE_ID_DOC)]) -> Any:
    """Every stored span (parents, µs times, status, kind, attributes, resource, events,
    links), the span tree (depth, self time, waterfall offsets, orphans), the critical
    path with each span's contribution, per-trace totals and LLM calls by cost. A trace
    whose spans were pruned by sampling answers with its summary and a ``notice``."""
    trace = get_trace(conn, parse_trace_id(trace_id))
    return Response(trace_json(trace, analyse_trace(trace)), media_type="application/json")


def _attributes(attr: list[str]) -> tuple[tuple[str, str], ...]:
    out = []
    for pair in attr:
        key, sep, value = pair.partition(":")
        if not sep or not key:
            raise validation_error("attr", f"not key:value: {pair!r}")
        out.append((key, value))
    return tuple(out)


def _before(cursor: str | None) -> tuple[int, bytes] | None:
    if cursor is None:
        return None
    values = decode_cursor(cursor)
    try:
        return int(values["s"]), bytes.fromhex(str(values["t"]))
    except (KeyError, ValueError):
        raise ApiError(
            400, "invalid-cursor", "Invalid cursor", "not a trace search cursor"
        ) from None


@router.get("/traces", response_model=Page[TraceSummaryPublic], summary="Search traces")
def search(
    conn: ViewConn,
    rng: TimeRangeParam,
    service: Annotated[str | None, Query(description="A span of this service")] = None,
    operation: Annotated[str | None, Query(description="A span of this name")] = None,
    attr: Annotated[
        list[str],
        Query(
            description="key:value, repeatable; all on the same span as service and "
            "operation. Mapped columns (mosaic.task_run.id, aeos.agent.id, gen_ai.*), "
            "kept span and resource attributes, and error / span.kind / otel.status_code."
        ),
    ] = [],  # noqa: B006 - FastAPI copies defaults
    status: Annotated[Literal["error", "ok"] | None, Query(description="Trace status")] = None,
    min_duration_ms: Annotated[float | None, Query(ge=0, description="Trace duration")] = None,
    max_duration_ms: Annotated[float | None, Query(ge=0, description="Trace duration")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_SEARCH_LIMIT)] = DEFAULT_SEARCH_LIMIT,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> Page[TraceSummaryPublic]:
    """Trace summaries, newest first. A range longer than 24 h (1 h with span conditions)
    needs a service or a task run (``attr=mosaic.task_run.id:…``): it is refused with
    ``query-too-broad`` rather than left to time out."""
    query = TraceQuery(
        start=rng.start, end=rng.end,
        spans=SpanFilter(service=service, operation=operation, attributes=_attributes(attr)),
        status=status,
        min_duration_us=int(min_duration_ms * 1000) if min_duration_ms is not None else None,
        max_duration_us=int(max_duration_ms * 1000) if max_duration_ms is not None else None,
        limit=limit, before=_before(cursor),
    )  # fmt: skip
    try:
        found = search_traces(conn, query)
    except QueryTooBroadError as exc:
        raise too_broad(exc) from None
    last = found[-1] if len(found) == limit else None
    next_cursor = encode_cursor({"s": last.start_us, "t": last.trace_id.hex()}) if last else None
    return Page[TraceSummaryPublic](
        data=[summary_public(s) for s in found], next_cursor=next_cursor
    )


@router.get(
    "/task-runs/{task_run_id}/trace",
    response_model=TaskRunTracePublic,
    summary="A task run's trace",
)
def task_run_trace(conn: ViewConn, task_run_id: str) -> Any:
    """The run, and its trace as ``/traces/{id}`` gives it: critical path and the cost of
    each LLM call on it."""
    run = get_task_run(conn, task_run_id)
    if run.trace_id is None:
        raise NotFoundError(f"task run {task_run_id!r} has no trace")
    trace = get_trace(conn, run.trace_id)
    run_json = task_run_public(run).model_dump_json().encode()
    body = (
        b'{"task_run":' + run_json + b',"trace":' + trace_json(trace, analyse_trace(trace)) + b"}"
    )
    return Response(body, media_type="application/json")


@router.get("/dependencies", response_model=DependenciesPublic, summary="Service dependencies")
def dependencies(conn: ViewConn, rng: TimeRangeParam) -> DependenciesPublic:
    """Parent service → child service call and error counts of the spans that start in the
    range (at most 7 days)."""
    try:
        return dependencies_public(service_dependencies(conn, rng.start, rng.end))
    except QueryTooBroadError as exc:
        raise too_broad(exc) from None
