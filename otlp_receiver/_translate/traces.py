"""OTLP traces → spans, span events, task runs, LLM calls and agent sightings.

Rules (beyond the OTLP specification's own, cited where they apply):

- A span is rejected (partial success) when its trace_id is not 16 bytes or all zero,
  its span_id not 8 bytes or all zero, its parent_span_id neither empty nor 8 bytes, its
  start time 0, its end before its start, a time beyond 2262 (the int64 nanosecond
  range), its name or an attribute over the limits, or a mapped value (task run id, gen_ai
  tokens and cost, ...) beyond its bound (``_bounds``). An all-zero parent id means "no
  parent". Unknown kinds and status codes (proto3 enums are open) are stored as 0.
- Attributes are kept whole in ``attributes``, the mapped ones included.
- ``subsystem``: ``semconv.normalize.subsystem_of``: the span's ``aeos.subsystem``, else
  the resource's, else the namespaces its attributes use (uce.*, damn.*, mosaic.*),
  else SYSTEM.
- Task runs: a span carrying ``mosaic.task_run.id`` is a sighting of that run. It is the
  run's own ("root") span when its name starts with ``mosaic.task_run`` (the name
  ``semconv.helpers.task_run_span`` gives it), or it carries ``mosaic.task.id`` (which
  that helper always sets, whatever the name), or it has no parent. Its status is
  ``mosaic.task_run.status`` when that is a known value; else the root span decides
  (status error → failed, ok/unset → succeeded) and other spans leave the status alone
  (None): a child's error is often retried or handled, and the run is over only when
  its own span ends.
- gen_ai usage comes from ``semconv.normalize.gen_ai_usage`` (current and deprecated
  names). An LLM call is a span with usage (``GenAiUsage.has_usage``: a token count or
  an explicit ``aeos.cost.usd``); its model is the response model, else the request
  model.
- Span events become events: severity info (error, for an event named ``exception``),
  message ``exception.message`` else the name, time the event's (else the span's
  start), ids and context the span's. The event id hashes the resource, the scope, the
  span ids and the serialized event (not its position: a retry yields the same id;
  identical events of one span are stored once). A span event over the limits is
  skipped with a warning; the span is kept. A ``damn.agent.heartbeat`` event is also a
  heartbeat of the resource's agent.
- Links are kept as trace_id + span_id (24 bytes each; their attributes and trace
  state have no column); a link with invalid ids is skipped with a warning.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from otlp_receiver._decode import decode_traces
from otlp_receiver._translate import _events, _wire
from otlp_receiver._translate._bounds import (
    SPAN_BOUNDED_KEYS,
    check_span_attributes,
    check_usage,
)
from otlp_receiver._translate._common import (
    DEFAULT_LIMITS,
    MAX_INT32,
    MAX_INT64,
    FastPathDoubt,
    Limits,
    Rejected,
    Rejections,
    ResourceInfo,
    Resources,
    Scope,
    Translation,
    attributes,
    check_name,
    clean_text,
    scope_of,
    subsystem,
    text_attr,
)
from semconv.attributes.mosaic import (
    MOSAIC_TASK_ID,
    MOSAIC_TASK_RUN_ID,
    MOSAIC_TASK_RUN_STATUS,
    MOSAIC_TASK_TITLE,
    MosaicTaskRunStatusValues,
)
from semconv.helpers import SPAN_TASK_RUN
from semconv.normalize import GEN_AI_ALIASES, GenAiUsage, gen_ai_usage, heartbeat_status
from storage import Batch, EventRow, LlmCall, SpanRow, TaskRunSighting

TASK_RUN_SPAN_PREFIX = SPAN_TASK_RUN  # what semconv.helpers.task_run_span names its span
TASK_RUN_STATUSES = frozenset(value.value for value in MosaicTaskRunStatusValues)
EXCEPTION_MESSAGE = "exception.message"
STATUS_ERROR = 2  # Status.STATUS_CODE_ERROR
# Every attribute gen_ai_usage reads: a span with none of them has no usage (a set
# test is far cheaper than the ~30 lookups of gen_ai_usage on every span).
GEN_AI_KEYS = frozenset(name for names in GEN_AI_ALIASES.values() for name in names)
_MAPPED_KEYS = GEN_AI_KEYS | SPAN_BOUNDED_KEYS
MAX_SPAN_KIND = 5  # SPAN_KIND_CONSUMER
_ZERO_TRACE_ID = bytes(16)
_ZERO_SPAN_ID = bytes(8)


def translate_traces(
    request: Any, org_id: uuid.UUID, limits: Limits = DEFAULT_LIMITS
) -> Translation:
    """Translates an ``ExportTraceServiceRequest`` into the rows of one org.

    Args:
        request: The decoded request.
        org_id: The org of the ingest key that sent it.
        limits: Per-item limits.

    Returns:
        The batch, the number of rejected spans and the messages saying why.
    """
    try:
        return _translate(request, org_id, limits)
    except FastPathDoubt:  # a raw part the fast decoder left only the reference decides
        return _translate(decode_traces(request.body, request.media_type), org_id, limits)


def _translate(request: Any, org_id: uuid.UUID, limits: Limits) -> Translation:
    out = _Spans(
        Batch(org_id), Rejections(), Resources(limits), limits, _wire.AttributeCache(limits)
    )
    for resource_spans in request.resource_spans:
        try:
            resource = out.resources.get(resource_spans.resource)
        except Rejected as exc:
            n = sum(len(scope_spans.spans) for scope_spans in resource_spans.scope_spans)
            if n:
                out.rejections.reject("span", f"resource {exc.reason}", n)
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    _wire.check_wire(span)
            continue
        for scope_spans in resource_spans.scope_spans:
            scope = scope_of(scope_spans.scope)
            for span in scope_spans.spans:
                try:
                    out.add(span, resource, scope)
                except Rejected as exc:
                    out.rejections.reject("span", exc.reason)
                    _wire.check_wire(span)
    out.batch.agents = out.resources.agent_sightings()
    return Translation(out.batch, out.rejections.count, tuple(out.rejections.messages))


@dataclass(slots=True)
class _Spans:
    """The rows of one request, built span by span."""

    batch: Batch
    rejections: Rejections
    resources: Resources
    limits: Limits
    cache: dict[Any, Any]  # attribute conversions of this request (see _wire)

    def add(self, span: Any, resource: ResourceInfo, scope: Scope) -> None:
        """Adds one span and what it implies; raises :class:`Rejected` to reject it."""
        trace_id, span_id, parent_id = _ids(span)
        start_ns, end_ns = span.start_time_unix_nano, span.end_time_unix_nano
        if start_ns == 0:
            raise Rejected("start_time_unix_nano is 0")
        if end_ns < start_ns:
            raise Rejected("end_time_unix_nano is before start_time_unix_nano")
        if end_ns > MAX_INT64:
            raise Rejected("time is out of range")
        name = check_name(span.name, self.limits)
        attrs = attributes(span.attributes, self.limits, self.cache)
        usage = None
        if not _MAPPED_KEYS.isdisjoint(attrs):  # one set test for the spans with neither
            if not SPAN_BOUNDED_KEYS.isdisjoint(attrs):
                check_span_attributes(attrs)
            if not GEN_AI_KEYS.isdisjoint(attrs):
                usage = gen_ai_usage(attrs)
                if usage is not None:
                    check_usage(usage)
        links = self._links(span) if span.links else None
        ids = (trace_id, span_id, parent_id)
        row = _span_row(span, resource, scope, name, attrs, usage, ids, links)
        self.batch.spans.append(row)
        if end_ns > resource.seen_ns:  # resource.seen(end_ns), inline (every span)
            resource.seen_ns = end_ns
        if row.task_run_id is not None:
            self.batch.task_runs.append(_task_run(row, attrs))
        if usage is not None and usage.has_usage:
            self.batch.llm_calls.append(_llm_call(row, usage))
        for event in span.events:
            if type(event) is bytes:  # the lite decoder's raw event
                event = _wire.parse_event(event)
            self._event(event, row, resource, scope)

    def _links(self, span: Any) -> list[bytes] | None:
        """The valid links as trace_id + span_id (24 bytes); invalid ones are skipped."""
        links: list[bytes] = []
        for link in span.links:
            trace_id, span_id = link.trace_id, link.span_id
            if _valid(trace_id, 16, _ZERO_TRACE_ID) and _valid(span_id, 8, _ZERO_SPAN_ID):
                links.append(trace_id + span_id)
            else:
                self.rejections.warn("span link with an invalid trace_id or span_id skipped")
        return links or None

    def _event(self, event: Any, span: SpanRow, resource: ResourceInfo, scope: Scope) -> None:
        """A span event → an event row; a heartbeat also updates the resource's agent.

        The event id hashes the resource, scope, span ids and the serialized event, not
        its position: a retry gives the same id; identical events of one span are one.
        """
        try:
            name = check_name(event.name, self.limits, "span event name")
            attrs = attributes(event.attributes, self.limits, self.cache)
        except Rejected as exc:
            self.rejections.warn(f"span event skipped: {exc.reason}")
            return
        time_ns = event.time_unix_nano or span.start_ns
        if time_ns > MAX_INT64:
            time_ns = span.start_ns
        event_id = _events.event_id(
            resource.digest, scope.digest, span.trace_id, span.span_id, event.SerializeToString()
        )
        self.batch.events.append(_event_row(event_id, time_ns, name, attrs, span))
        status = heartbeat_status(name, attrs)
        if status is not None:
            resource.heartbeat(time_ns, status)


def _event_row(
    event_id: bytes, time_ns: int, name: str, attrs: dict[str, Any], span: SpanRow
) -> EventRow:
    """A span event's row: the span's context, severity error for an ``exception``."""
    severity, number = (
        _events.EXCEPTION_SEVERITY if name == "exception" else _events.SPAN_EVENT_SEVERITY
    )
    return EventRow(
        event_id=event_id,
        time_ns=time_ns,
        observed_ns=None,
        severity=severity,
        severity_number=number,
        subsystem=span.subsystem,
        event_type=name,
        agent_id=span.agent_id,
        fleet_id=span.fleet_id,
        task_run_id=span.task_run_id,
        trace_id=span.trace_id,
        span_id=span.span_id,
        service_name=span.service_name,
        message=text_attr(attrs, EXCEPTION_MESSAGE) or name,
        payload=attrs,
        resource_attributes=span.resource_attributes,
    )


def _valid(span_or_trace_id: bytes, size: int, zero: bytes) -> bool:
    return len(span_or_trace_id) == size and span_or_trace_id != zero


def _ids(span: Any) -> tuple[bytes, bytes, bytes | None]:
    """trace_id, span_id, parent_span_id (None for a root); :class:`Rejected` if invalid.

    OTLP trace.proto: "The ID is a 16-byte array. An ID with all zeroes OR of length
    other than 16 bytes is considered invalid" (8 bytes for span ids).
    """
    trace_id, span_id, parent_id = span.trace_id, span.span_id, span.parent_span_id
    if not _valid(trace_id, 16, _ZERO_TRACE_ID):
        raise Rejected("trace_id must be 16 bytes, not all zero")
    if not _valid(span_id, 8, _ZERO_SPAN_ID):
        raise Rejected("span_id must be 8 bytes, not all zero")
    if not parent_id or parent_id == _ZERO_SPAN_ID:
        return trace_id, span_id, None
    if len(parent_id) != 8:
        raise Rejected("parent_span_id must be empty or 8 bytes")
    return trace_id, span_id, parent_id


def _span_row(
    span: Any,
    resource: ResourceInfo,
    scope: Scope,
    name: str,
    attrs: dict[str, Any],
    usage: GenAiUsage | None,
    ids: tuple[bytes, bytes, bytes | None],
    links: list[bytes] | None,
) -> SpanRow:
    status = span.status
    code, kind, trace_state, message = status.code, span.kind, span.trace_state, status.message
    if usage is None:
        operation = provider = model = None
        tokens_in = tokens_out = None
    else:
        operation, provider, model = usage.operation, usage.provider, usage.model
        tokens_in, tokens_out = usage.input_tokens, usage.output_tokens
    dropped = span.dropped_attributes_count
    return SpanRow(  # positional, in SpanRow's field order: keywords cost a third more here
        *ids,
        (clean_text(trace_state) or None) if trace_state else None,
        name,
        kind if 0 <= kind <= MAX_SPAN_KIND else 0,  # clamp_enum, inline (every span)
        span.start_time_unix_nano,
        span.end_time_unix_nano,
        code if 0 <= code <= STATUS_ERROR else 0,
        (clean_text(message) or None) if message else None,
        subsystem(resource, attrs),
        resource.service_name,
        resource.agent_id,
        resource.fleet_id,
        text_attr(attrs, MOSAIC_TASK_RUN_ID),
        operation,
        provider,
        model,
        tokens_in,
        tokens_out,
        scope.name,
        attrs,
        resource.attributes,
        links,
        dropped if dropped <= MAX_INT32 else MAX_INT32,
    )


def _task_run(span: SpanRow, attrs: dict[str, Any]) -> TaskRunSighting:
    assert span.task_run_id is not None
    is_root = (
        span.parent_span_id is None
        or MOSAIC_TASK_ID in attrs
        or span.name.startswith(TASK_RUN_SPAN_PREFIX)
    )
    return TaskRunSighting(
        task_run_id=span.task_run_id,
        task_id=text_attr(attrs, MOSAIC_TASK_ID),
        agent_id=span.agent_id,
        status=_run_status(attrs, span.status_code, is_root),
        start_ns=span.start_ns,
        end_ns=span.end_ns,
        trace_id=span.trace_id,
        is_root=is_root,
        task_title=text_attr(attrs, MOSAIC_TASK_TITLE),
        span_id=span.span_id,
    )


def _run_status(attrs: dict[str, Any], status_code: int, is_root: bool) -> str | None:
    explicit = text_attr(attrs, MOSAIC_TASK_RUN_STATUS)
    if explicit is not None:
        explicit = explicit.lower().replace("cancelled", "canceled")
        if explicit in TASK_RUN_STATUSES:
            return explicit
    if not is_root:
        return None
    return "failed" if status_code == STATUS_ERROR else "succeeded"


def _llm_call(span: SpanRow, usage: GenAiUsage) -> LlmCall:
    return LlmCall(
        trace_id=span.trace_id,
        span_id=span.span_id,
        time_ns=span.start_ns,
        task_run_id=span.task_run_id,
        agent_id=span.agent_id,
        subsystem=span.subsystem,
        provider=usage.provider or "",
        model=usage.model or "",
        input_tokens=usage.input_tokens or 0,
        output_tokens=usage.output_tokens or 0,
        cache_read_tokens=usage.cache_read_tokens or 0,
        cache_creation_tokens=usage.cache_creation_tokens or 0,
        explicit_cost_usd=usage.explicit_cost_usd,
    )
