"""OTLP logs → events and agent sightings (heartbeats).

Rules:

- ``time``: ``time_unix_nano``, else ``observed_time_unix_nano``; a record with neither
  (or one beyond the int64 nanosecond range) is rejected, as is one whose event name or
  an attribute is over the limits, or whose ``mosaic.task_run.id`` is over
  ``MAX_ID_BYTES`` (``_bounds``).
- Ids: a log record's trace_id/span_id are optional, and an invalid one (wrong length or
  all zero) means "not associated with a trace/span" (OTLP logs.proto, ``trace_id``:
  "The receivers SHOULD assume that the log record is not associated with a trace if
  ... the field contains an invalid value"): they become None, the record is kept.
- Severity: see :func:`otlp_receiver._translate._events.severity_of`.
- ``event_type``: the record's ``event_name``, else its ``event.name`` attribute, else
  ``log``.
- ``message``: a string body as is; any other body as compact JSON; no body → None.
- ``payload``: all the record's attributes.
- ``event_id``: a hash of the resource, the scope and the serialized record. A retried
  export gives the same id; any difference in the record gives another. Two identical
  records in one request (same time, body, attributes...) get one id, so they are
  stored once.
- A record whose event name is ``damn.agent.heartbeat`` is also a heartbeat of the
  resource's agent (``semconv.normalize.heartbeat_status``; status from
  ``damn.agent.status``, online when missing or unknown).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from otlp_receiver._translate import _events
from otlp_receiver._translate._common import (
    DEFAULT_LIMITS,
    MAX_INT64,
    Limits,
    Rejected,
    Rejections,
    ResourceInfo,
    Resources,
    Scope,
    Translation,
    any_value,
    attributes,
    check_id,
    check_name,
    clean_text,
    scope_of,
    subsystem,
    text_attr,
)
from semconv.attributes.mosaic import MOSAIC_TASK_RUN_ID
from semconv.normalize import EVENT_NAME_ATTRIBUTE, heartbeat_status
from storage import Batch, EventRow

DEFAULT_EVENT_TYPE = "log"
_ZERO_TRACE_ID = bytes(16)
_ZERO_SPAN_ID = bytes(8)


def translate_logs(request: Any, org_id: uuid.UUID, limits: Limits = DEFAULT_LIMITS) -> Translation:
    """Translates an ``ExportLogsServiceRequest`` into the rows of one org.

    Args:
        request: The decoded request.
        org_id: The org of the ingest key that sent it.
        limits: Per-item limits.

    Returns:
        The batch, the number of rejected log records and the messages saying why.
    """
    batch, rejections, resources = Batch(org_id), Rejections(), Resources(limits)
    for resource_logs in request.resource_logs:
        try:
            resource = resources.get(resource_logs.resource)
        except Rejected as exc:
            n = sum(len(scope_logs.log_records) for scope_logs in resource_logs.scope_logs)
            if n:
                rejections.reject("log record", f"resource {exc.reason}", n)
            continue
        for scope_logs in resource_logs.scope_logs:
            scope = scope_of(scope_logs.scope)
            for record in scope_logs.log_records:
                try:
                    batch.events.append(_event(record, resource, scope, limits))
                except Rejected as exc:
                    rejections.reject("log record", exc.reason)
    batch.agents = resources.agent_sightings()
    return Translation(batch, rejections.count, tuple(rejections.messages))


def _event(record: Any, resource: ResourceInfo, scope: Scope, limits: Limits) -> EventRow:
    """One log record → an event row; notes the sighting (and heartbeat) of its agent."""
    time_ns = record.time_unix_nano or record.observed_time_unix_nano
    if time_ns == 0:
        raise Rejected("time_unix_nano and observed_time_unix_nano are both 0")
    observed_ns = record.observed_time_unix_nano or None
    if time_ns > MAX_INT64 or (observed_ns is not None and observed_ns > MAX_INT64):
        raise Rejected("time is out of range")
    attrs = attributes(record.attributes, limits)
    task_run_id = text_attr(attrs, MOSAIC_TASK_RUN_ID)
    check_id(task_run_id, f"attribute {MOSAIC_TASK_RUN_ID!r}")
    name = record.event_name or text_attr(attrs, EVENT_NAME_ATTRIBUTE) or DEFAULT_EVENT_TYPE
    name = check_name(name, limits, "event name")
    severity, number = _events.severity_of(record.severity_number, record.severity_text)
    message = _message(record)  # may reject (a body nested too deeply): before seen()
    resource.seen(time_ns)
    status = heartbeat_status(name, attrs)
    if status is not None:
        resource.heartbeat(time_ns, status)
    return EventRow(
        event_id=_events.event_id(resource.digest, scope.digest, record.SerializeToString()),
        time_ns=time_ns,
        observed_ns=observed_ns,
        severity=severity,
        severity_number=number,
        subsystem=subsystem(resource, attrs),
        event_type=name,
        agent_id=resource.agent_id,
        fleet_id=resource.fleet_id,
        task_run_id=task_run_id,
        trace_id=_optional_id(record.trace_id, 16, _ZERO_TRACE_ID),
        span_id=_optional_id(record.span_id, 8, _ZERO_SPAN_ID),
        service_name=resource.service_name,
        message=message,
        payload=attrs,
        resource_attributes=resource.attributes,
    )


def _optional_id(value: bytes, size: int, zero: bytes) -> bytes | None:
    return value if len(value) == size and value != zero else None


def _message(record: Any) -> str | None:
    """The body as text: a string as is, anything else as compact JSON."""
    if not record.HasField("body"):
        return None
    body = record.body
    text: str = body.string_value
    if text:
        return clean_text(text)
    value = any_value(body)
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
