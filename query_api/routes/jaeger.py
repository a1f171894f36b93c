"""A Jaeger-compatible query API under ``/jaeger``, so that Grafana's Jaeger data source
with URL ``http://HOST:PORT/jaeger`` works unchanged (upper-floors notes §A1-§A4).

v1 JSON (what Grafana calls): ``/api/services``, ``/api/services/{service}/operations``,
``/api/operations``, ``/api/traces`` (search), ``/api/traces/{id}``,
``/api/dependencies``; api_v3 (OTLP JSON): ``/api/v3/services``, ``/api/v3/operations``,
``/api/v3/traces/{id}``, ``/api/v3/traces``. Each is a thin translation of parameters
and results over the trace-query core in ``storage`` (the one ``/v1/traces`` reads).

Who reads what: the org comes from the bearer credential (each org's Grafana data source
carries its own key, ``jsonData.httpHeaderName1: Authorization``). A staff key
(alias_admin, alias_support) reads every org, or one org named by the header
``X-AEOS-Org-ID: <org uuid>`` or the query parameter ``org_id``. Errors after
authentication answer in each API's own error shape (v1: the envelope's ``errors``;
v3: ``{"error": {"httpCode", "message"}}``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import Connection, Engine, text

from query_api import jaeger_json, otlp_json
from query_api import jaeger_params as jp
from query_api.deps import CurrentPrincipal
from query_api.errors import ApiError
from storage import (
    DbRole,
    InvalidInputError,
    NotFoundError,
    Scope,
    SpanFilter,
    TraceQuery,
    find_traces,
    get_trace,
    list_operations,
    list_services,
    scoped_transaction,
    service_dependencies,
)

router = APIRouter(tags=["jaeger"])

ORG_HEADER = "X-AEOS-Org-ID"
ORG_PARAM = "org_id"
SERVICES_LOOKBACK = timedelta(days=7)
OPERATION_KINDS_LOOKBACK = timedelta(hours=24)
SEARCH_LOOKBACK = timedelta(hours=48)  # Jaeger's default when start/end are missing
DEPENDENCIES_LOOKBACK = timedelta(hours=24)
DEFAULT_LIMIT = 100  # Jaeger's v1 default
MAX_LIMIT = 500
KIND_NAMES = {0: "", **jaeger_json.KIND_NAMES}
KINDS_BY_NAME = {name: kind for kind, name in jaeger_json.KIND_NAMES.items()}


@dataclass(frozen=True, slots=True)
class Reader:
    """A scoped connection and the org to narrow to (staff naming an org), if any."""

    conn: Connection
    org_id: uuid.UUID | None


def _named_org(request: Request) -> uuid.UUID | None:
    raw = request.headers.get(ORG_HEADER) or request.query_params.get(ORG_PARAM)
    if not raw:
        return None
    try:
        return uuid.UUID(raw.strip())
    except ValueError:
        raise ApiError(
            400, "invalid-input", "Invalid org", f"{ORG_HEADER}: not a UUID: {raw!r}"
        ) from None


def jaeger_reader(request: Request, principal: CurrentPrincipal) -> Iterator[Reader]:
    """A read-only transaction: the credential's org, or staff across orgs (or one named)."""
    named = _named_org(request)
    engine: Engine = request.app.state.engine
    if principal.is_staff:
        scope, org_id = Scope(DbRole.SUPPORT), named
    elif principal.org_id is None or (named is not None and named != principal.org_id):
        raise ApiError(403, "forbidden", "Forbidden", "only ALIAS staff may read another org")
    else:
        scope, org_id = Scope(DbRole.TENANT, principal.org_id), None
    with scoped_transaction(engine, scope) as conn:
        conn.execute(text("SET TRANSACTION READ ONLY"))
        yield Reader(conn, org_id)


JaegerReader = Annotated[Reader, Depends(jaeger_reader, scope="function")]


def _json(body: Any) -> Response:
    # orjson straight to bytes: FastAPI's encoder walks every value of a large trace.
    return Response(orjson.dumps(body), media_type="application/json")


def _v1(answer: Callable[[], Any]) -> Any:
    """Runs ``answer``; bad input and misses become the v1 error envelope."""
    try:
        return _json(answer())
    except (jp.ParamError, InvalidInputError) as exc:
        return JSONResponse(jaeger_json.error_envelope(400, str(exc)), status_code=400)
    except NotFoundError as exc:
        return JSONResponse(jaeger_json.error_envelope(404, str(exc)), status_code=404)


