"""Traces in Jaeger's v1 JSON (the shape Jaeger UI and Grafana's Jaeger data source read).

Pure renderer over the trace-query core's records (``storage.read.traces``); the shape is
jaegertracing/jaeger ``internal/uimodel/model.go`` (upper-floors notes §A2). The OTLP →
Jaeger conventions follow Jaeger's own translator:

- ``span.kind`` (server, client, producer, consumer, internal; none for unspecified),
  ``otel.scope.name``, ``otel.status_code`` (OK / ERROR; none for unset) with
  ``error=true`` for ERROR, ``otel.status_description``, ``w3c.tracestate``.
- The parent is the one CHILD_OF reference; each OTLP link is a FOLLOWS_FROM reference.
- Span events (and log records carrying the span's context) are ``logs``, the event name
  as field ``event``; ``logs`` is ``[]``, never null (Grafana maps over it).
- One process per service and resource: ``p1``, ``p2``, ... in order of first use; its
  tags are the resource attributes but ``service.name``.
- Attribute values: bool → ``bool``, integer → ``int64``, float → ``float64``, string →
  ``string``; arrays and maps as their JSON text (``string``), as Jaeger does.

A span whose parent is not in the trace keeps its reference and gets a warning. A trace
whose spans were pruned by sampling is one synthetic span made from its summary, with a
warning saying so, never an empty trace.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from storage import ServiceDependency, SpanRecord, Trace, TraceSummary

KIND_NAMES = {1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}
STATUS_NAMES = {1: "OK", 2: "ERROR"}
SAMPLED_FLAG = 1
PRUNED_WARNING = (
    "the spans of this trace were not kept by sampling; this span stands for the trace's "
    "summary (its root, start, duration, span and error counts)"
)

JsonDict = dict[str, Any]


def envelope(
    data: Any, *, total: int | None = None, errors: list[JsonDict] | None = None
) -> JsonDict:
    """The v1 envelope ``{data, total, limit, offset, errors}``."""
    count = total if total is not None else (len(data) if isinstance(data, list) else 0)
    return {"data": data, "total": count, "limit": 0, "offset": 0, "errors": errors}


def error_envelope(status: int, message: str) -> JsonDict:
    """An error answer in the v1 envelope (Grafana shows ``errors[0].msg``)."""
    return envelope(None, total=0, errors=[{"code": status, "msg": message}])


def key_value(key: str, value: Any) -> JsonDict:
    """One Jaeger tag."""
    if isinstance(value, bool):
        return {"key": key, "type": "bool", "value": value}
    if isinstance(value, int):
        return {"key": key, "type": "int64", "value": value}
    if isinstance(value, float):
        return {"key": key, "type": "float64", "value": value}
    if isinstance(value, str):
        return {"key": key, "type": "string", "value": value}
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return {"key": key, "type": "string", "value": text}


def key_values(attributes: Mapping[str, Any], skip: Iterable[str] = ()) -> list[JsonDict]:
    """Tags for ``attributes`` in their stored order."""
    skipped = set(skip)
    return [key_value(k, v) for k, v in attributes.items() if k not in skipped]


def trace(t: Trace) -> JsonDict:
    """One trace in v1 JSON."""
    tid = t.summary.trace_id.hex()
    if t.pruned:
        return _pruned(t.summary)
    processes = _Processes()
    ids = {s.span_id for s in t.spans}
    spans = [_span(tid, s, processes.key(s), s.parent_span_id in ids) for s in t.spans]
    return {"traceID": tid, "spans": spans, "processes": processes.table, "warnings": None}


def traces(ts: Sequence[Trace]) -> JsonDict:
    """Search or by-id answer: the envelope around the traces."""
    return envelope([trace(t) for t in ts])


def dependencies(deps: Sequence[ServiceDependency]) -> JsonDict:
    """``/api/dependencies``: one link per parent → child service pair."""
    data = [{"parent": d.parent, "child": d.child, "callCount": d.call_count} for d in deps]
    return envelope(data)


class _Processes:
    """Processes keyed by service and resource, numbered in order of first use."""

    def __init__(self) -> None:
        self.table: dict[str, JsonDict] = {}
        self._keys: dict[str, str] = {}

    def key(self, span: SpanRecord) -> str:
        service = span.service_name or str(span.resource_attributes.get("service.name", ""))
        identity = json.dumps([service, span.resource_attributes], sort_keys=True, default=str)
        key = self._keys.get(identity)
        if key is None:
            key = self._keys[identity] = f"p{len(self._keys) + 1}"
            tags = key_values(span.resource_attributes, skip=("service.name",))
            self.table[key] = {"serviceName": service or "unknown_service", "tags": tags}
        return key


def _span(tid: str, s: SpanRecord, process: str, parent_known: bool) -> JsonDict:
    refs: list[JsonDict] = []
    warnings: list[str] = []
    if s.parent_span_id is not None:
        refs.append({"refType": "CHILD_OF", "traceID": tid, "spanID": s.parent_span_id.hex()})
        if not parent_known:
            warnings.append(
                f"parent span {s.parent_span_id.hex()} is not in this trace (orphan: the parent "
                "never arrived, or was not kept)"
            )
    for link in s.links:
        refs.append(
            {
                "refType": "FOLLOWS_FROM",
                "traceID": link.trace_id.hex(),
                "spanID": link.span_id.hex(),
            }
        )
    return {
        "traceID": tid,
        "spanID": s.span_id.hex(),
        "flags": SAMPLED_FLAG,
        "operationName": s.name,
        "references": refs,
        "startTime": s.start_us,
        "duration": max(s.end_us - s.start_us, 0),
        "tags": _tags(s),
        "logs": [_log(e.time_us, e.name, e.attributes) for e in s.events],
        "processID": process,
        "warnings": warnings or None,
    }


def _tags(s: SpanRecord) -> list[JsonDict]:
    tags = key_values(s.attributes)
    if s.kind in KIND_NAMES:
        tags.append(key_value("span.kind", KIND_NAMES[s.kind]))
    if s.scope_name:
        tags.append(key_value("otel.scope.name", s.scope_name))
    if s.status_code in STATUS_NAMES:
        tags.append(key_value("otel.status_code", STATUS_NAMES[s.status_code]))
    if s.status_code == 2:
        tags.append(key_value("error", True))
    if s.status_message:
        tags.append(key_value("otel.status_description", s.status_message))
    if s.trace_state:
        tags.append(key_value("w3c.tracestate", s.trace_state))
    return tags


def _log(time_us: int, name: str, attributes: Mapping[str, Any]) -> JsonDict:
    return {"timestamp": time_us, "fields": [key_value("event", name), *key_values(attributes)]}


def _pruned(summary: TraceSummary) -> JsonDict:
    tid = summary.trace_id.hex()
    tags = [
        key_value("aeos.spans_pruned", True),
        key_value("aeos.trace.span_count", summary.span_count),
        key_value("aeos.trace.error_count", summary.error_count),
    ]
    if summary.error_count:
        tags.append(key_value("error", True))
    span = {
        "traceID": tid,
        "spanID": summary.trace_id[8:].hex(),
        "flags": 0,
        "operationName": summary.root_span_name or "(spans not kept)",
        "references": [],
        "startTime": summary.start_us,
        "duration": summary.duration_us,
        "tags": tags,
        "logs": [],
        "processID": "p1",
        "warnings": [PRUNED_WARNING],
    }
    process = {"serviceName": summary.root_service_name or "unknown_service", "tags": []}
    return {"traceID": tid, "spans": [span], "processes": {"p1": process},
            "warnings": [PRUNED_WARNING]}  # fmt: skip
