"""Immutable records the trace-query core returns (times in µs since the epoch), and
their construction from the rows of ``storage.read._traces_sql``."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy import Row


@dataclass(frozen=True, slots=True)
class TraceSummary:
    """One trace's summary row: kept for every trace, whether or not its spans are."""

    org_id: uuid.UUID
    trace_id: bytes
    start_us: int
    end_us: int
    span_count: int
    error_count: int
    root_service_name: str | None
    root_span_name: str | None
    task_run_id: str | None
    sampled: bool
    spans_pruned_at: datetime | None

    @property
    def duration_us(self) -> int:
        """End-to-end duration."""
        return self.end_us - self.start_us

    @property
    def spans_kept(self) -> bool:
        """False once the sampling sweep has deleted the trace's spans."""
        return self.spans_pruned_at is None


@dataclass(frozen=True, slots=True)
class SpanEvent:
    """A span event (or a log record carrying the span's context)."""

    time_us: int
    name: str
    attributes: Mapping[str, Any]
    severity: str
    message: str | None


@dataclass(frozen=True, slots=True)
class SpanLink:
    """A link to another span (OTLP link; FOLLOWS_FROM in Jaeger)."""

    trace_id: bytes
    span_id: bytes


@dataclass(frozen=True, slots=True)
class SpanRecord:
    """One stored span with its events and links."""

    trace_id: bytes
    span_id: bytes
    parent_span_id: bytes | None
    trace_state: str | None
    name: str
    kind: int
    start_us: int
    end_us: int
    status_code: int
    status_message: str | None
    subsystem: str
    service_name: str | None
    agent_id: str | None
    task_run_id: str | None
    gen_ai_operation: str | None
    gen_ai_provider: str | None
    gen_ai_model: str | None
    input_tokens: int | None
    output_tokens: int | None
    scope_name: str | None
    attributes: Mapping[str, Any]
    resource_attributes: Mapping[str, Any]
    links: tuple[SpanLink, ...]
    events: tuple[SpanEvent, ...]
    dropped_attributes_count: int

    @property
    def duration_us(self) -> int:
        """The span's own duration."""
        return self.end_us - self.start_us


@dataclass(frozen=True, slots=True)
class LlmCost:
    """The cost line item of one LLM call (span) of a trace."""

    span_id: bytes
    time_us: int
    provider: str
    model: str
    tokens_in: int
    tokens_out: int
    cache_read_tokens: int
    cache_creation_tokens: int
    cost_usd: Decimal
    cost_source: str


@dataclass(frozen=True, slots=True)
class Trace:
    """A trace: its summary, the spans stored for it, the costs of its LLM calls."""

    summary: TraceSummary
    spans: tuple[SpanRecord, ...]
    costs: tuple[LlmCost, ...]

    @property
    def pruned(self) -> bool:
        """Its spans were deleted by sampling: only the summary (and costs) remain."""
        return not self.summary.spans_kept and not self.spans


def summary_from_row(r: Row[Any]) -> TraceSummary:
    """A ``traces`` row (``SUMMARY_COLUMNS``)."""
    return TraceSummary(
        org_id=r.org_id, trace_id=bytes(r.trace_id), start_us=int(r.start_us),
        end_us=int(r.end_us), span_count=r.span_count, error_count=r.error_count,
        root_service_name=r.root_service_name, root_span_name=r.root_span_name,
        task_run_id=r.task_run_id, sampled=r.sampled, spans_pruned_at=r.spans_pruned_at,
    )  # fmt: skip


def span_from_row(
    r: Sequence[Any], events: Sequence[SpanEvent], resources: dict[str, Mapping[str, Any]]
) -> SpanRecord:
    """A span from a row of ``SPANS_OF_TRACES``, by position (the statement's column
    order): by-name access costs more than the rest of the row for large traces. JSON comes
    as text for orjson, several times faster than the driver's json.loads."""
    (_org, trace_id, span_id, parent, trace_state, name, kind, start_us, end_us, status_code,
     status_message, subsystem, service_name, agent_id, task_run_id, gen_ai_operation,
     gen_ai_provider, gen_ai_model, input_tokens, output_tokens, scope_name, attributes,
     resource_text, links, dropped) = r  # fmt: skip
    resource = resources.get(resource_text)
    if resource is None:
        resource = resources[resource_text] = _mapping(orjson.loads(resource_text))
    return SpanRecord(
        bytes(trace_id), bytes(span_id), bytes(parent) if parent is not None else None,
        trace_state, name, kind, start_us, end_us, status_code, status_message, subsystem,
        service_name, agent_id, task_run_id, gen_ai_operation, gen_ai_provider, gen_ai_model,
        input_tokens, output_tokens, scope_name, _mapping(orjson.loads(attributes)), resource,
        tuple(SpanLink(bytes(x[:16]), bytes(x[16:])) for x in links) if links else (),
        tuple(events), dropped,
    )  # fmt: skip


def event_from_row(r: Row[Any]) -> SpanEvent:
    """A row of ``EVENTS_OF_TRACES``."""
    return SpanEvent(int(r.time_us), r.event_type, _mapping(r.payload), r.severity, r.message)


def cost_from_row(r: Row[Any]) -> LlmCost:
    """A row of ``COSTS_OF_TRACES``."""
    return LlmCost(
        span_id=bytes(r.span_id), time_us=int(r.time_us), provider=r.provider, model=r.model,
        tokens_in=r.tokens_in, tokens_out=r.tokens_out, cache_read_tokens=r.cache_read_tokens,
        cache_creation_tokens=r.cache_creation_tokens, cost_usd=Decimal(r.cost_usd),
        cost_source=r.cost_source,
    )  # fmt: skip


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}
