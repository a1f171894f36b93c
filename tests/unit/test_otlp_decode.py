"""Decoding OTLP requests (protobuf and OTLP/JSON) and encoding responses."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.logs.v1.logs_pb2 import (
    LogRecord,
    ResourceLogs,
    ScopeLogs,
    SeverityNumber,
)
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    Exemplar,
    Gauge,
    Metric,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from otlp_receiver._decode import (
    JSON,
    PROTOBUF,
    DecodeError,
    UnsupportedContentType,
    build_response,
    decode_logs,
    decode_metrics,
    decode_traces,
    encode_response,
)

TRACE_ID = bytes.fromhex("5b8efff798038103d269b633813fc60c")
SPAN_ID = bytes.fromhex("eee19b7ec3c1b174")
PARENT_ID = bytes.fromhex("eee19b7ec3c1b173")
ID_KEYS = {"traceId", "spanId", "parentSpanId"}

# The OTLP/JSON example of opentelemetry-proto (examples/trace.json), abridged.
SPEC_EXAMPLE = {
    "resourceSpans": [
        {
            "resource": {
                "attributes": [{"key": "service.name", "value": {"stringValue": "my.service"}}]
            },
            "scopeSpans": [
                {
                    "scope": {"name": "my.library", "version": "1.0.0"},
                    "spans": [
                        {
                            "traceId": "5B8EFFF798038103D269B633813FC60C",
                            "spanId": "EEE19B7EC3C1B174",
                            "parentSpanId": "EEE19B7EC3C1B173",
                            "name": "I'm a server span",
                            "startTimeUnixNano": "1544712660000000000",
                            "endTimeUnixNano": "1544712661000000000",
                            "kind": 2,
                            "attributes": [
                                {"key": "my.span.attr", "value": {"stringValue": "some value"}},
                                {"key": "n", "value": {"intValue": "42"}},
                            ],
                        }
                    ],
                }
            ],
        }
    ]
}


def kv(key: str, **value: Any) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(**value))


def traces_request() -> ExportTraceServiceRequest:
    span = Span(
        trace_id=TRACE_ID,
        span_id=SPAN_ID,
        parent_span_id=PARENT_ID,
        name="I'm a server span",
        kind=Span.SPAN_KIND_SERVER,
        start_time_unix_nano=1544712660000000000,
        end_time_unix_nano=1544712661000000000,
        attributes=[kv("my.span.attr", string_value="some value"), kv("n", int_value=42)],
        links=[Span.Link(trace_id=TRACE_ID[::-1], span_id=SPAN_ID[::-1])],
        events=[Span.Event(name="e", time_unix_nano=1544712660500000000)],
    )
    resource = Resource(attributes=[kv("service.name", string_value="my.service")])
    scope_spans = ScopeSpans(spans=[span])
    scope_spans.scope.name, scope_spans.scope.version = "my.library", "1.0.0"
    return ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(resource=resource, scope_spans=[scope_spans])]
    )


def logs_request() -> ExportLogsServiceRequest:
    record = LogRecord(
        time_unix_nano=1544712660300000000,
        severity_number=SeverityNumber.SEVERITY_NUMBER_WARN,
        severity_text="WARN",
        body=AnyValue(string_value="hello"),
        trace_id=TRACE_ID,
        span_id=SPAN_ID,
        event_name="damn.agent.heartbeat",
    )
    return ExportLogsServiceRequest(
        resource_logs=[ResourceLogs(scope_logs=[ScopeLogs(log_records=[record])])]
    )


def metrics_request() -> ExportMetricsServiceRequest:
    exemplar = Exemplar(as_double=1.5, time_unix_nano=5, trace_id=TRACE_ID, span_id=SPAN_ID)
    point = NumberDataPoint(as_int=7, time_unix_nano=10, exemplars=[exemplar])
    metric = Metric(name="m", unit="1", gauge=Gauge(data_points=[point]))
    return ExportMetricsServiceRequest(
        resource_metrics=[ResourceMetrics(scope_metrics=[ScopeMetrics(metrics=[metric])])]
    )


def to_otlp_json(message: Any) -> bytes:
    """OTLP/JSON as an exporter sends it: ids in hex, enums as integers."""

    def fix(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                k: base64.b64decode(v).hex() if k in ID_KEYS else fix(v) for k, v in node.items()
            }
        if isinstance(node, list):
            return [fix(v) for v in node]
        return node

    as_dict = json_format.MessageToDict(message, use_integers_for_enums=True)
    return json.dumps(fix(as_dict)).encode()


def test_protobuf_round_trip() -> None:
    request = traces_request()
    assert decode_traces(request.SerializeToString(), PROTOBUF) == request
    logs = logs_request()
    assert decode_logs(logs.SerializeToString(), PROTOBUF) == logs
    metrics = metrics_request()
    assert decode_metrics(metrics.SerializeToString(), PROTOBUF) == metrics


def test_json_with_hex_ids_gives_the_protobuf_request() -> None:
    request = traces_request()
    body = to_otlp_json(request)
    assert '"traceId": "5b8efff798038103d269b633813fc60c"' in body.decode()
    decoded = decode_traces(body, JSON)
    assert decoded == request
    assert decoded.SerializeToString() == request.SerializeToString()
    assert decoded.resource_spans[0].scope_spans[0].spans[0].links[0].span_id == SPAN_ID[::-1]


def test_json_logs_and_metric_exemplars_take_hex_ids() -> None:
    assert decode_logs(to_otlp_json(logs_request()), JSON) == logs_request()
    decoded = decode_metrics(to_otlp_json(metrics_request()), JSON)
    assert decoded == metrics_request()
    exemplar = decoded.resource_metrics[0].scope_metrics[0].metrics[0].gauge.data_points[0]
    assert exemplar.exemplars[0].trace_id == TRACE_ID


def test_spec_example_decodes() -> None:
    decoded = decode_traces(json.dumps(SPEC_EXAMPLE).encode(), "application/json")
    span = decoded.resource_spans[0].scope_spans[0].spans[0]
    assert span.trace_id == TRACE_ID  # upper-case hex is fine
    assert span.parent_span_id == PARENT_ID
    assert span.kind == Span.SPAN_KIND_SERVER
    assert span.start_time_unix_nano == 1544712660000000000  # 64-bit int as a string
    assert span.attributes[1].value.int_value == 42


def test_unknown_fields_are_ignored() -> None:
    body = json.loads(json.dumps(SPEC_EXAMPLE))
    body["futureField"] = {"x": 1}
    body["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["newThing"] = [1, 2, 3]
    body["resourceSpans"][0]["resource"]["entityRefs2"] = "x"
    decoded = decode_traces(json.dumps(body).encode(), JSON)
    assert decoded == decode_traces(json.dumps(SPEC_EXAMPLE).encode(), JSON)


def test_unknown_protobuf_fields_are_kept_not_fatal() -> None:
    data = traces_request().SerializeToString() + b"\xf8\x07\x01"  # field 127, varint 1
    assert decode_traces(data, PROTOBUF).resource_spans[0].scope_spans[0].spans[0].name


def test_numbers_as_numbers_and_proto_field_names_are_accepted() -> None:
    body = {
        "resource_spans": [
            {
                "scope_spans": [
                    {
                        "spans": [
                            {
                                "trace_id": TRACE_ID.hex(),
                                "span_id": SPAN_ID.hex(),
                                "start_time_unix_nano": 1544712660000000000,
                                "kind": 3,
                            }
                        ]
                    }
                ]
            }
        ]
    }
    span = decode_traces(json.dumps(body).encode(), JSON).resource_spans[0].scope_spans[0].spans[0]
    assert (span.trace_id, span.span_id, span.kind) == (TRACE_ID, SPAN_ID, 3)
    assert span.start_time_unix_nano == 1544712660000000000


def test_content_type_parameters_and_case_are_ignored() -> None:
    body = json.dumps(SPEC_EXAMPLE).encode()
    assert decode_traces(body, "Application/JSON; charset=utf-8").resource_spans
    data = traces_request().SerializeToString()
    assert decode_traces(data, " application/x-protobuf ").resource_spans


@pytest.mark.parametrize("content_type", [PROTOBUF, JSON])
def test_an_empty_body_is_an_empty_request(content_type: str) -> None:
    assert decode_traces(b"", content_type) == ExportTraceServiceRequest()
    assert decode_logs(b"", content_type) == ExportLogsServiceRequest()
    assert decode_metrics(b" \n" if content_type == JSON else b"", content_type).ByteSize() == 0


def test_empty_json_object_is_an_empty_request() -> None:
    assert decode_traces(b"{}", JSON) == ExportTraceServiceRequest()


def expect_error(body: bytes, content_type: str, *fragments: str) -> DecodeError:
    with pytest.raises(DecodeError) as info:
        decode_traces(body, content_type)
    message = str(info.value)
    assert info.value.message == message
    for fragment in fragments:
        assert fragment in message
    return info.value


def test_bad_protobuf() -> None:
    expect_error(b"\xff\xff\xff\xff", PROTOBUF, "invalid protobuf ExportTraceServiceRequest")


def test_truncated_protobuf() -> None:
    data = traces_request().SerializeToString()
    expect_error(data[: len(data) // 2], PROTOBUF, "invalid protobuf")


def test_bad_json() -> None:
    expect_error(b'{"resourceSpans": [', JSON, "invalid JSON")


def test_json_that_is_not_utf8() -> None:
    expect_error(b'{"a": "\xff"}', JSON, "invalid JSON")


@pytest.mark.parametrize(
    ("body", "kind"),
    [(b"[]", "an array"), (b'"x"', "a string"), (b"1", "a number"), (b"null", "null")],
)
def test_json_that_is_not_an_object(body: bytes, kind: str) -> None:
    expect_error(body, JSON, "must be a JSON object", kind)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("abc", '"abc"'),  # odd length
        ("zz" * 16, "must be hex"),
        ("5b8e fff7", "must be hex"),  # bytes.fromhex would accept the space
        (12, "12"),
        (["00"], "must be hex"),
    ],
)
def test_bad_hex_ids(value: object, fragment: str) -> None:
    body = json.loads(json.dumps(SPEC_EXAMPLE))
    body["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["spanId"] = value
    expect_error(
        json.dumps(body).encode(), JSON, "resourceSpans[0].scopeSpans[0].spans[0].spanId", fragment
    )


def test_spine_items_of_the_wrong_type_are_named() -> None:
    body = {"resourceSpans": [{"scopeSpans": [{"spans": ["not an object"]}]}]}
    expect_error(json.dumps(body).encode(), JSON, "resourceSpans[0].scopeSpans[0].spans[0]")
    metrics: dict[str, Any] = {
        "resourceMetrics": [{"scopeMetrics": [{"metrics": [{"gauge": []}]}]}]
    }
    with pytest.raises(DecodeError, match=r"metrics\[0\]\.gauge: expected an object, got an array"):
        decode_metrics(json.dumps(metrics).encode(), JSON)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ({"intValue": "12x"}, "attributes[1].value.intValue: expected an integer"),
        ({"intValue": str(2**63)}, "attributes[1].value.intValue: integer"),
        ({"boolValue": "true"}, "attributes[1].value.boolValue: expected true or false"),
        ({"doubleValue": "1.5.2"}, "attributes[1].value.doubleValue: expected a number"),
        ({"stringValue": 5}, "attributes[1].value.stringValue: expected a string"),
        ({"bytesValue": "***"}, "attributes[1].value.bytesValue: expected base64"),
        ({"arrayValue": {"values": [{"intValue": []}]}}, "arrayValue.values[0].intValue"),
    ],
)
def test_bad_attribute_values_are_named(value: dict[str, Any], fragment: str) -> None:
    body = json.loads(json.dumps(SPEC_EXAMPLE))
    body["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"][1]["value"] = value
    expect_error(json.dumps(body).encode(), JSON, "spans[0].attributes[1].value.", fragment)


def test_attribute_values_of_every_kind() -> None:
    values = [
        {"stringValue": "s"},
        {"boolValue": True},
        {"intValue": "-9223372036854775808"},
        {"intValue": 7},
        {"doubleValue": 2},
        {"doubleValue": "NaN"},
        {"bytesValue": base64.b64encode(b"\x00\xff").decode()},
        {"arrayValue": {"values": [{"stringValue": "a"}, {"intValue": "1"}]}},
        {"kvlistValue": {"values": [{"key": "k", "value": {"boolValue": False}}]}},
        {},
    ]
    body = {
        "resourceLogs": [
            {
                "resource": {
                    "attributes": [{"key": f"k{i}", "value": v} for i, v in enumerate(values)]
                }
            }
        ]
    }
    decoded = decode_logs(json.dumps(body).encode(), JSON).resource_logs[0].resource.attributes
    expected = [
        AnyValue(string_value="s"),
        AnyValue(bool_value=True),
        AnyValue(int_value=-(2**63)),
        AnyValue(int_value=7),
        AnyValue(double_value=2.0),
        None,
        AnyValue(bytes_value=b"\x00\xff"),
        AnyValue(
            array_value=ArrayValue(values=[AnyValue(string_value="a"), AnyValue(int_value=1)])
        ),
        AnyValue(kvlist_value=KeyValueList(values=[kv("k", bool_value=False)])),
        AnyValue(),
    ]
    assert [a.key for a in decoded] == [f"k{i}" for i in range(len(values))]
    for attr, want in zip(decoded, expected, strict=True):
        if want is None:
            assert attr.value.double_value != attr.value.double_value  # NaN
        else:
            assert attr.value == want


def test_bad_hex_in_a_link() -> None:
    body = json.loads(json.dumps(SPEC_EXAMPLE))
    body["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["links"] = [{"traceId": "xyz"}]
    expect_error(json.dumps(body).encode(), JSON, "spans[0].links[0].traceId")


@pytest.mark.parametrize(
    "body",
    [
        {"resourceSpans": 3},
        {"resourceSpans": [{"scopeSpans": [{"spans": [{"name": 5}]}]}]},
        {"resourceSpans": [{"scopeSpans": [{"spans": [{"kind": {"a": 1}}]}]}]},
        {"resourceSpans": [{"scopeSpans": [{"spans": [{"startTimeUnixNano": -1}]}]}]},
        {"resourceSpans": [{"scopeSpans": [{"spans": [{"startTimeUnixNano": 10**30}]}]}]},
        {"resourceSpans": [{"scopeSpans": [{"spans": ["not an object"]}]}]},
        {"resourceSpans": [{"scopeSpans": [{"spans": [{"links": {}}]}]}]},
        {"resourceSpans": [{"scopeSpans": [{"spans": [None]}]}]},
    ],
)
def test_wrong_types(body: dict[str, Any]) -> None:
    expect_error(json.dumps(body).encode(), JSON, "invalid OTLP/JSON ExportTraceServiceRequest")


def test_deeply_nested_json() -> None:
    expect_error(b"[" * 100_000 + b"]" * 100_000, JSON, "invalid JSON", "depth limit")


def test_numbers_beyond_double_range() -> None:
    expect_error(b'{"resourceSpans": [{"x": 1e400}]}', JSON, "invalid JSON")
    body = b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"startTimeUnixNano": 1e300}]}]}]}'
    expect_error(body, JSON, "startTimeUnixNano: integer", "out of range")


def test_deeply_nested_any_value() -> None:
    value: dict[str, Any] = {"stringValue": "leaf"}
    for _ in range(200):
        value = {"arrayValue": {"values": [value]}}
    body = {
        "resourceSpans": [
            {"resource": {"attributes": [{"key": "deep", "value": value}]}, "scopeSpans": []}
        ]
    }
    expect_error(json.dumps(body).encode(), JSON, "invalid OTLP/JSON")


def test_huge_integer_literal() -> None:
    expect_error(b'{"resourceSpans": ' + b"9" * 10_000 + b"}", JSON, "invalid JSON")


@pytest.mark.parametrize("content_type", ["text/plain", "", "application/grpc", "json"])
def test_unsupported_content_type(content_type: str) -> None:
    error = expect_error(b"{}", content_type, "unsupported content type", PROTOBUF, JSON)
    assert isinstance(error, UnsupportedContentType)


def test_full_success_response_has_no_partial_success() -> None:
    response = build_response("traces", 0)
    assert isinstance(response, ExportTraceServiceResponse)
    assert not response.HasField("partial_success")
    assert encode_response(response, PROTOBUF) == b""
    assert encode_response(response, JSON) == b"{}"


def test_partial_success_responses() -> None:
    traces = build_response("traces", 3, ["span rejected: a", "span rejected: b"])
    assert isinstance(traces, ExportTraceServiceResponse)
    assert traces.partial_success.rejected_spans == 3
    assert traces.partial_success.error_message == "span rejected: a; span rejected: b"
    assert json.loads(encode_response(traces, "application/json; charset=utf-8")) == {
        "partialSuccess": {
            "rejectedSpans": 3,
            "errorMessage": "span rejected: a; span rejected: b",
        }
    }
    decoded = ExportTraceServiceResponse.FromString(encode_response(traces, PROTOBUF))
    assert decoded == traces
    metrics = build_response("metrics", 2)
    assert isinstance(metrics, ExportMetricsServiceResponse)
    assert metrics.partial_success.rejected_data_points == 2


def test_warning_only_response() -> None:
    logs = build_response("logs", 0, ["span link skipped"])
    assert isinstance(logs, ExportLogsServiceResponse)
    assert logs.HasField("partial_success")
    assert logs.partial_success.rejected_log_records == 0
    assert logs.partial_success.error_message == "span link skipped"


def test_encode_response_rejects_unknown_content_type() -> None:
    with pytest.raises(UnsupportedContentType):
        encode_response(build_response("traces", 0), "text/html")
