"""Property tests: whatever the body, decoding raises nothing but DecodeError, quickly.

And whatever decodes, translation accepts (rejecting items, never raising). Sizes are
bounded so that the module runs in a few seconds.
"""

from __future__ import annotations

import base64
import copy
import json
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otlp_receiver._decode import (
    JSON,
    PROTOBUF,
    DecodeError,
    decode_logs,
    decode_metrics,
    decode_traces,
)
from otlp_receiver._translate import translate_logs, translate_metrics, translate_traces

ORG = uuid.UUID(int=1)
FUZZ = settings(
    max_examples=100,
    deadline=timedelta(seconds=5),
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
Decoder = Callable[[bytes, str], Any]
PAIRS: list[tuple[Decoder, Callable[[Any, uuid.UUID], Any]]] = [
    (decode_traces, translate_traces),
    (decode_metrics, translate_metrics),
    (decode_logs, translate_logs),
]
SIGNALS = pytest.mark.parametrize(("decode", "translate"), PAIRS, ids=["traces", "metrics", "logs"])

HEX_ID = "5b8efff798038103d269b633813fc60c"
SKELETONS: dict[Decoder, dict[str, Any]] = {
    decode_traces: {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "k", "value": {"stringValue": "v"}}]},
                "scopeSpans": [
                    {
                        "scope": {"name": "s"},
                        "spans": [
                            {
                                "traceId": HEX_ID,
                                "spanId": HEX_ID[:16],
                                "name": "n",
                                "startTimeUnixNano": "1",
                                "endTimeUnixNano": "2",
                                "attributes": [{"key": "a", "value": {"intValue": "3"}}],
                                "links": [{"traceId": HEX_ID, "spanId": HEX_ID[:16]}],
                                "events": [{"name": "e", "timeUnixNano": "1"}],
                                "status": {"code": 2},
                            }
                        ],
                    }
                ],
            }
        ]
    },
    decode_logs: {
        "resourceLogs": [
            {
                "scopeLogs": [
                    {
                        "logRecords": [
                            {
                                "timeUnixNano": "1",
                                "severityNumber": 9,
                                "body": {"kvlistValue": {"values": [{"key": "x"}]}},
                                "traceId": HEX_ID,
                                "spanId": HEX_ID[:16],
                            }
                        ]
                    }
                ]
            }
        ]
    },
    decode_metrics: {
        "resourceMetrics": [
            {
                "scopeMetrics": [
                    {
                        "metrics": [
                            {
                                "name": "m",
                                "sum": {
                                    "aggregationTemporality": 2,
                                    "dataPoints": [
                                        {
                                            "timeUnixNano": "5",
                                            "asInt": "1",
                                            "exemplars": [{"traceId": HEX_ID}],
                                        }
                                    ],
                                },
                            },
                            {
                                "name": "h",
                                "histogram": {
                                    "dataPoints": [
                                        {
                                            "timeUnixNano": "5",
                                            "count": "3",
                                            "bucketCounts": ["1", "2"],
                                            "explicitBounds": [1.0],
                                        }
                                    ]
                                },
                            },
                        ]
                    }
                ]
            }
        ]
    },
}

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.sampled_from([HEX_ID, "", "1", "-1", "1e999", "zz", "AAAA"]),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["key", "value", "stringValue", "arrayValue", "values", "x", "name"]),
            children,
            max_size=4,
        )
    ),
    max_leaves=25,
)


