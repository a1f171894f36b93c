"""Attributes as raw ``KeyValue`` bytes: what the receiver's fast protobuf decoder leaves.

The fast decoder (``otlp_receiver._lite``) parses a traces request with span attributes
typed as ``repeated bytes`` (the same wire format as ``repeated KeyValue``), so that
upb does not build a message per attribute. This module turns those bytes into the
same dict :func:`otlp_receiver._translate._common.message_attributes` gives, with a
per-request cache keyed by the bytes of each ``KeyValue``: in agent telemetry most
key/value pairs repeat from span to span (method, route, model, tenant...), and a hit
costs a dictionary lookup instead of a parse and five attribute reads.

A ``KeyValue`` that does not parse (bad UTF-8, truncated) raises :class:`WireError`:
the whole request is then decoded the reference way, which refuses it with the same
answer as before this decoder existed. To keep that exact, every attribute of a span is
parsed even when the span is rejected for another reason (:func:`check_wire`).
"""

from __future__ import annotations

from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from otlp_receiver._translate._common import (
    ATTRIBUTE_CHECKS,
    ATTRIBUTE_READERS,
    FastPathDoubt,
    Limits,
    Rejected,
    clean_text,
    key_value,
)
from storage import JsonObject

#: Distinct ``KeyValue`` encodings remembered per request: bounds the cache's memory
#: (a hostile request of all-distinct attributes just stops filling it).
MAX_CACHED = 8192


class WireError(FastPathDoubt):
    """An attribute's bytes are not a valid ``KeyValue``: decode the request the reference way."""


class AttributeCache(dict[bytes, tuple[str, Any]]):
    """``KeyValue`` encoding → (key, value), filled on lookup (``__missing__``).

    A hit is a C-level dictionary lookup; only a miss runs Python code. A pair whose key
    holds a NUL is returned but not kept, and flags the span (``nul``): its keys are
    cleaned over the whole dict, as ``message_attributes`` does.
    """

    __slots__ = ("max_bytes", "nul")

    def __init__(self, limits: Limits) -> None:
        super().__init__()
        self.max_bytes = limits.max_attribute_value_bytes
        self.nul = False

    def __missing__(self, data: bytes) -> tuple[str, Any]:
        pair = key_value(_parse(data), self.max_bytes)
        if "\x00" in pair[0]:
            self.nul = True
        elif len(self) < MAX_CACHED:
            self[data] = pair
        return pair


def wire_attributes(kvs: Any, limits: Limits, cache: dict[Any, Any] | None) -> JsonObject:
    """``attributes`` of raw ``KeyValue`` encodings (see the module docstring).

    ``cache``: an :class:`AttributeCache` of the request (another dict, or None: none).
    """
    if not isinstance(cache, AttributeCache):
        cache = AttributeCache(limits)
    if len(kvs) > limits.max_attributes:
        check_attributes(kvs)
        raise Rejected(f"more than {limits.max_attributes} attributes")
    cache.nul = False
    try:
        out = dict(map(cache.__getitem__, kvs))  # the loop runs in C; misses in __missing__
    except Rejected:
        check_attributes(kvs)
        raise
    if cache.nul:
        out = {clean_text(key): value for key, value in out.items()}
    return out


def _parse(data: bytes) -> Any:
    try:
        return KeyValue.FromString(data)
    except DecodeError as exc:
        raise WireError(str(exc)) from None


def check_attributes(kvs: Any) -> None:
    """Parses every encoding; :class:`WireError` if one is invalid."""
    for b in kvs:
        _parse(b)


def check_wire(span: Any) -> None:
    """Validates the raw parts of a span that translation did not read (it was rejected):
    its attributes as a fast decoder left them (``ATTRIBUTE_CHECKS``), its raw events."""
    kvs = span.attributes
    check = ATTRIBUTE_CHECKS.get(type(kvs[0])) if kvs else None
    if check is not None:
        check(kvs)
    for event in span.events:
        if type(event) is bytes:
            parse_event(event)


def parse_event(data: bytes) -> Any:
    """A span event's encoding → ``Span.Event`` (the full message: events are few)."""
    try:
        return Span.Event.FromString(data)
    except DecodeError as exc:
        raise WireError(str(exc)) from None


ATTRIBUTE_READERS[bytes] = wire_attributes
ATTRIBUTE_CHECKS[bytes] = check_attributes
