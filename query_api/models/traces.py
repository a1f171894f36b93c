"""Response models of the trace API (``/v1/traces``, ``/v1/task-runs/{id}/trace``,
``/v1/dependencies``), built from the trace-query core's records.

Ids are lowercase hex; times are RFC 3339 with microseconds, and also integer
microseconds since the epoch (``*_us``) so a client can do exact arithmetic; costs are
decimal strings (exact).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

import orjson
from pydantic import BaseModel, Field

from storage import ServiceDependency, SpanRecord, TaskRunRef, Trace, TraceAnalysis, TraceSummary

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
KINDS = ("unspecified", "internal", "server", "client", "producer", "consumer")
STATUSES: tuple[Literal["unset", "ok", "error"], ...] = ("unset", "ok", "error")
PRUNED_NOTICE = (
    "The spans of this trace were not kept by sampling (pruned at {at}); its summary and "
    "the costs of its LLM calls remain."
)


def _time(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


class SpanStatus(BaseModel):
    code: Literal["unset", "ok", "error"]
    message: str | None = None


class SpanEventPublic(BaseModel):
    time: datetime
    time_us: int
    name: str
    attributes: dict[str, Any]


class SpanLinkPublic(BaseModel):
    trace_id: str
    span_id: str


class SpanPublic(BaseModel):
    """One span, placed in its trace's tree and waterfall."""

    span_id: str
    parent_span_id: str | None
    name: str
    kind: str
    service_name: str | None
    start_time: datetime
    end_time: datetime
    start_us: int
    end_us: int
    duration_us: int
    offset_us: int = Field(description="Start relative to the trace's start (waterfall)")
    depth: int
    self_us: int = Field(description="Duration not covered by any child")
    critical_path_us: int = Field(description="Time this span holds on the critical path")
    orphan: bool = Field(description="Its parent is not in the trace (never arrived)")
    status: SpanStatus
    attributes: dict[str, Any]
    resource: dict[str, Any]
    scope_name: str | None
    trace_state: str | None
    subsystem: str
    agent_id: str | None
    task_run_id: str | None
    events: list[SpanEventPublic]
    links: list[SpanLinkPublic]


class PathSegmentPublic(BaseModel):
    """A stretch of the critical path: a span holding the trace up, or a gap."""

    span_id: str | None
    name: str | None
    service_name: str | None
    offset_us: int
    duration_us: int


class PathContribution(BaseModel):
    span_id: str | None
    name: str | None
    service_name: str | None
    contribution_us: int
    share: float = Field(description="Of the trace's duration, 0..1")


class LlmCallPublic(BaseModel):
    span_id: str
    name: str | None
    provider: str
    model: str
    tokens_in: int
    tokens_out: int
    cache_read_tokens: int
    cache_creation_tokens: int
    cost_usd: Decimal
    cost_source: str
    critical_path_us: int


class TraceTotalsPublic(BaseModel):
    services: list[str]
    span_count: int
    error_count: int
    duration_us: int
    llm_calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal


class TraceSummaryPublic(BaseModel):
    """A trace in search results."""

    trace_id: str
    org_id: uuid.UUID
    root_service_name: str | None
    root_span_name: str | None
    start_time: datetime
    start_us: int
    duration_us: int
    span_count: int
    error_count: int
    status: Literal["ok", "error"]
    sampled: bool = Field(description="Kept by the sampling decision")
    spans_kept: bool = Field(description="False once sampling has pruned its spans")
    task_run_id: str | None


class TraceViewPublic(BaseModel):
    """A trace by id: every stored span, the tree, the critical path and the totals."""

    summary: TraceSummaryPublic
    notice: str | None = Field(description="Set when the spans were not kept by sampling")
    totals: TraceTotalsPublic
    orphan_count: int
    spans: list[SpanPublic]
    critical_path: list[PathSegmentPublic]
    critical_path_contributions: list[PathContribution]
    llm_calls: list[LlmCallPublic] = Field(description="Most expensive first")


class TaskRunPublic(BaseModel):
    task_run_id: str
    task_id: str | None
    agent_id: str | None
    status: str
    trace_id: str | None
    cost_usd: Decimal
    started_at: datetime | None
    ended_at: datetime | None
    duration_ms: float | None


class TaskRunTracePublic(BaseModel):
    task_run: TaskRunPublic
    trace: TraceViewPublic


class DependencyPublic(BaseModel):
    parent: str
    child: str
    call_count: int
    error_count: int


class DependenciesPublic(BaseModel):
    data: list[DependencyPublic]


def summary_public(s: TraceSummary) -> TraceSummaryPublic:
    """A summary row as the API shows it."""
    return TraceSummaryPublic(
        trace_id=s.trace_id.hex(), org_id=s.org_id, root_service_name=s.root_service_name,
        root_span_name=s.root_span_name, start_time=_time(s.start_us), start_us=s.start_us,
        duration_us=s.duration_us, span_count=s.span_count, error_count=s.error_count,
        status="error" if s.error_count else "ok", sampled=s.sampled, spans_kept=s.spans_kept,
        task_run_id=s.task_run_id,
    )  # fmt: skip


