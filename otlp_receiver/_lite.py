"""The receiver's fast decoder of OTLP traces: span attributes left as raw bytes.

``ExportTraceServiceRequest`` parsed by upb is fast (about 1 µs a span), but reading it
from Python is not: a span's 20 attributes are 20 ``KeyValue`` and 20 ``AnyValue``
wrapper objects and some 80 attribute reads, most of the translation's time. Here the
request is parsed with a copy of its schema in which ``Span.attributes`` and
``Span.events`` are ``repeated bytes``: the same wire format (length-delimited), so the
same bodies parse, and each attribute arrives as the exact bytes of its ``KeyValue``.
Translation converts those through a per-request cache
(``otlp_receiver._translate._wire``). Everything else (resources, scopes, links,
status) keeps its own message type, so it is validated and read exactly as before.

What the copy does not check at parse time (the inside of each attribute and event)
is checked when translation reads it; if it is invalid, the request is decoded again
the reference way (``otlp_receiver._decode.decode_traces``), which refuses it with the
answer it always gave. Known difference: upb's nesting limit (100) counts from the
request for the reference parse and from the attribute here, so an attribute value
nested 95-100 levels deep is rejected with its span (over ``MAX_VALUE_DEPTH``) rather
than refusing the request.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from otlp_receiver._decode import JSON, PROTOBUF, decode_traces, media_type
from otlp_receiver._json_traces import decode_json_traces

_PACKAGE = "aeos.lite.trace.v1"
_RAW_FIELDS = frozenset({"attributes", "events"})  # Span fields left as bytes
_LOCAL = {"ResourceSpans", "ScopeSpans", "Span"}  # messages copied into the lite file


def _lite_file() -> descriptor_pb2.FileDescriptorProto:
    """trace.proto's request, resource spans, scope spans and span, with raw fields."""
    source = descriptor_pb2.FileDescriptorProto()
    trace_pb2.DESCRIPTOR.CopyToProto(source)
    lite = descriptor_pb2.FileDescriptorProto(
        name="aeos/lite/trace.proto",
        package=_PACKAGE,
        syntax="proto3",
        dependency=[trace_pb2.DESCRIPTOR.name, *source.dependency],
    )
    request = lite.message_type.add(name="ExportTraceServiceRequest")
    kinds = descriptor_pb2.FieldDescriptorProto
    request.field.add(
        name="resource_spans", number=1, label=kinds.LABEL_REPEATED, type=kinds.TYPE_MESSAGE,
        type_name=f".{_PACKAGE}.ResourceSpans",
    )  # fmt: skip
    for message in source.message_type:
        if message.name not in _LOCAL:
            continue
        copy = lite.message_type.add()
        copy.CopyFrom(message)
        del copy.nested_type[:]  # Span.Event, Span.Link, SpanKind: used from trace.proto
        del copy.enum_type[:]
        for field in copy.field:
            local = field.type_name.rsplit(".", 1)[-1]
            if field.type_name.startswith(".opentelemetry.proto.trace.v1.") and local in _LOCAL:
                field.type_name = f".{_PACKAGE}.{local}"
            if message.name == "Span" and field.name in _RAW_FIELDS:
                field.type = kinds.TYPE_BYTES
                field.ClearField("type_name")
    return lite


def _lite_request_class() -> Any:
    pool = descriptor_pool.Default()
    try:
        descriptor = pool.FindMessageTypeByName(f"{_PACKAGE}.ExportTraceServiceRequest")
    except KeyError:
        pool.Add(_lite_file())
        descriptor = pool.FindMessageTypeByName(f"{_PACKAGE}.ExportTraceServiceRequest")
    return message_factory.GetMessageClass(descriptor)


assert trace_service_pb2  # the reference request's file is loaded before the copy's
_LiteRequest = _lite_request_class()


class LiteTraces:
    """A traces request parsed the lite way, with its body (for the reference fallback)."""

    __slots__ = ("body", "message", "resource_spans")
    media_type = PROTOBUF

    def __init__(self, message: Any, body: bytes) -> None:
        self.message = message
        self.resource_spans = message.resource_spans
        self.body = body


def decode_traces_fast(body: bytes, content_type: str) -> Any:
    """A traces request for ``translate_traces``: the fast decoders' when they take the body.

    Protobuf: the lite request; OTLP/JSON: ``decode_json_traces``'s structs; anything
    they do not take, the reference request.

    Raises:
        DecodeError: As ``decode_traces`` (its answer, whenever the body is invalid).
    """
    media = media_type(content_type)
    if media == JSON:
        request = decode_json_traces(body)
        if request is not None:
            return request
    elif media == PROTOBUF:
        try:
            message = _LiteRequest.FromString(body)
        except Exception:  # the body is hostile: the reference decoder says what is wrong
            message = None
        if message is not None:
            return LiteTraces(message, body)
    return decode_traces(body, content_type)