def _v3(answer: Callable[[], Any]) -> Any:
    """Runs ``answer``; bad input and misses become api_v3's error body."""
    try:
        return _json(answer())
    except (jp.ParamError, InvalidInputError) as exc:
        return JSONResponse(otlp_json.error(400, str(exc)), status_code=400)
    except NotFoundError as exc:
        return JSONResponse(otlp_json.error(404, str(exc)), status_code=404)


def _now() -> datetime:
    return datetime.now(UTC)


@router.get("/api/services", summary="Services (Jaeger v1)")
def services(r: JaegerReader) -> Any:
    """Services that sent spans in the last 7 days."""
    since = _now() - SERVICES_LOOKBACK
    return _json(jaeger_json.envelope(list_services(r.conn, since, org_id=r.org_id)))


@router.get(
    "/api/services/{service:path}/operations", summary="Operations of a service (Jaeger v1)"
)
def service_operations(r: JaegerReader, service: str) -> Any:
    """Span names of ``service`` in the last 7 days."""
    ops = list_operations(r.conn, service, _now() - SERVICES_LOOKBACK, org_id=r.org_id)
    return _json(jaeger_json.envelope([o.name for o in ops]))


def _operations(r: Reader, service: str, span_kind: str | None) -> list[dict[str, str]]:
    kind = None
    if span_kind:
        if span_kind.lower() not in KINDS_BY_NAME:
            raise jp.ParamError("spanKind", f"one of {', '.join(KINDS_BY_NAME)}, not {span_kind!r}")
        kind = KINDS_BY_NAME[span_kind.lower()]
    since = _now() - OPERATION_KINDS_LOOKBACK
    ops = list_operations(r.conn, service, since, kind=kind, with_kinds=True, org_id=r.org_id)
    return [{"name": o.name, "spanKind": KIND_NAMES.get(o.kind or 0, "")} for o in ops]


@router.get("/api/operations", summary="Operations with span kinds (Jaeger v1)")
def operations(r: JaegerReader, service: str, spanKind: str | None = None) -> Any:
    """``[{name, spanKind}]`` of ``service`` in the last 24 h (optionally one kind)."""
    return _v1(lambda: jaeger_json.envelope(_operations(r, service, spanKind)))


def _search_range(params: dict[str, str]) -> tuple[datetime, datetime]:
    end = jp.at_us(jp.epoch_us(params["end"], "end")) if params.get("end") else _now()
    if params.get("start"):
        return jp.at_us(jp.epoch_us(params["start"], "start")), end
    back = params.get("lookback", "")
    span = jp.lookback(back, "lookback") if back and back != "custom" else SEARCH_LOOKBACK
    return end - span, end


def _limit(raw: str | None, param: str, default: int) -> int:
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise jp.ParamError(param, f"not an integer: {raw!r}") from None
    if value < 0:
        raise jp.ParamError(param, "must not be negative")
    return min(value or default, MAX_LIMIT)


def _duration(raw: str | None, param: str) -> int | None:
    return jp.go_duration_us(raw, param) if raw else None


def _v1_query(request: Request, org_id: uuid.UUID | None) -> TraceQuery:
    """Jaeger v1 search parameters as Grafana sends them → a core query."""
    q = request.query_params
    start, end = _search_range(dict(q))
    spans = SpanFilter(
        service=q.get("service") or None,
        operation=q.get("operation") or None,
        attributes=jp.tags(q.get("tags"), q.getlist("tag")),
        min_duration_us=_duration(q.get("minDuration"), "minDuration"),
        max_duration_us=_duration(q.get("maxDuration"), "maxDuration"),
    )
    limit = _limit(q.get("limit"), "limit", DEFAULT_LIMIT)
    return TraceQuery(start=start, end=end, spans=spans, limit=limit, org_id=org_id)


@router.get("/api/traces", summary="Search traces (Jaeger v1)")
def search_traces(r: JaegerReader, request: Request) -> Any:
    """Whole traces, newest first: ``service``, ``operation``, ``tags`` (JSON object),
    ``minDuration`` / ``maxDuration`` (Go durations, of one span), ``limit``, ``start`` /
    ``end`` (epoch µs) or ``lookback``. Too broad a search is refused (400)."""
    return _v1(lambda: jaeger_json.traces(find_traces(r.conn, _v1_query(request, r.org_id))))


@router.get("/api/traces/{trace_id}", summary="A trace by id (Jaeger v1)")
def trace_by_id(
    r: JaegerReader,
    trace_id: str,
    start: Annotated[str | None, Query(description="Ignored: epoch µs or ms")] = None,
    end: Annotated[str | None, Query(description="Ignored: epoch µs or ms")] = None,
) -> Any:
    """The trace (``data[0]``); 404 in the envelope when not found."""

    def answer() -> Any:
        for name, value in (("start", start), ("end", end)):
            if value:
                jp.epoch_us_or_ms(value, name)  # accepted, not needed: the id is the key
        tid = jp.hex_trace_id(trace_id)
        return jaeger_json.traces([get_trace(r.conn, tid, org_id=r.org_id)])

    return _v1(answer)


