"""Rows the ingest path hands to storage: the contract between translation and writing.

Times are Unix nanoseconds (``int``), as OTLP carries them: converting once, in SQL,
is cheaper than building a ``datetime`` per row in Python. Ids are raw bytes (16-byte
trace ids, 8-byte span ids). Rows carry no ``org_id``: a :class:`Batch` belongs to
exactly one org, the one of the ingest key that sent it.

The row classes are slotted dataclasses, not frozen: a frozen dataclass's ``__init__``
sets each field through ``object.__setattr__``, which made building a span's rows about
five times slower (a measurable part of the receiver's time per span). Nothing changes
a row after translation built it; :class:`Batch` is handed over once filled.

Translation (``otlp_receiver``) builds these; ``storage.ingest.writer`` derives everything
else (trace summaries, task-run aggregates, cost line items, rollups) from the rows it
actually inserted, so that a retried export is never counted twice.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

JsonObject = dict[str, Any]


@dataclass(slots=True)
class SpanRow:
    """One OTLP span, mapped (columns of table ``spans``)."""

    trace_id: bytes
    span_id: bytes
    parent_span_id: bytes | None
    trace_state: str | None
    name: str
    kind: int
    start_ns: int
    end_ns: int
    status_code: int  # 0 unset, 1 ok, 2 error (OTLP Status.StatusCode)
    status_message: str | None
    subsystem: str
    service_name: str | None
    agent_id: str | None
    fleet_id: str | None
    task_run_id: str | None
    gen_ai_operation: str | None
    gen_ai_provider: str | None
    gen_ai_model: str | None
    input_tokens: int | None
    output_tokens: int | None
    scope_name: str | None
    attributes: JsonObject
    resource_attributes: JsonObject
    links: list[bytes] | None = None  # linked span ids (trace id + span id, 24 bytes each)
    dropped_attributes_count: int = 0

    @property
    def duration_ms(self) -> float:
        """Duration in milliseconds (never negative)."""
        return max(self.end_ns - self.start_ns, 0) / 1e6


@dataclass(slots=True)
class EventRow:
    """An OTLP log record or span event (table ``events``)."""

    event_id: bytes  # 16-byte content hash: a retried export yields the same id
    time_ns: int
    observed_ns: int | None
    severity: str  # debug, info, warn, error, fatal
    severity_number: int
    subsystem: str
    event_type: str
    agent_id: str | None
    fleet_id: str | None
    task_run_id: str | None
    trace_id: bytes | None
    span_id: bytes | None
    service_name: str | None
    message: str | None
    payload: JsonObject
    resource_attributes: JsonObject


@dataclass(slots=True)
class MetricPointRow:
    """One OTLP data point (table ``metric_points``); kind-specific fields may be None."""

    metric: str
    series_id: bytes  # 16-byte hash of metric, resource, scope and point attributes
    time_ns: int
    start_ns: int | None
    kind: str  # gauge, sum, histogram, exponential_histogram, summary
    temporality: int  # 0 unspecified, 1 delta, 2 cumulative (OTLP AggregationTemporality)
    is_monotonic: bool
    unit: str
    subsystem: str
    service_name: str | None
    agent_id: str | None
    attributes: JsonObject
    resource_attributes: JsonObject
    value: float | None = None
    count: int | None = None
    sum: float | None = None
    min: float | None = None
    max: float | None = None
    explicit_bounds: list[float] | None = None
    bucket_counts: list[int] | None = None
    exp_scale: int | None = None
    exp_zero_count: int | None = None
    exp_positive_offset: int | None = None
    exp_positive_counts: list[int] | None = None
    exp_negative_offset: int | None = None
    exp_negative_counts: list[int] | None = None


@dataclass(slots=True)
class LlmCall:
    """LLM usage found on a span; the writer prices it into a cost line item."""

    trace_id: bytes
    span_id: bytes
    time_ns: int
    task_run_id: str | None
    agent_id: str | None
    subsystem: str
    provider: str
    model: str
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_creation_tokens: int
    explicit_cost_usd: float | None  # wins over the price table when present


@dataclass(slots=True)
class AgentSighting:
    """An agent seen in a resource (upserted into ``agents`` and ``fleets``)."""

    agent_id: str
    fleet_id: str | None
    name: str
    subsystem: str
    service_name: str | None
    version: str | None
    seen_ns: int
    resource_attributes: JsonObject
    heartbeat_ns: int | None = None  # set by a heartbeat: last_heartbeat_at and status
    status: str | None = None  # online, offline, degraded (from a heartbeat)


@dataclass(slots=True)
class TaskRunSighting:
    """A span that carries ``mosaic.task_run.id`` (upserted into ``task_runs``)."""

    task_run_id: str
    task_id: str | None
    agent_id: str | None
    status: str | None  # queued, running, succeeded, failed, canceled; None: keep
    start_ns: int
    end_ns: int
    trace_id: bytes
    is_root: bool  # the task run's own span (its duration is the run's duration)
    task_title: str | None = None
    span_id: bytes = b""  # the span it came from (so a retried export counts once)


@dataclass(slots=True)
class Batch:
    """Everything one export request produced, for one org."""

    org_id: uuid.UUID
    spans: list[SpanRow] = field(default_factory=list)
    events: list[EventRow] = field(default_factory=list)
    metric_points: list[MetricPointRow] = field(default_factory=list)
    llm_calls: list[LlmCall] = field(default_factory=list)
    agents: list[AgentSighting] = field(default_factory=list)
    task_runs: list[TaskRunSighting] = field(default_factory=list)

    @property
    def item_count(self) -> int:
        """Spans + events + data points: what the queue bound counts."""
        return len(self.spans) + len(self.events) + len(self.metric_points)
