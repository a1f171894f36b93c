"""Decoding OTLP export requests and encoding their responses (pure, no I/O).

Both OTLP/HTTP encodings are supported (OTLP specification, "OTLP/HTTP"): binary
protobuf (``application/x-protobuf``) and OTLP/JSON (``application/json``). OTLP/JSON is
the protobuf JSON mapping with deviations: trace and span ids are hex strings rather
than base64 (other bytes, e.g. ``bytesValue``, stay base64); unknown fields must be
ignored; enums are integers (names are accepted too); 64-bit integers may be strings.
Keys are lowerCamelCase; the proto field names are accepted too, as the Collector does.

The contract of every ``decode_*`` function: it returns a request or raises
:class:`DecodeError` with a message fit for the client; no other exception escapes,
whatever the body (the body is untrusted input).
"""

from __future__ import annotations

import base64
import functools
import json
import re
from collections.abc import Callable, Sequence
from typing import Any, Literal, NamedTuple, TypeVar

import orjson
from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
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

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
MAX_JSON_DEPTH = 100  # message nesting accepted in OTLP/JSON (upb's limit for protobuf)
MAX_ERROR_MESSAGE_CHARS = 4096  # keeps the response far below the 4 MiB recommended limit

Signal = Literal["traces", "metrics", "logs"]
JsonDict = dict[str, Any]
_M = TypeVar("_M", bound=Message)

