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
    ATTRIBUTE_READERS,
    Limits,
    Rejected,
    clean_text,
    key_value,
)
from storage import JsonObject

#: Distinct ``KeyValue`` encodings remembered per request: bounds the cache's memory
#: (a hostile request of all-distinct attributes just stops filling it).
MAX_CACHED = 8192


class WireError(Exception):
    """An attribute's bytes are not a valid ``KeyValue``: decode the request the reference way."""


def wire_attributes(kvs: Any, limits: Limits, cache: dict[Any, Any] | None) -> JsonObject:
    """``attributes`` of raw ``KeyValue`` encodings (see the module docstring)."""
    if cache is None:
        cache = {}
    if len(kvs) > limits.max_attributes:
        check_attributes(kvs, cache)
        raise Rejected(f"more than {limits.max_attributes} attributes")
    try:  # all hits: the loop runs in C
        return dict(map(cache.__getitem__, kvs))
    except KeyError:
        pass
    pairs: list[tuple[str, Any]] = []
    nul = False
    max_bytes = limits.max_attribute_value_bytes
    for b in kvs:
        pair = cache.get(b)
        if pair is None:
            try:
                pair = key_value(_parse(b), max_bytes)
            except Rejected:
                check_attributes(kvs, cache)
                raise
            if "\x00" in pair[0]:
                nul = True  # never cached: the all-hits path above cannot clean keys
            elif len(cache) < MAX_CACHED:
                cache[b] = pair
        pairs.append(pair)
    out = dict(pairs)
    if nul:
        out = {clean_text(key): value for key, value in out.items()}
    return out


def _parse(data: bytes) -> Any:
    try:
        return KeyValue.FromString(data)
    except DecodeError as exc:
        raise WireError(str(exc)) from None


def check_attributes(kvs: Any, cache: dict[Any, Any]) -> None:
    """Parses every encoding not seen yet; :class:`WireError` if one is invalid."""
    for b in kvs:
        if b not in cache:
            _parse(b)


def check_wire(span: Any, cache: dict[Any, Any]) -> None:
    """Validates the raw parts of a span that translation did not read (it was rejected)."""
    kvs = span.attributes
    if kvs and type(kvs[0]) is bytes:
        check_attributes(kvs, cache)
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
