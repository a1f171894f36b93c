"""Traces as OTLP JSON (``TracesData``), for Jaeger's api_v3 (upper-floors notes §A4).

Pure renderer over the trace-query core's records. Follows the OTLP/JSON encoding of
the OTLP specification: ids in lowercase hex, 64-bit integers (times in nanoseconds,
``intValue``) as decimal strings, enums as integers, lowerCamelCase field names. Spans
are grouped by resource, then by instrumentation scope, in order of first appearance.
Stored times have microsecond precision, so nanosecond fields end in ``000``. What is not
stored (link attributes and trace state, scope versions, event drop counts) is omitted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from storage import SpanRecord, Trace

JsonDict = dict[str, Any]
PRUNED_MESSAGE = "spans not kept by sampling: this span stands for the trace's summary"


def any_value(value: Any) -> JsonDict:
    """One OTLP ``AnyValue``."""
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, list):
        return {"arrayValue": {"values": [any_value(v) for v in value]}}
    if isinstance(value, dict):
        return {"kvlistValue": {"values": attributes(value)}}
    return {}


def attributes(attrs: Mapping[str, Any]) -> list[JsonDict]:
    """OTLP ``KeyValue`` list."""
    return [{"key": k, "value": any_value(v)} for k, v in attrs.items()]


def span(s: SpanRecord) -> JsonDict:
    """One OTLP span."""
    out: JsonDict = {
        "traceId": s.trace_id.hex(),
        "spanId": s.span_id.hex(),
        "name": s.name,
        "kind": s.kind,
        "startTimeUnixNano": str(s.start_us * 1000),
        "endTimeUnixNano": str(s.end_us * 1000),
        "attributes": attributes(s.attributes),
        "events": [
            {
                "timeUnixNano": str(e.time_us * 1000),
                "name": e.name,
                "attributes": attributes(e.attributes),
            }
            for e in s.events
        ],
        "links": [{"traceId": x.trace_id.hex(), "spanId": x.span_id.hex()} for x in s.links],
        "status": {
            "code": s.status_code,
            **({"message": s.status_message} if s.status_message else {}),
        },
    }
    if s.parent_span_id is not None:
        out["parentSpanId"] = s.parent_span_id.hex()
    if s.trace_state:
        out["traceState"] = s.trace_state
    if s.dropped_attributes_count:
        out["droppedAttributesCount"] = s.dropped_attributes_count
    return out


def pruned_stand_in(t: Trace) -> SpanRecord:
    """The one span a trace pruned by sampling is shown as: its summary, marked so."""
    summary = t.summary
    service = summary.root_service_name or "unknown_service"
    return SpanRecord(
        trace_id=summary.trace_id, span_id=summary.trace_id[8:], parent_span_id=None,
        trace_state=None, name=summary.root_span_name or "(spans not kept)", kind=0,
        start_us=summary.start_us, end_us=summary.end_us,
        status_code=2 if summary.error_count else 0, status_message=PRUNED_MESSAGE,
        subsystem="SYSTEM", service_name=service, agent_id=None, task_run_id=summary.task_run_id,
        gen_ai_operation=None, gen_ai_provider=None, gen_ai_model=None, input_tokens=None,
        output_tokens=None, scope_name="aeos.sampling",
        attributes={"aeos.spans_pruned": True, "aeos.trace.span_count": summary.span_count,
                    "aeos.trace.error_count": summary.error_count},
        resource_attributes={"service.name": service}, links=(), events=(),
        dropped_attributes_count=0,
    )  # fmt: skip


def resource_spans(traces: Sequence[Trace]) -> list[JsonDict]:
    """The spans of ``traces`` as ``resourceSpans`` (several traces merge into one list).

    A trace pruned by sampling contributes :func:`pruned_stand_in`, never nothing.
    """
    groups: dict[str, JsonDict] = {}
    scopes: dict[tuple[str, str], JsonDict] = {}
    for t in traces:
        for s in (pruned_stand_in(t),) if t.pruned else t.spans:
            rkey = json.dumps(s.resource_attributes, sort_keys=True, default=str)
            group = groups.get(rkey)
            if group is None:
                group = groups[rkey] = {
                    "resource": {"attributes": attributes(s.resource_attributes)},
                    "scopeSpans": [],
                }
            skey = (rkey, s.scope_name or "")
            scope = scopes.get(skey)
            if scope is None:
                scope = scopes[skey] = {"scope": {"name": s.scope_name or ""}, "spans": []}
                group["scopeSpans"].append(scope)
            scope["spans"].append(span(s))
    return list(groups.values())


def traces_data(traces: Sequence[Trace]) -> JsonDict:
    """api_v3's answer: ``{"result": {"resourceSpans": [...]}}``."""
    return {"result": {"resourceSpans": resource_spans(traces)}}


def error(status: int, message: str) -> JsonDict:
    """api_v3's error body."""
    return {"error": {"httpCode": status, "message": message}}