_HEX = re.compile(r"(?:[0-9a-fA-F]{2})*")
_INTEGER = re.compile(r"-?[0-9]{1,20}")
_DECIMAL = re.compile(r"-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
_FLOAT_WORDS = frozenset({"NaN", "Infinity", "-Infinity"})
_TO_URLSAFE = str.maketrans("+/", "-_")
_ID_FIELDS = frozenset({"trace_id", "span_id", "parent_span_id"})  # hex in OTLP/JSON
_KEY_VALUE = "opentelemetry.proto.common.v1.KeyValue"
_RESPONSES: dict[str, tuple[Any, str]] = {
    "traces": (ExportTraceServiceResponse, "rejected_spans"),
    "metrics": (ExportMetricsServiceResponse, "rejected_data_points"),
    "logs": (ExportLogsServiceResponse, "rejected_log_records"),
}
_INT_RANGES = {
    FieldDescriptor.CPPTYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.CPPTYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.CPPTYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.CPPTYPE_UINT64: (0, 2**64 - 1),
}


class DecodeError(Exception):
    """The request body cannot be decoded; the message says why (for the client)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UnsupportedContentType(DecodeError):
    """Neither protobuf nor JSON (HTTP answers 415 rather than 400)."""


def media_type(content_type: str) -> str:
    """The bare, lower-case media type of a ``Content-Type`` value (no parameters)."""
    return content_type.split(";", 1)[0].strip().lower()


def decode_traces(body: bytes, content_type: str) -> ExportTraceServiceRequest:
    """Decodes an OTLP traces export request.

    Args:
        body: The (decompressed) request body.
        content_type: The request's ``Content-Type`` (parameters are ignored).

    Returns:
        The request message.

    Raises:
        UnsupportedContentType: The content type is neither protobuf nor JSON (a
            :class:`DecodeError`).
        DecodeError: The body is not a valid request.
    """
    return _decode(body, content_type, ExportTraceServiceRequest())


def decode_metrics(body: bytes, content_type: str) -> ExportMetricsServiceRequest:
    """Decodes an OTLP metrics export request (see :func:`decode_traces`)."""
    return _decode(body, content_type, ExportMetricsServiceRequest())


def decode_logs(body: bytes, content_type: str) -> ExportLogsServiceRequest:
    """Decodes an OTLP logs export request (see :func:`decode_traces`)."""
    return _decode(body, content_type, ExportLogsServiceRequest())


def _decode(body: bytes, content_type: str, message: _M) -> _M:
    media = media_type(content_type)
    name = message.DESCRIPTOR.name
    if media == PROTOBUF:
        try:
            message.ParseFromString(body)
        except Exception as exc:  # the body is hostile: nothing but DecodeError may escape
            raise DecodeError(f"invalid protobuf {name}: {_reason(exc)}") from None
        return message
    if media == JSON:
        return _decode_json(body, message)
    raise _unsupported(content_type)


def _decode_json(body: bytes, message: _M) -> _M:
    name = message.DESCRIPTOR.name
    if not body.strip():
        return message  # an empty request: the OTLP specification calls it a success
    try:
        root = orjson.loads(body)  # 3x faster than json; strict RFC 8259; depth limit 1024
    except Exception as exc:  # orjson.JSONDecodeError, and anything else: the client's
        raise DecodeError(f"invalid JSON: {_reason(exc)}") from None
    if not isinstance(root, dict):
        raise DecodeError(f"OTLP/JSON body must be a JSON object, not {_json_type(root)}")
    try:
        _fill(message, root, 0)
    except _Invalid as exc:
        raise DecodeError(f"invalid OTLP/JSON {name}: {exc.where()}{exc.reason}") from None
    except Exception as exc:  # a bug of ours or of upb: still a clean answer to the client
        raise DecodeError(f"invalid OTLP/JSON {name}: {_reason(exc)}") from None
    return message


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 300 else text[:300] + "..."


def _json_type(value: object) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    return "a boolean" if isinstance(value, bool) else "a number"


# --- OTLP/JSON -> protobuf ----------------------------------------------------------------
# A schema-driven converter rather than json_format.ParseDict, which is generic pure
# Python (~0.7 ms per span of 20 attributes on the reference machine): this one resolves
# each message type's fields once, then only looks keys up and sets values. It follows
# the protobuf JSON mapping with the OTLP deviations: ids in hex, unknown fields ignored;
# null means the default; lowerCamelCase and proto field names are both accepted.


class _Invalid(Exception):
    """A value that does not fit its field; ``path`` is filled in on the way out."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path: list[str] = []  # innermost first

    def where(self) -> str:
        parts = reversed(self.path)
        text = "".join(p if p.startswith("[") else f".{p}" for p in parts).lstrip(".")
        return f"{text}: " if text else ""


class _Field(NamedTuple):
    name: str
    convert: Callable[[Any], Any] | None  # None: a message field
    repeated: bool
    attributes: bool = False  # a repeated KeyValue: see _fill_attributes


def _shown(value: object) -> str:
    return f"{_json_type(value)} {json.dumps(value)[:40]}"


def _exactly(kind: type, what: str) -> Callable[[object], Any]:
    def convert(value: object) -> Any:
        if type(value) is kind:
            return value
        raise _Invalid(f"expected {what}, got {_shown(value)}")

    return convert


_string, _bool = _exactly(str, "a string"), _exactly(bool, "true or false")


def _hex(value: object) -> bytes:
    if isinstance(value, str) and _HEX.fullmatch(value):
        return bytes.fromhex(value)
    raise _Invalid(f"ids must be hex strings in OTLP/JSON, got {_shown(value)}")


def _base64(value: object) -> bytes:
    if isinstance(value, str):
        try:  # the protobuf JSON mapping accepts both alphabets, padded or not
            padded = value.translate(_TO_URLSAFE) + "=" * (-len(value) % 4)
            return base64.b64decode(padded, altchars=b"-_", validate=True)
        except ValueError:
            pass
    raise _Invalid(f"expected base64, got {_shown(value)}")


def _double(value: object) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:
            pass
    elif isinstance(value, str) and (value in _FLOAT_WORDS or _DECIMAL.fullmatch(value)):
        return float(value)
    raise _Invalid(f"expected a number, got {_shown(value)}")


def _integer(low: int, high: int, value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and _INTEGER.fullmatch(value):
        number = int(value)  # 64-bit integers may be strings in OTLP/JSON
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    else:
        raise _Invalid(f"expected an integer, got {_shown(value)}")
    if low <= number <= high:
        return number
    raise _Invalid(f"integer {number} is out of range")


def _enum(enum_type: Any, value: object) -> int:
    if isinstance(value, str):  # OTLP/JSON says integers; names are accepted all the same
        known = enum_type.values_by_name.get(value)
        if known is None:
            raise _Invalid(f"unknown {enum_type.name} {value[:40]!r}")
        number: int = known.number
        return number
    return _integer(-(2**31), 2**31 - 1, value)


def _int64(value: object) -> int:
    return _integer(-(2**63), 2**63 - 1, value)


# AnyValue members of the attribute fast path: JSON key -> field, converter, JSON types
# the converter takes without doubt (anything else goes the generic way).
_ANY_SCALARS: dict[str, tuple[str, Callable[[Any], Any], tuple[type, ...]]] = {
    "stringValue": ("string_value", str, (str,)),
    "boolValue": ("bool_value", bool, (bool,)),
    "intValue": ("int_value", _int64, (str, int)),
    "doubleValue": ("double_value", float, (float, int)),
}


def _converter(field: Any) -> Callable[[Any], Any] | None:
    cpp = field.cpp_type
    if cpp == field.CPPTYPE_MESSAGE:
        return None
    if cpp == field.CPPTYPE_STRING:
        if field.type == field.TYPE_BYTES:
            return _hex if field.name in _ID_FIELDS else _base64
        return _string
    if cpp == field.CPPTYPE_BOOL:
        return _bool
    if cpp in (field.CPPTYPE_DOUBLE, field.CPPTYPE_FLOAT):
        return _double
    if cpp == field.CPPTYPE_ENUM:
        return functools.partial(_enum, field.enum_type)
    return functools.partial(_integer, *_INT_RANGES[cpp])


@functools.cache
def _fields(descriptor: Any) -> dict[str, _Field]:
    """Each field of a message type, under its JSON name and its proto name."""
    table: dict[str, _Field] = {}
    for fd in descriptor.fields:
        message = fd.message_type
        is_kvs = message is not None and message.full_name == _KEY_VALUE and fd.is_repeated
        field = _Field(fd.name, _converter(fd), fd.is_repeated, is_kvs)
        table[fd.json_name] = table[fd.name] = field
    return table


def _fill(message: Any, obj: JsonDict, depth: int) -> None:
    if depth > MAX_JSON_DEPTH:
        raise _Invalid(f"messages nested deeper than {MAX_JSON_DEPTH} levels")
    fields = _fields(message.DESCRIPTOR)
    for key, value in obj.items():
        field = fields.get(key)
        if field is None or value is None:
            continue  # unknown fields are ignored (OTLP/JSON); null is the default value
        try:
            if field.attributes:
                _fill_attributes(getattr(message, field.name), value, depth)
            elif field.repeated:
                _fill_repeated(getattr(message, field.name), field, value, depth)
            elif field.convert is not None:
                setattr(message, field.name, field.convert(value))
            elif isinstance(value, dict):
                sub = getattr(message, field.name)
                sub.SetInParent()  # present even when empty ("body": {})
                _fill(sub, value, depth + 1)
            else:
                raise _Invalid(f"expected an object, got {_shown(value)}")
        except _Invalid as exc:
            exc.path.append(key)
            raise
        except (TypeError, ValueError) as exc:  # what upb refuses (a lone surrogate...)
            error = _Invalid(_reason(exc))
            error.path.append(key)
            raise error from None


def _fill_attributes(target: Any, value: object, depth: int) -> None:
    """A KeyValue list: the common ``{"key": k, "value": {"<scalar>Value": v}}`` directly.

    Attributes are most of a request; anything else (or any doubt) takes the generic
    path, which also produces the error messages.
    """
    if not isinstance(value, list):
        raise _Invalid(f"expected an array, got {_shown(value)}")
    for index, item in enumerate(value):
        kv = target.add()
        if type(item) is dict and len(item) == 2:
            key, any_value = item.get("key"), item.get("value")
            if type(key) is str and type(any_value) is dict and len(any_value) == 1:
                ((kind, scalar),) = any_value.items()
                known = _ANY_SCALARS.get(kind)
                if known is not None and type(scalar) in known[2]:
                    try:
                        setattr(kv.value, known[0], known[1](scalar))
                        kv.key = key
                        continue
                    except (_Invalid, TypeError, ValueError):
                        pass  # the generic path says what is wrong, and where
        _fill_repeated_item(kv, item, index, depth)


def _fill_repeated_item(message: Any, item: object, index: int, depth: int) -> None:
    try:
        if not isinstance(item, dict):
            raise _Invalid(f"expected an object, got {_shown(item)}")
        _fill(message, item, depth + 1)
    except _Invalid as exc:
        exc.path.append(f"[{index}]")
        raise


def _fill_repeated(target: Any, field: _Field, value: object, depth: int) -> None:
    if not isinstance(value, list):
        raise _Invalid(f"expected an array, got {_shown(value)}")
    for index, item in enumerate(value):
        try:
            if field.convert is not None:
                target.append(field.convert(item))
            elif isinstance(item, dict):
                _fill(target.add(), item, depth + 1)
            else:
                raise _Invalid(f"expected an object, got {_shown(item)}")
        except _Invalid as exc:
            exc.path.append(f"[{index}]")
            raise


def build_response(signal: Signal, rejected: int, errors: Sequence[str] = ()) -> Message:
    """The ``Export*ServiceResponse`` of a request.

    ``partial_success`` is set only when items were rejected or there is a warning
    (OTLP specification, "Partial Success": full success leaves it unset; a warning is
    a message with zero rejected items).

    Args:
        signal: Which export service answers.
        rejected: Spans, data points or log records rejected.
        errors: Short messages, joined into ``error_message``.
    """
    response_type, count_field = _RESPONSES[signal]
    response = response_type()
    message = "; ".join(errors)[:MAX_ERROR_MESSAGE_CHARS]
    if rejected or message:
        setattr(response.partial_success, count_field, rejected)
        response.partial_success.error_message = message
    return response


def encode_response(message: Message, content_type: str) -> bytes:
    """Serializes a response in the request's encoding (the OTLP specification's rule).

    Args:
        message: An ``Export*ServiceResponse``.
        content_type: The request's ``Content-Type``.

    Raises:
        UnsupportedContentType: The content type is unsupported (so was the request's).
    """
    media = media_type(content_type)
    if media == PROTOBUF:
        data: bytes = message.SerializeToString()
        return data
    if media == JSON:
        as_dict = json_format.MessageToDict(message, unquote_int64_if_possible=True)
        return json.dumps(as_dict, separators=(",", ":")).encode("utf-8")
    raise _unsupported(content_type)


def _unsupported(content_type: str) -> UnsupportedContentType:
    shown = content_type[:100]
    return UnsupportedContentType(f"unsupported content type {shown!r}: use {PROTOBUF} or {JSON}")
