"""Jaeger v1 JSON and OTLP JSON renderers and the Jaeger parameter parsers (no database)."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from query_api import jaeger_json, jaeger_params, otlp_json
from storage.read.traces import SpanEvent, SpanLink, SpanRecord, Trace, TraceSummary
from tests import _jaeger_model as model

TID = bytes.fromhex("4bf92f3577b34da6a3ce929d0e0e4736")


def rec(n: int, parent: int | None, **kw: object) -> SpanRecord:
    fields: dict[str, object] = dict(
        trace_id=TID, span_id=n.to_bytes(8, "big"),
        parent_span_id=parent.to_bytes(8, "big") if parent else None, trace_state=None,
        name=f"op{n}", kind=2, start_us=1_764_000_000_000_001 + n, end_us=1_764_000_000_100_000,
        status_code=0, status_message=None, subsystem="MOSAIC", service_name="planner",
        agent_id=None, task_run_id=None, gen_ai_operation=None, gen_ai_provider=None,
        gen_ai_model=None, input_tokens=None, output_tokens=None, scope_name="aeos.test",
        attributes={"s": "x", "i": 7, "f": 1.5, "b": True, "arr": [1, "a"], "m": {"k": 1}},
        resource_attributes={"service.name": "planner", "host.name": "h"}, links=(),
        events=(), dropped_attributes_count=0,
    )  # fmt: skip
    fields.update(kw)
    return SpanRecord(**fields)  # type: ignore[arg-type]


def summary(**kw: object) -> TraceSummary:
    fields: dict[str, object] = dict(
        org_id=uuid.uuid4(), trace_id=TID, start_us=1_764_000_000_000_000,
        end_us=1_764_000_000_250_000, span_count=3, error_count=1, root_service_name="planner",
        root_span_name="op1", task_run_id=None, sampled=False, spans_pruned_at=None,
    )  # fmt: skip
    fields.update(kw)
    return TraceSummary(**fields)  # type: ignore[arg-type]


def sample_trace() -> Trace:
    spans = (
        rec(1, None),
        rec(2, 1, kind=3, status_code=2, status_message="boom", trace_state="k=v",
            events=(SpanEvent(1_764_000_000_000_500, "exception", {"exception.type": "E"},
                              "error", "E"),),
            links=(SpanLink(b"\x01" * 16, b"\x02" * 8),),
            service_name="llm", resource_attributes={"service.name": "llm"}),
        rec(3, 99, kind=0, status_code=1),
    )  # fmt: skip
    return Trace(summary(), spans, ())


def tag(tags: list[dict[str, object]], key: str) -> object:
    found = [t["value"] for t in tags if t["key"] == key]
    return found[0] if found else None


def test_v1_trace_shape_and_conventions() -> None:
    body = jaeger_json.traces([sample_trace()])
    (decoded,) = model.traces(body)
    assert decoded.traceID == TID.hex()
    spans = {s["spanID"]: s for s in body["data"][0]["spans"]}
    root, chat, orphan = (spans[n.to_bytes(8, "big").hex()] for n in (1, 2, 3))
    assert root["references"] == []
    assert root["logs"] == []
    assert root["warnings"] is None
    assert root["startTime"] == 1_764_000_000_000_002
    assert root["duration"] == 1_764_000_000_100_000 - 1_764_000_000_000_002
    assert {t["key"]: (t["type"], t["value"]) for t in root["tags"]} == {
        "s": ("string", "x"), "i": ("int64", 7), "f": ("float64", 1.5), "b": ("bool", True),
        "arr": ("string", '[1,"a"]'), "m": ("string", '{"k":1}'),
        "span.kind": ("string", "server"), "otel.scope.name": ("string", "aeos.test"),
    }  # fmt: skip
    assert chat["references"] == [
        {"refType": "CHILD_OF", "traceID": TID.hex(), "spanID": root["spanID"]},
        {"refType": "FOLLOWS_FROM", "traceID": "01" * 16, "spanID": "02" * 8},
    ]
    assert tag(chat["tags"], "span.kind") == "client"
    assert tag(chat["tags"], "otel.status_code") == "ERROR"
    assert tag(chat["tags"], "error") is True
    assert tag(chat["tags"], "otel.status_description") == "boom"
    assert tag(chat["tags"], "w3c.tracestate") == "k=v"
    assert chat["logs"] == [{"timestamp": 1_764_000_000_000_500, "fields": [
        {"key": "event", "type": "string", "value": "exception"},
        {"key": "exception.type", "type": "string", "value": "E"}]}]  # fmt: skip
    assert tag(orphan["tags"], "span.kind") is None
    assert tag(orphan["tags"], "otel.status_code") == "OK"
    assert "not in this trace" in orphan["warnings"][0]
    processes = body["data"][0]["processes"]
    assert processes[root["processID"]] == {
        "serviceName": "planner", "tags": [{"key": "host.name", "type": "string", "value": "h"}]}  # fmt: skip
    assert processes[chat["processID"]]["serviceName"] == "llm"
    assert root["processID"] == orphan["processID"] != chat["processID"]


def test_pruned_trace_is_its_summary_with_a_warning() -> None:
    t = Trace(summary(spans_pruned_at=datetime.now(UTC)), (), ())
    (decoded,) = model.traces(jaeger_json.traces([t]))
    (span,) = decoded.spans
    assert decoded.warnings
    assert "not kept by sampling" in decoded.warnings[0]
    assert span.duration == 250_000
    assert span.operationName == "op1"
    assert decoded.processes[span.processID].serviceName == "planner"
    v3 = otlp_json.traces_data([t])["result"]["resourceSpans"]
    (stand_in,) = v3[0]["scopeSpans"][0]["spans"]
    assert {"key": "aeos.spans_pruned", "value": {"boolValue": True}} in stand_in["attributes"]


def test_otlp_json_round_trips_through_the_protobuf_parser() -> None:
    from google.protobuf import json_format
    from opentelemetry.proto.trace.v1 import trace_pb2

    body = otlp_json.traces_data([sample_trace()])
    data = trace_pb2.TracesData()
    # OTLP/JSON ids are hex; the protobuf JSON mapping wants base64: convert ids only.
    for rs in body["result"]["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            for sp in ss["spans"]:
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in sp:
                        sp[key] = base64.b64encode(bytes.fromhex(sp[key])).decode()
                for link in sp["links"]:
                    link["traceId"] = base64.b64encode(bytes.fromhex(link["traceId"])).decode()
                    link["spanId"] = base64.b64encode(bytes.fromhex(link["spanId"])).decode()
    json_format.ParseDict(body["result"], data)
    spans = {s.span_id: s for rs in data.resource_spans for ss in rs.scope_spans for s in ss.spans}
    chat = spans[(2).to_bytes(8, "big")]
    assert chat.parent_span_id == (1).to_bytes(8, "big")
    assert chat.start_time_unix_nano == 1_764_000_000_000_003 * 1000
    assert chat.status.code == 2
    assert chat.status.message == "boom"
    assert chat.events[0].name == "exception"
    assert chat.links[0].span_id == b"\x02" * 8
    attrs = {a.key: a.value for a in chat.attributes}
    assert attrs["i"].int_value == 7
    assert attrs["arr"].array_value.values[1].string_value == "a"
    assert attrs["m"].kvlist_value.values[0].key == "k"
    services = {a.value.string_value for rs in data.resource_spans for a in rs.resource.attributes
                if a.key == "service.name"}  # fmt: skip
    assert services == {"planner", "llm"}


@pytest.mark.parametrize(
    ("text", "us"),
    [("0", 0), ("100ms", 100_000), ("1.2s", 1_200_000), ("1h30m", 5_400_000_000),
     ("2us", 2), ("2µs", 2), ("2μs", 2), ("1500ns", 1), (".5s", 500_000), ("1m0.5s", 60_500_000)],
)  # fmt: skip
def test_go_durations(text: str, us: int) -> None:
    assert jaeger_params.go_duration_us(text, "minDuration") == us


@pytest.mark.parametrize("text", ["", "5", "1.2", "ms", "1d", "1s2", "abc"])
def test_bad_go_durations_name_the_parameter(text: str) -> None:
    with pytest.raises(jaeger_params.ParamError, match="maxDuration"):
        jaeger_params.go_duration_us(text, "maxDuration")


def test_times_ids_tags_lookback() -> None:
    p = jaeger_params
    now_us = 1_764_000_000_123_456
    assert p.epoch_us_or_ms(str(now_us), "start") == now_us
    assert p.epoch_us_or_ms(str(now_us // 1000), "start") == now_us // 1000 * 1000
    assert p.at_us(now_us).microsecond == 123_456
    assert p.us_of(p.at_us(now_us)) == now_us
    assert p.hex_trace_id(TID.hex().upper()) == TID
    assert p.hex_trace_id("abc") == bytes(14) + b"\x0a\xbc"
    assert p.any_trace_id(base64.b64encode(TID).decode()) == TID
    assert p.any_trace_id(base64.urlsafe_b64encode(TID).decode().rstrip("=")) == TID
    with pytest.raises(p.ParamError):
        p.hex_trace_id("xyz")
    assert p.tags('{"http.status_code":"500","error":true,"n":3}', ["a:b:c"]) == (
        ("http.status_code", "500"), ("error", "true"), ("n", "3"), ("a", "b:c"))  # fmt: skip
    with pytest.raises(p.ParamError, match="tags"):
        p.tags("[1]", [])
    assert p.lookback("2d", "lookback") == timedelta(days=2)
    assert p.lookback("90m", "lookback") == timedelta(minutes=90)
    t = p.rfc3339("2026-12-01T10:00:00.123456789Z", "start_time")
    assert t == datetime(2026, 12, 1, 10, 0, 0, 123456, tzinfo=UTC)
    assert p.rfc3339("2026-12-01T12:00:00+02:00", "x") == datetime(2026, 12, 1, 10, tzinfo=UTC)


def test_dependencies_and_envelope() -> None:
    from storage.read.traces import Dependency

    body = jaeger_json.dependencies([Dependency("a", "b", 3, 1)])
    assert [d.callCount for d in model.dependencies(body)] == [3]
    err = jaeger_json.error_envelope(404, "trace not found")
    assert model.Envelope.model_validate(err).errors[0].msg == "trace not found"  # type: ignore[index]
    assert Decimal(1)  # keep the import honest for costs shown elsewhere