def trace_public(trace: Trace, view: TraceAnalysis, *, with_spans: bool = True) -> TraceViewPublic:
    """The full trace view (without its spans when ``with_spans`` is false)."""
    spans = {s.span_id: s for s in trace.spans}
    contrib = view.critical_path.contributions()
    start = view.critical_path.start_us if trace.spans else trace.summary.start_us
    total = max(view.critical_path.end_us - view.critical_path.start_us, 1)
    t = view.totals
    at = trace.summary.spans_pruned_at
    return TraceViewPublic(
        summary=summary_public(trace.summary),
        notice=PRUNED_NOTICE.format(at=at.isoformat()) if trace.pruned and at else None,
        totals=TraceTotalsPublic(
            services=list(t.services),
            span_count=t.span_count,
            error_count=t.error_count,
            duration_us=t.duration_us,
            llm_calls=t.llm_calls,
            input_tokens=t.input_tokens,
            output_tokens=t.output_tokens,
            cost_usd=t.cost_usd,
        ),
        orphan_count=view.orphan_count,
        spans=[
            SpanPublic.model_validate(span_json(spans[sid], view, contrib.get(sid, 0)))
            for sid in (view.order if with_spans else ())
        ],
        critical_path=[
            PathSegmentPublic(
                span_id=seg.span_id.hex() if seg.span_id else None,
                name=_name(spans, seg.span_id),
                service_name=_service(spans, seg.span_id),
                offset_us=seg.start_us - start,
                duration_us=seg.duration_us,
            )
            for seg in view.critical_path.segments
        ],
        critical_path_contributions=[
            PathContribution(
                span_id=sid.hex() if sid else None,
                name=_name(spans, sid),
                service_name=_service(spans, sid),
                contribution_us=us,
                share=us / total,
            )
            for sid, us in sorted(contrib.items(), key=lambda kv: -kv[1])
        ],
        llm_calls=[
            LlmCallPublic(
                span_id=c.span_id.hex(),
                name=_name(spans, c.span_id),
                provider=c.provider,
                model=c.model,
                tokens_in=c.tokens_in,
                tokens_out=c.tokens_out,
                cache_read_tokens=c.cache_read_tokens,
                cache_creation_tokens=c.cache_creation_tokens,
                cost_usd=c.cost_usd,
                cost_source=c.cost_source,
                critical_path_us=contrib.get(c.span_id, 0),
            )
            for c in sorted(trace.costs, key=lambda c: (-c.cost_usd, c.time_us))
        ],
    )


def task_run_public(run: TaskRunRef) -> TaskRunPublic:
    """A task run as the API shows it."""
    return TaskRunPublic(
        task_run_id=run.task_run_id, task_id=run.task_id, agent_id=run.agent_id,
        status=run.status, trace_id=run.trace_id.hex() if run.trace_id else None,
        cost_usd=run.cost_usd, started_at=run.started_at, ended_at=run.ended_at,
        duration_ms=run.duration_ms,
    )  # fmt: skip


def dependencies_public(deps: list[ServiceDependency]) -> DependenciesPublic:
    """Service dependencies as the API shows them."""
    return DependenciesPublic(
        data=[
            DependencyPublic(
                parent=d.parent, child=d.child, call_count=d.call_count, error_count=d.error_count
            )
            for d in deps
        ]
    )


def span_json(s: SpanRecord, view: TraceAnalysis, critical_us: int) -> dict[str, Any]:
    """One span as :class:`SpanPublic` serializes it, built as a plain dict: a 10,000-span
    trace would otherwise spend most of its time constructing models (tests check that
    every answer validates against :class:`TraceViewPublic`)."""
    p = view.placements[s.span_id]
    return {
        "span_id": s.span_id.hex(),
        "parent_span_id": s.parent_span_id.hex() if s.parent_span_id else None,
        "name": s.name,
        "kind": KINDS[s.kind] if 0 <= s.kind < len(KINDS) else "unspecified",
        "service_name": s.service_name,
        "start_time": _iso(s.start_us),
        "end_time": _iso(s.end_us),
        "start_us": s.start_us,
        "end_us": s.end_us,
        "duration_us": s.duration_us,
        "offset_us": p.offset_us,
        "depth": p.depth,
        "self_us": p.self_us,
        "critical_path_us": critical_us,
        "orphan": p.orphan,
        "status": {"code": _status(s.status_code), "message": s.status_message},
        "attributes": s.attributes,
        "resource": s.resource_attributes,
        "scope_name": s.scope_name,
        "trace_state": s.trace_state,
        "subsystem": s.subsystem,
        "agent_id": s.agent_id,
        "task_run_id": s.task_run_id,
        "events": [
            {"time": _iso(e.time_us), "time_us": e.time_us, "name": e.name,
             "attributes": e.attributes}
            for e in s.events
        ],
        "links": [{"trace_id": x.trace_id.hex(), "span_id": x.span_id.hex()} for x in s.links],
    }  # fmt: skip


def trace_json(trace: Trace, view: TraceAnalysis) -> bytes:
    """:class:`TraceViewPublic` as JSON bytes: the small parts through the model, the
    spans as plain dicts (:func:`span_json`)."""
    body = trace_public(trace, view, with_spans=False).model_dump(mode="json")
    spans = {s.span_id: s for s in trace.spans}
    contrib = view.critical_path.contributions()
    body["spans"] = [span_json(spans[sid], view, contrib.get(sid, 0)) for sid in view.order]
    return orjson.dumps(body)


def _iso(us: int) -> str:
    # Pydantic's own form for UTC datetimes (so every time of an answer looks alike),
    # from gmtime: datetime arithmetic and isoformat cost more for 10,000-span traces.
    seconds, micros = divmod(us, 1_000_000)
    y, mo, d, h, mi, s = time.gmtime(seconds)[:6]
    frac = f".{micros:06d}" if micros else ""
    return f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}{frac}Z"


def _status(code: int) -> Literal["unset", "ok", "error"]:
    return STATUSES[code] if 0 <= code < len(STATUSES) else "unset"


def _name(spans: Mapping[bytes, SpanRecord], sid: bytes | None) -> str | None:
    span = spans.get(sid) if sid else None
    return span.name if span else None


def _service(spans: Mapping[bytes, SpanRecord], sid: bytes | None) -> str | None:
    span = spans.get(sid) if sid else None
    return span.service_name if span else None
