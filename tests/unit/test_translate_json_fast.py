"""The receiver's fast OTLP/JSON traces path against the reference decoder.

Differential: for the same body, ``decode_traces_fast`` (msgspec structs, or the
reference when they do not take it) and the reference ``decode_traces`` must refuse
with the same message or give the same ``Translation``, which must also be that of the
protobuf encoding of the reference request (reference and lite decoders).
"""

from __future__ import annotations

import base64
import json
import uuid
from datetime import timedelta
from typing import Any

import msgspec
import pytest
from google.protobuf import json_format
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, StatusCode

from otlp_receiver._decode import JSON, PROTOBUF, DecodeError, decode_traces
from otlp_receiver._json_traces import JsonRequest, decode_json_traces
from otlp_receiver._lite import decode_traces_fast
from otlp_receiver._translate import Limits, Translation, translate_traces

ORG = uuid.UUID(int=7)
T0 = 1_700_000_000_000_000_000
TRACE = "0102030405060708090a0b0c0d0e0f10"
FUZZ = settings(
    max_examples=300,
    deadline=timedelta(seconds=5),
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SMALL = Limits(max_attributes=4, max_attribute_value_bytes=12, max_name_bytes=8)


class Obj(list[tuple[str, Any]]):
    """A JSON object as key/value pairs: keys may repeat, as JSON allows."""


def dumps(node: Any, ascii_only: bool = True) -> str:
    """JSON text of ``node`` (``Obj`` for objects, keeping repeated keys)."""
    if isinstance(node, Obj):
        inner = ",".join(f"{json.dumps(k, ensure_ascii=ascii_only)}:{dumps(v, ascii_only)}"
                         for k, v in node)  # fmt: skip
        return "{" + inner + "}"
    if isinstance(node, list):
        return "[" + ",".join(dumps(v, ascii_only) for v in node) + "]"
    return json.dumps(node, ensure_ascii=ascii_only)


def outcome(body: bytes, limits: Limits | None) -> tuple[str, Any]:
    """("refused", message) or ("rows", translation) of the reference decoder."""
    try:
        request = decode_traces(body, JSON)
    except DecodeError as exc:
        return "refused", exc.message
    return "rows", _translate(request, limits)


def fast_outcome(body: bytes, limits: Limits | None) -> tuple[str, Any]:
    """The same through the receiver's path (``decode_traces_fast``, then translation)."""
    try:
        request = decode_traces_fast(body, JSON)
        return "rows", _translate(request, limits)
    except DecodeError as exc:
        return "refused", exc.message


def _translate(request: Any, limits: Limits | None) -> Translation:
    return translate_traces(request, ORG, limits) if limits else translate_traces(request, ORG)


def assert_same(body: bytes, limits: Limits | None = None) -> tuple[str, Any]:
    """The fast path answers as the reference does; both protobuf paths agree too.

    Returns the fast path's answer. (Rows compare equal with 0.0 for -0.0: the tests
    about zeros look at the fast path's values themselves.)
    """
    expected = outcome(body, limits)
    answer = fast_outcome(body, limits)
    assert answer == expected
    if expected[0] == "rows":
        wire = decode_traces(body, JSON).SerializeToString()
        assert _translate(decode_traces(wire, PROTOBUF), limits) == expected[1]
        assert _translate(decode_traces_fast(wire, PROTOBUF), limits) == expected[1]
    return answer


# --- strategies ---------------------------------------------------------------------------


def mostly(good: st.SearchStrategy[Any], odd: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``good`` 15 times in 16, else ``odd`` (one odd value may refuse the whole body)."""
    return st.integers(0, 15).flatmap(lambda i: odd if i == 0 else good)


texts = st.one_of(
    st.sampled_from(["", "a", "k", "\x00", "a\x00b", "é", "\U0001f600", "x" * 13, "€" * 5]),
    st.text(max_size=12),
)
keys = st.one_of(st.sampled_from(["k", "service.name", "aeos.agent.id", "a\x00", ""]), texts)
int64s = st.integers(min_value=-(2**63), max_value=2**63 - 1)
int_json = mostly(
    int64s | int64s.map(str) | st.integers(-(10**18) + 1, 10**18 - 1).map(str),
    st.sampled_from([2**63, -(2**63) - 1, 2**64, "+1", " 1", "1_0", "-0", "0" * 21, 1.0, 2.5]),
)
doubles = mostly(
    st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(10**20), 10**20),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1.5", -0.0, 0, 10**30, True]),
)
raw_bytes = st.binary(max_size=16)
bytes_json = mostly(
    raw_bytes.map(lambda b: base64.b64encode(b).decode()),
    raw_bytes.map(lambda b: base64.urlsafe_b64encode(b).decode().rstrip("="))
    | st.sampled_from(["QR==", "Q", "QQ=", "!!", "QQ==QQ=="]),
)
scalar_members = st.one_of(
    st.tuples(st.just("stringValue"), texts),
    st.tuples(st.just("boolValue"), st.booleans()),
    st.tuples(st.just("intValue"), int_json),
    st.tuples(st.just("doubleValue"), doubles),
    st.tuples(st.just("bytesValue"), bytes_json),
)
odd_members = st.tuples(st.sampled_from(["stringValue", "intValue", "string_value"]), st.just(None))


def any_values(depth: int = 0) -> st.SearchStrategy[Any]:
    """OTLP/JSON AnyValue objects, mostly valid, sometimes not."""
    members = scalar_members
    if depth < 3:
        nested = st.deferred(lambda: any_values(depth + 1))
        arrays = st.lists(nested, max_size=3).map(lambda vs: ("arrayValue", Obj([("values", vs)])))
        kvlists = st.lists(key_values(depth + 1), max_size=3).map(
            lambda kvs: ("kvlistValue", Obj([("values", kvs)]))
        )
        members = st.one_of(members, arrays, kvlists)
    one = st.lists(members, max_size=1)
    several = st.lists(members | odd_members, min_size=2, max_size=2) | st.just(None)
    return mostly(one, several).map(lambda pairs: None if pairs is None else Obj(pairs))


def key_values(depth: int = 0) -> st.SearchStrategy[Any]:
    """OTLP/JSON KeyValue objects (a missing value, a repeated key, now and then)."""
    pair = st.tuples(keys, any_values(depth)).map(
        lambda kv: Obj([("key", kv[0]), ("value", kv[1])])
    )
    return pair | keys.map(lambda key: Obj([("key", key)]))


attribute_lists = st.lists(key_values(), max_size=6)
hex_ids = mostly(
    st.just(TRACE) | st.binary(min_size=0, max_size=17).map(bytes.hex),
    st.sampled_from(["", "0" * 32, TRACE.upper(), TRACE[:-1], TRACE + " ", "zz" * 16, "01 02"]),
)
times = mostly(
    st.integers(T0, T0 + 10**6) | st.integers(T0, T0 + 10**6).map(str),
    st.sampled_from([0, 2**64 - 1, 2**64, str(2**64), -1, "-0", float(T0), "0x1"]),
)
kinds = mostly(
    st.integers(0, 5) | st.sampled_from(["SPAN_KIND_SERVER", "SPAN_KIND_CLIENT"]),
    st.sampled_from([-1, 7, "SERVER", 2**31]),
)
codes = mostly(st.integers(0, 2) | st.just("STATUS_CODE_ERROR"), st.sampled_from([3, "ERROR"]))


def optional(name: str, values: st.SearchStrategy[Any]) -> st.SearchStrategy[list[Any]]:
    """No field, or the field (under its camelCase name)."""
    return st.lists(values.map(lambda v: (name, v)), max_size=1)


@st.composite
def spans(draw: st.DrawFn) -> Obj:
    fields: list[tuple[str, Any]] = [("traceId", draw(hex_ids)), ("spanId", draw(hex_ids))]
    start = draw(times)
    fields += [("startTimeUnixNano", start), ("endTimeUnixNano", draw(st.just(start) | times))]
    fields += draw(optional("parentSpanId", hex_ids))
    fields += draw(optional("name", texts))
    fields += draw(optional("kind", kinds))
    fields += draw(optional("attributes", attribute_lists))
    fields += draw(optional("traceState", texts))
    fields += draw(optional("flags", st.integers(0, 2**32)))
    fields += draw(optional("droppedAttributesCount", st.integers(0, 2**32)))
    status = draw(optional("code", codes)) + draw(optional("message", texts))
    fields += draw(optional("status", st.permutations(status).map(Obj)))
    event = st.tuples(times, texts, attribute_lists).map(
        lambda e: Obj([("timeUnixNano", e[0]), ("name", e[1]), ("attributes", e[2])])
    )
    fields += draw(optional("events", st.lists(event, max_size=2)))
    link = st.tuples(hex_ids, hex_ids, attribute_lists).map(
        lambda link: Obj([("traceId", link[0]), ("spanId", link[1]), ("attributes", link[2])])
    )
    fields += draw(optional("links", st.lists(link, max_size=2)))
    fields = draw(st.permutations(fields))
    if draw(st.integers(0, 9)) == 0:  # unknown, snake_case, null or repeated fields
        extra = st.sampled_from([("unknownField", 1), ("span_id", "0102030405060708"),
                                 ("name", None), ("attributes", None), ("name", "again"),
                                 ("start_time_unix_nano", str(T0))])  # fmt: skip
        fields.insert(draw(st.integers(0, len(fields))), draw(extra))
    return Obj(fields)


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    resource = Obj([("attributes", draw(attribute_lists))])
    scope_fields = draw(optional("name", texts)) + draw(optional("version", texts))
    scope_fields += draw(optional("attributes", st.lists(key_values(), max_size=2)))
    scope_spans = Obj(
        [("scope", Obj(scope_fields)), ("spans", draw(st.lists(spans(), min_size=1, max_size=4)))]
    )
    root = Obj([("resourceSpans", [Obj([("resource", resource), ("scopeSpans", [scope_spans])])])])
    return dumps(root, ascii_only=draw(st.booleans())).encode()


@FUZZ
@given(body=bodies(), small=st.booleans())
def test_the_fast_path_answers_as_the_reference(body: bytes, small: bool) -> None:
    assert_same(body, SMALL if small else None)


# --- deterministic cases ------------------------------------------------------------------


def kv(key: str, value: Any) -> dict[str, Any]:
    return {"key": key, "value": value}


def body_of(*spans: dict[str, Any], resource: list[Any] | None = None) -> bytes:
    res = {
        "attributes": resource
        if resource is not None
        else [kv("service.name", {"stringValue": "svc"})]
    }
    scope = {"scope": {"name": "lib", "version": "1"}, "spans": list(spans)}
    return json.dumps({"resourceSpans": [{"resource": res, "scopeSpans": [scope]}]}).encode()


def span(n: int = 1, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "traceId": TRACE,
        "spanId": f"{n:016x}",
        "name": f"span-{n}",
        "kind": 2,
        "startTimeUnixNano": str(T0 + n),
        "endTimeUnixNano": str(T0 + n + 1000),
    }
    return base | fields


ALL_KINDS = [
    kv("s", {"stringValue": "text\x00"}),
    kv("i", {"intValue": "-42"}),
    kv("j", {"intValue": 7}),
    kv("b", {"boolValue": False}),
    kv("d", {"doubleValue": 1.5}),
    kv("z", {"doubleValue": -0.0}),
    kv("bytes", {"bytesValue": "Af8="}),
    kv("list", {"arrayValue": {"values": [{"intValue": "1"}, {"stringValue": "a"}, {}]}}),
    kv("map", {"kvlistValue": {"values": [{"key": "x\x00", "value": {"boolValue": True}}]}}),
    kv("empty", {}),
    kv("nothing", {"stringValue": None}),
    {"key": "absent"},
    kv("k\x00", {"stringValue": "v"}),
    kv("s", {"stringValue": "later wins"}),
]


def test_usual_bodies_take_the_fast_path() -> None:
    events = [{"timeUnixNano": str(T0), "name": "exception",
               "attributes": [kv("exception.message", {"stringValue": "E"})]}]  # fmt: skip
    links = [{"traceId": TRACE, "spanId": "0000000000000009", "attributes": []}]
    body = body_of(
        span(1, attributes=ALL_KINDS, events=events, links=links, status={"code": 2}),
        span(2, parentSpanId="0000000000000001", kind="SPAN_KIND_CLIENT",
             status={"code": "STATUS_CODE_OK", "message": "m"}, attributes=ALL_KINDS[:3]),
    )  # fmt: skip
    request = decode_json_traces(body)
    assert isinstance(request, JsonRequest)
    first: Any = request.resource_spans[0].scope_spans[0].spans[0]  # ids are bytes now
    assert type(first.attributes[0]) is msgspec.Raw  # decoded on translation
    assert (first.trace_id, first.start_time_unix_nano) == (bytes.fromhex(TRACE), T0 + 1)
    kind, result = assert_same(body)
    assert kind == "rows"
    assert (result.rejected, result.errors) == (0, ())
    row = result.batch.spans[0]
    assert row.attributes["s"] == "later wins"
    assert str(row.attributes["z"]) == "-0.0"
    assert row.attributes["k\ufffd"] == "v"
    assert row.attributes["list"] == [1, "a", None]
    assert row.attributes["map"] == {"x\ufffd": True}
    assert row.attributes["bytes"] == "01ff"
    assert result.batch.spans[1].kind == 3
    assert [e.message for e in result.batch.events] == ["E"]
    assert row.links == [bytes.fromhex(TRACE) + bytes.fromhex("0000000000000009")]


@pytest.mark.parametrize(
    "variation",
    [
        {"droppedAttributesCount": 1, "unknown": {"x": [1]}},  # unknown fields are ignored
        {"start_time_unix_nano": str(T0 + 5)},  # a proto name
        {"name": None},  # null is the default
        {"attributes": [kv("n", {"doubleValue": "NaN"}), kv("i", {"doubleValue": "Infinity"})]},
        {"attributes": [kv("two", {"stringValue": "a", "intValue": "1"})]},  # the later is set
        {"attributes": [kv("i", {"intValue": "9223372036854775807"})]},  # 19 digits
        {"attributes": [kv("i", {"intValue": -(2**63) - 1})]},  # a float to orjson: in range
        {"attributes": [kv("b", {"bytesValue": "-_8"})]},  # URL-safe, unpadded base64
        {"kind": "SPAN_KIND_SERVER", "status": {"code": "STATUS_CODE_ERROR"}},
        {"traceId": TRACE.upper(), "startTimeUnixNano": float(T0)},
    ],
)
def test_unusual_but_valid_bodies_are_accepted_as_the_reference_does(
    variation: dict[str, Any],
) -> None:
    kind, result = assert_same(body_of(span(1, **variation)))
    assert kind == "rows"
    assert len(result.batch.spans) + result.rejected == 1


@pytest.mark.parametrize(
    "variation",
    [
        {"traceId": TRACE[:-1]},  # odd length
        {"traceId": "01 02"},  # not strict hex
        {"spanId": "zz" * 8},
        {"startTimeUnixNano": str(2**64)},
        {"startTimeUnixNano": -1},
        {"kind": "SERVER"},
        {"attributes": [kv("i", {"intValue": "12345678901234567890"})]},
        {"attributes": [kv("i", {"intValue": 2**63})]},
        {"attributes": [kv("b", {"bytesValue": "Q"})]},
        {"attributes": [kv("x", {"arrayValue": {"values": [None]}})]},
        {"attributes": [{"key": 1}]},
        {"events": [7]},
        {"links": [{"traceId": "x"}]},
    ],
)
def test_bodies_the_reference_refuses_are_refused_with_its_message(
    variation: dict[str, Any],
) -> None:
    kind, message = assert_same(body_of(span(1, **variation)))
    assert kind == "refused"
    assert message.startswith("invalid OTLP/JSON ExportTraceServiceRequest: ")


@pytest.mark.parametrize(
    "body", [b"", b"  ", b"[]", b"{", b'{"resourceSpans": 1}', b"\xff", b'{"a": "\\ud800"}']
)
def test_bodies_that_are_not_requests(body: bytes) -> None:
    assert decode_json_traces(body) is None or body.strip() == b""
    assert_same(body)


def test_limits_reject_spans_as_the_reference_does() -> None:
    attrs = [kv(f"k{i}", {"intValue": i}) for i in range(5)]
    big = [kv("big", {"arrayValue": {"values": [{"stringValue": "x" * 20}]}})]
    body = body_of(span(1), span(2, attributes=attrs), span(3, attributes=big),
                   span(4, attributes=[kv("s", {"stringValue": "é" * 7})]))  # fmt: skip
    kind, result = assert_same(body, SMALL)
    assert kind == "rows"
    assert result.rejected == 3
    assert decode_json_traces(body) is not None


def test_deeply_nested_values_go_the_reference_way() -> None:
    value: dict[str, Any] = {"stringValue": "leaf"}
    for _ in range(40):
        value = {"arrayValue": {"values": [value]}}
    body = body_of(span(1, attributes=[kv("deep", value)]))
    assert isinstance(decode_json_traces(body), JsonRequest)  # doubted on translation
    kind, result = assert_same(body)
    assert (kind, result.rejected) == ("rows", 1)  # over MAX_VALUE_DEPTH: the span only
    for _ in range(20):
        value = {"kvlistValue": {"values": [{"key": "k", "value": value}]}}
    kind, message = assert_same(body_of(span(1, attributes=[kv("deep", value)])))
    assert (kind, "nested deeper" in message) == ("refused", True)


DOUBTS = [  # attributes the fast path leaves to the reference decoder
    kv("i", {"intValue": "12345678901234567890"}),  # refused by the reference: out of range
    kv("i", {"intValue": "+1"}),  # not 18 digits or fewer
    kv("two", {"stringValue": "a", "intValue": "1"}),  # the reference keeps the later
]


@pytest.mark.parametrize("doubt", DOUBTS)
def test_a_doubt_anywhere_gives_the_reference_answer(doubt: dict[str, Any]) -> None:
    """Wherever the doubtful attribute is: a late span, after spans that hold its
    neighbours (cached), or in a span rejected before translation read it."""
    plain = [kv("route", {"stringValue": "/a"}), kv("n", {"intValue": 1})]
    late = [span(n, attributes=plain) for n in range(1, 30)] + [
        span(30, attributes=[*plain, doubt])
    ]
    assert isinstance(decode_json_traces(body_of(*late)), JsonRequest)
    assert_same(body_of(*late))
    too_long_name = span(1, name="x" * 20, attributes=[*plain, doubt])
    too_many = span(2, attributes=[*plain, *plain, kv("z", {"boolValue": True}), doubt])
    too_large_first = span(3, attributes=[kv("s", {"stringValue": "y" * 40}), doubt])
    for rejected in (too_long_name, too_many, too_large_first):
        kind, _ = assert_same(body_of(span(9, attributes=plain), rejected), SMALL)
        if doubt is DOUBTS[0]:  # the whole body is refused, though its span was rejected
            assert kind == "refused"


def test_repeated_attributes_are_converted_once_and_stay_correct() -> None:
    shared = [kv("route", {"stringValue": "/a"}), kv("zero", {"doubleValue": 0.0})]
    many = [span(n, attributes=[*shared, kv("n", {"intValue": n}),
                                kv("zero", {"doubleValue": -0.0 if n % 2 else 0.0})])
            for n in range(1, 40)]  # fmt: skip
    kind, result = assert_same(body_of(*many))
    assert kind == "rows"
    signs = [str(row.attributes["zero"]) for row in result.batch.spans]
    assert signs == ["-0.0" if n % 2 else "0.0" for n in range(1, 40)]


def sdk_otlp_json(integer_enums: bool) -> bytes:
    """Spans of the real OpenTelemetry SDK, encoded by its OTLP encoder, as OTLP/JSON.

    The proto3 JSON mapping (what ``json_format`` writes: 64-bit integers as strings,
    enum names unless ``integer_enums``), with ids in hex as OTLP/JSON wants.
    """
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "planner"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("planner.lib", "0.1", attributes={"scope.attr": 1})
    with tracer.start_as_current_span("root", kind=SpanKind.SERVER) as root:
        for i in range(5):
            with tracer.start_as_current_span(
                f"step {i}",
                attributes={"i": i, "ratio": i / 3, "ok": i % 2 == 0, "tags": ["a", "b"]},
                links=[Link(root.get_span_context(), {"why": "retry"})],
            ) as child:
                child.add_event("cache.miss", {"key": f"k{i}"})
                child.set_status(StatusCode.ERROR if i == 3 else StatusCode.OK)
    provider.shutdown()
    message = json_format.MessageToDict(
        encode_spans(exporter.get_finished_spans()), use_integers_for_enums=integer_enums
    )

    def hex_ids(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: base64.b64decode(v).hex() if k in ("traceId", "spanId", "parentSpanId")
                    else hex_ids(v) for k, v in node.items()}  # fmt: skip
        return [hex_ids(v) for v in node] if isinstance(node, list) else node

    return json.dumps(hex_ids(message)).encode()


@pytest.mark.parametrize("integer_enums", [True, False])
def test_sdk_exports_take_the_fast_path(integer_enums: bool) -> None:
    body = sdk_otlp_json(integer_enums)
    assert isinstance(decode_json_traces(body), JsonRequest)
    kind, result = assert_same(body)
    assert kind == "rows"
    assert (len(result.batch.spans), len(result.batch.events), result.rejected) == (6, 5, 0)
    assert sum(row.links is not None for row in result.batch.spans) == 5
