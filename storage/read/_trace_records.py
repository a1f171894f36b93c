"""Immutable records the trace-query core returns (times in µs since the epoch)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any


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