def decodes_or_fails_cleanly(decode: Decoder, translate: Any, body: bytes, media: str) -> None:
    """The property: DecodeError or a request that translates without raising."""
    started = time.monotonic()
    try:
        request = decode(body, media)
    except DecodeError as exc:
        request, message = None, exc.message
    assert time.monotonic() - started < 2.0  # generous: a hang, not a slow machine
    if request is None:
        assert message
        return
    translation = translate(request, ORG)
    assert translation.rejected >= 0
    assert len(translation.errors) <= 10


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside ``node`` (dict keys and list indexes)."""
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += paths(value, (*prefix, index))
    return found


def replaced(skeleton: dict[str, Any], path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    tree = copy.deepcopy(skeleton)
    node: Any = tree
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return tree


def sdk_traces_body() -> bytes:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "fuzz"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("fuzz")
    with (
        tracer.start_as_current_span("root", attributes={"a": 1, "b": [1.5, 2.5]}),
        tracer.start_as_current_span("child") as child,
    ):
        child.add_event("e", {"k": "v"})
    data: bytes = encode_spans(exporter.get_finished_spans()).SerializeToString()
    provider.shutdown()
    return data


VALID_TRACES = sdk_traces_body()


@SIGNALS
@FUZZ
@given(body=st.binary(max_size=512))
def test_random_bytes_as_protobuf(decode: Decoder, translate: Any, body: bytes) -> None:
    decodes_or_fails_cleanly(decode, translate, body, PROTOBUF)


@SIGNALS
@FUZZ
@given(body=st.binary(max_size=256))
def test_random_bytes_as_json(decode: Decoder, translate: Any, body: bytes) -> None:
    decodes_or_fails_cleanly(decode, translate, body, JSON)


@FUZZ
@given(cut=st.integers(min_value=0, max_value=len(VALID_TRACES)), flip=st.integers(0, 255))
def test_truncated_and_corrupted_protobuf(cut: int, flip: int) -> None:
    truncated = VALID_TRACES[:cut]
    decodes_or_fails_cleanly(decode_traces, translate_traces, truncated, PROTOBUF)
    if cut < len(VALID_TRACES):
        corrupted = bytearray(VALID_TRACES)
        corrupted[cut] ^= flip
        decodes_or_fails_cleanly(decode_traces, translate_traces, bytes(corrupted), PROTOBUF)


@SIGNALS
@FUZZ
@given(value=json_values)
def test_random_json_values(decode: Decoder, translate: Any, value: Any) -> None:
    decodes_or_fails_cleanly(decode, translate, json.dumps(value).encode(), JSON)


@SIGNALS
@FUZZ
@given(data=st.data(), value=json_values)
def test_otlp_shaped_json_with_a_random_part(
    decode: Decoder, translate: Any, data: st.DataObject, value: Any
) -> None:
    skeleton = SKELETONS[decode]
    path = data.draw(st.sampled_from(paths(skeleton)))
    body = json.dumps(replaced(skeleton, path, value)).encode()
    decodes_or_fails_cleanly(decode, translate, body, JSON)


@SIGNALS
@FUZZ
@given(data=st.data(), number=st.integers(min_value=-(10**40), max_value=10**40))
def test_huge_numbers_anywhere(
    decode: Decoder, translate: Any, data: st.DataObject, number: int
) -> None:
    skeleton = SKELETONS[decode]
    path = data.draw(st.sampled_from(paths(skeleton)))
    as_text = data.draw(st.booleans())
    body = json.dumps(replaced(skeleton, path, str(number) if as_text else number)).encode()
    decodes_or_fails_cleanly(decode, translate, body, JSON)


@FUZZ
@given(
    depth=st.integers(min_value=1, max_value=20_000),
    opener=st.sampled_from([b"[", b'{"a":', b'{"arrayValue":{"values":[']),
)
def test_deep_nesting(depth: int, opener: bytes) -> None:
    body = b'{"resourceSpans":' + opener * depth
    decodes_or_fails_cleanly(decode_traces, translate_traces, body, JSON)


@FUZZ
@given(depth=st.integers(min_value=1, max_value=300))
def test_deeply_nested_attribute_values(depth: int) -> None:
    value: dict[str, Any] = {"stringValue": "leaf"}
    for level in range(depth):
        if level % 2:
            value = {"arrayValue": {"values": [value]}}
        else:
            value = {"kvlistValue": {"values": [{"key": "k", "value": value}]}}
    body = replaced(
        SKELETONS[decode_traces],
        ("resourceSpans", 0, "scopeSpans", 0, "spans", 0, "attributes", 0, "value"),
        value,
    )
    decodes_or_fails_cleanly(decode_traces, translate_traces, json.dumps(body).encode(), JSON)


INT_RANGES = {
    FieldDescriptor.CPPTYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.CPPTYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.CPPTYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.CPPTYPE_UINT64: (0, 2**64 - 1),
}


def scalars(field: Any) -> st.SearchStrategy[Any]:
    """Values of one scalar field (NaN left out: it never equals itself)."""
    cpp = field.cpp_type
    if cpp == field.CPPTYPE_STRING and field.type == field.TYPE_BYTES:
        return st.binary(max_size=20)
    if cpp == field.CPPTYPE_STRING:
        return st.text(max_size=10)
    if cpp == field.CPPTYPE_BOOL:
        return st.booleans()
    if cpp in (field.CPPTYPE_DOUBLE, field.CPPTYPE_FLOAT):
        return st.floats(allow_nan=False, width=64 if cpp == field.CPPTYPE_DOUBLE else 32)
    if cpp == field.CPPTYPE_ENUM:
        return st.integers(-5, 30)
    low, high = INT_RANGES[cpp]
    return st.integers(low, high)


@st.composite
def random_message(draw: st.DrawFn, message: Any, depth: int = 0) -> Any:
    """Fills ``message`` with random values of its fields (any OTLP message type)."""
    for field in message.DESCRIPTOR.fields:
        is_message = field.cpp_type == field.CPPTYPE_MESSAGE
        if (is_message and depth >= 7) or not draw(st.booleans()):
            continue
        target = getattr(message, field.name)
        if field.is_repeated and is_message:
            for _ in range(draw(st.integers(0, 2))):
                draw(random_message(target.add(), depth + 1))
        elif field.is_repeated:
            target.extend(draw(st.lists(scalars(field), max_size=3)))
        elif is_message:
            target.SetInParent()
            draw(random_message(target, depth + 1))
        else:
            setattr(message, field.name, draw(scalars(field)))
    return message


def otlp_json(message: Any) -> bytes:
    """OTLP/JSON as the specification writes it: ids as hex, enums as integers."""

    def fix(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                k: base64.b64decode(v).hex()
                if k in ("traceId", "spanId", "parentSpanId")
                else fix(v)
                for k, v in node.items()
            }
        return [fix(v) for v in node] if isinstance(node, list) else node

    return json.dumps(fix(json_format.MessageToDict(message, use_integers_for_enums=True))).encode()


REQUESTS: list[tuple[Decoder, Any]] = [
    (decode_traces, ExportTraceServiceRequest),
    (decode_metrics, ExportMetricsServiceRequest),
    (decode_logs, ExportLogsServiceRequest),
]


@pytest.mark.parametrize(("decode", "request_type"), REQUESTS, ids=["traces", "metrics", "logs"])
@FUZZ
@given(data=st.data())
def test_json_decodes_to_the_same_message_as_protobuf(
    decode: Decoder, request_type: Any, data: st.DataObject
) -> None:
    """Any request, sent as OTLP/JSON, decodes to exactly the request (every field)."""
    message = data.draw(random_message(request_type()))
    decoded = decode(otlp_json(message), JSON)
    assert decoded.SerializeToString(deterministic=True) == message.SerializeToString(
        deterministic=True
    )
    assert decode(message.SerializeToString(), PROTOBUF) == message


def test_the_skeletons_are_valid_requests() -> None:
    """The fuzzed shapes start from requests that decode and translate to rows."""
    for decode, translate in PAIRS:
        request = decode(json.dumps(SKELETONS[decode]).encode(), JSON)
        assert translate(request, ORG).batch.item_count > 0
