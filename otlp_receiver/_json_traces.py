"""The receiver's fast decoder of OTLP/JSON traces: typed structs, no protobuf objects.

The reference decoder (``otlp_receiver._decode``) turns OTLP/JSON into protobuf
messages: some 70 µs a span of 20 attributes, and as much again to read them back.
Here msgspec decodes the body in C straight into structs (``_json_structs``) that the
traces translator reads exactly like an ``ExportTraceServiceRequest``: every field
under its proto name, proto3 defaults where absent, ids as bytes, 64-bit integers as
ints. Span attributes stay their JSON text (``msgspec.Raw``), decoded, checked and
converted by ``_json_values.json_attributes`` through the translator's per-request cache
(a doubtful one makes the translator start again from the reference decoder's answer).
The parts that are few per request (resources, scopes, span events, links) are built as
the reference protobuf messages by the reference ``_fill``, so they are read, and their
serializations hashed, exactly as before.

The structs take only what is unambiguous: camelCase keys (a proto name, or any unknown
field, is an unknown field to them), no null, no enum names but those of ``SpanKind``
and ``StatusCode``, integers as JSON integers within the field's range or as strings
of digits, base64 in its padded standard form only, ids in strict hex, at most one
member per ``AnyValue``, values nested less than ``MAX_NESTING`` levels (those three
checked on translation). Anything else, and any error, makes :func:`decode_json_traces`
return None: the caller then uses the reference decoder, which accepts or refuses the
body exactly as it always did. What this path accepts, the reference accepts too, with
the same rows: the answers are identical by construction (and the tests check it
differentially).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

import msgspec
import orjson
from google.protobuf.message import Message
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from otlp_receiver import _json_values  # noqa: F401 - registers the attribute reader
from otlp_receiver._decode import JSON, _fill
from otlp_receiver._json_structs import Doubt, JsonSpan, JsonStatus, JsonTraces

_MAX_U64 = 2**64 - 1
_KINDS = dict(Span.SpanKind.items())
_CODES = dict(Status.StatusCode.items())
# Message depths as the reference's _fill counts them (the request is 0).
_RESOURCE_DEPTH, _SCOPE_DEPTH, _SPAN_PART_DEPTH = 2, 3, 4
_DECODER = msgspec.json.Decoder(JsonTraces)


class JsonRequest:
    """A request's structs, read by ``translate_traces`` as an ``ExportTraceServiceRequest``,
    and its body, decoded the reference way if an attribute is in doubt."""

    __slots__ = ("body", "resource_spans")
    media_type = JSON

    def __init__(self, traces: JsonTraces, body: bytes) -> None:
        self.resource_spans = traces.resource_spans
        self.body = body


def decode_json_traces(body: bytes) -> JsonRequest | None:
    """An OTLP/JSON traces body as structs ``translate_traces`` reads, or None.

    None means "not the fast way": the body is invalid, or valid but unusual (see the
    module docstring); the reference decoder then decides. No exception escapes.
    """
    try:
        request = _DECODER.decode(body)
        for resource_spans in request.resource_spans:
            resource = _message(Resource, resource_spans.resource, _RESOURCE_DEPTH)
            resource_spans.resource = cast(Any, resource)
            for scope_spans in resource_spans.scope_spans:
                scope = _message(InstrumentationScope, scope_spans.scope, _SCOPE_DEPTH)
                scope_spans.scope = cast(Any, scope)
                _fix_spans(scope_spans.spans)
    except Exception:  # invalid or unusual: the reference decoder says what is wrong
        return None
    return JsonRequest(request, body)


def _fix_spans(spans: list[JsonSpan]) -> None:
    """Ids to bytes, times to ints, enum names to numbers; events and links to messages.

    Raises:
        Doubt: Something the fast path does not take (other exceptions mean that too).
    """
    fromhex = bytes.fromhex  # raises on an odd length or a non-hex digit
    for span in spans:
        text_ids = span.trace_id, span.span_id, span.parent_span_id
        trace_id, span_id = fromhex(text_ids[0]), fromhex(text_ids[1])
        parent_id = fromhex(text_ids[2]) if text_ids[2] else b""
        # fromhex skips whitespace, the reference does not: compare the lengths.
        if (len(trace_id) + len(span_id) + len(parent_id)) * 2 != sum(map(len, text_ids)):
            raise Doubt("ids must be strict hex")
        # Assignments, not cast(): a call per field costs per span (structs: typed str).
        span.trace_id, span.span_id = trace_id, span_id  # type: ignore[assignment]
        span.parent_span_id = parent_id  # type: ignore[assignment]
        start, end = span.start_time_unix_nano, span.end_time_unix_nano
        if (  # the usual: both strings of at most 19 ASCII digits (below 2^64), inline
            type(start) is str
            and type(end) is str
            and len(start) < 20
            and len(end) < 20
            and start.isdigit()
            and end.isdigit()
            and start.isascii()
            and end.isascii()
        ):
            span.start_time_unix_nano, span.end_time_unix_nano = int(start), int(end)
        elif type(start) is str or type(end) is str or start > _MAX_U64 or end > _MAX_U64:  # type: ignore[operator]
            span.start_time_unix_nano, span.end_time_unix_nano = _u64(start), _u64(end)
        if type(span.kind) is str:
            span.kind = _KINDS[span.kind]
        if type(span.status.code) is str:
            span.status = JsonStatus(span.status.message, _CODES[span.status.code])
        if span.events:
            span.events = cast(Any, _messages(Span.Event, span.events))
        if span.links:
            span.links = cast(Any, _messages(Span.Link, span.links))


def _u64(value: int | str) -> int:
    """A fixed64 given as an int or a string of digits (OTLP/JSON's 64-bit integers)."""
    if type(value) is str:
        if not (value.isascii() and value.isdigit() and len(value) <= 20):
            raise Doubt("not a fixed64")  # "-0", "+1", " 1"...: the reference decides
        value = int(value)
    if value > _MAX_U64:  # type: ignore[operator]
        raise Doubt("fixed64 out of range")
    return cast(int, value)


def _messages(kind: type[Message], raws: Iterable[msgspec.Raw]) -> list[Message]:
    return [_message(kind, raw, _SPAN_PART_DEPTH) for raw in raws]


def _message(kind: type[Message], raw: msgspec.Raw, depth: int) -> Any:
    """The reference message of a raw JSON object; absent or null: the default one.

    Raises:
        Exception: What the reference ``_fill`` raises for an invalid object.
    """
    message = kind()
    if raw:
        obj = orjson.loads(memoryview(raw))  # the reference's parser, on its own bytes
        if type(obj) is dict:
            _fill(message, obj, depth)
        elif obj is not None:
            raise Doubt("expected an object")
    return message