@router.get("/api/dependencies", summary="Service dependencies (Jaeger v1)")
def dependencies(
    r: JaegerReader,
    endTs: Annotated[str | None, Query(description="Epoch ms; default now")] = None,
    lookback: Annotated[str | None, Query(description="Milliseconds; default 24 h")] = None,
) -> Any:
    """``[{parent, child, callCount}]`` for ``[endTs - lookback, endTs]`` (at most 7 days)."""

    def answer() -> Any:
        end = jp.at_us(jp.epoch_us(endTs, "endTs") * 1000) if endTs else _now()
        back = (
            timedelta(milliseconds=jp.epoch_us(lookback, "lookback"))
            if lookback
            else DEPENDENCIES_LOOKBACK
        )
        return jaeger_json.dependencies(
            service_dependencies(r.conn, end - back, end, org_id=r.org_id)
        )

    return _v1(answer)


@router.get("/api/v3/services", summary="Services (Jaeger api_v3)")
def services_v3(r: JaegerReader) -> Any:
    """``{"services": [...]}``."""
    return _json({"services": list_services(r.conn, _now() - SERVICES_LOOKBACK, org_id=r.org_id)})


@router.get("/api/v3/operations", summary="Operations (Jaeger api_v3)")
def operations_v3(r: JaegerReader, request: Request) -> Any:
    """``{"operations": [{name, spanKind}]}`` of ``service`` (``spanKind`` optional)."""
    q = request.query_params

    def answer() -> Any:
        service = q.get("service")
        if not service:
            raise jp.ParamError("service", "required")
        return {"operations": _operations(r, service, q.get("spanKind") or q.get("span_kind"))}

    return _v3(answer)


@router.get("/api/v3/traces/{trace_id}", summary="A trace by id (Jaeger api_v3, OTLP JSON)")
def trace_v3(r: JaegerReader, request: Request, trace_id: str) -> Any:
    """``{"result": {"resourceSpans": [...]}}``; the id in hex or base64."""
    q = request.query_params

    def answer() -> Any:
        for name in ("startTime", "endTime", "start_time", "end_time"):
            if q.get(name):
                jp.rfc3339(q[name], name)
        tid = jp.any_trace_id(trace_id)
        return otlp_json.traces_data([get_trace(r.conn, tid, org_id=r.org_id)])

    return _v3(answer)


def _v3_param(q: Any, canonical: str, deprecated: str) -> str | None:
    value = q.get(f"query.{canonical}") or q.get(f"query.{deprecated}")
    return str(value) if value else None


@router.get("/api/v3/traces", summary="Search traces (Jaeger api_v3, OTLP JSON)")
def search_v3(r: JaegerReader, request: Request) -> Any:
    """api_v3 search: ``query.serviceName``, ``query.operationName``, ``query.attributes``
    (JSON), ``query.durationMin`` / ``Max``, ``query.searchDepth``, and the required
    ``query.startTimeMin`` / ``query.startTimeMax`` (RFC 3339). No match → 404."""
    q = request.query_params

    def answer() -> Any:
        lo, hi = (
            _v3_param(q, "startTimeMin", "start_time_min"),
            _v3_param(q, "startTimeMax", "start_time_max"),
        )
        if not lo or not hi:
            raise jp.ParamError(
                "query.startTimeMin", "query.startTimeMin and query.startTimeMax are required"
            )
        dmin, dmax = (
            _v3_param(q, "durationMin", "duration_min"),
            _v3_param(q, "durationMax", "duration_max"),
        )
        depth = _v3_param(q, "searchDepth", "search_depth") or q.get("query.num_traces")
        query = TraceQuery(
            start=jp.rfc3339(lo, "query.startTimeMin"), end=jp.rfc3339(hi, "query.startTimeMax"),
            spans=SpanFilter(
                service=_v3_param(q, "serviceName", "service_name"),
                operation=_v3_param(q, "operationName", "operation_name"),
                attributes=jp.tags(q.get("query.attributes"), [], "query.attributes"),
                min_duration_us=_duration(dmin, "query.durationMin"),
                max_duration_us=_duration(dmax, "query.durationMax"),
            ),
            limit=_limit(depth, "query.searchDepth", DEFAULT_LIMIT), org_id=r.org_id,
        )  # fmt: skip
        found = find_traces(r.conn, query)
        if not found:
            raise NotFoundError("No traces found")
        return otlp_json.traces_data(found)

    return _v3(answer)
