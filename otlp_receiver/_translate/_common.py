"""What the three signals share: limits, rejections, attribute values, resources, agents.

Everything here runs for every span, log record and data point, so the attribute path
is written for speed: a string is recognised without ``WhichOneof`` (a non-empty
``string_value`` can only be the set member of the oneof), no ``datetime`` objects, no
JSON round trip per item.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from semconv.attributes.aeos import (
    AEOS_AGENT_ID,
    AEOS_AGENT_NAME,
    AEOS_FLEET_ID,
    AEOS_SUBSYSTEM,
    AeosSubsystemValues,
)
from semconv.normalize import as_text, subsystem_of
from storage import AgentSighting, Batch, JsonObject

MAX_INT64 = 2**63 - 1  # bigint columns; OTLP fixed64/uint64 values may exceed it
MAX_INT32 = 2**31 - 1  # integer columns (dropped_attributes_count is a uint32 in OTLP)
MAX_ID_BYTES = 256  # identifiers that are index keys (see _bounds)
MAX_ERRORS = 10  # distinct messages kept for partial_success.error_message
MAX_VALUE_DEPTH = 32  # array/kvlist nesting accepted in an attribute value
SUBSYSTEMS = frozenset(value.value for value in AeosSubsystemValues)
SERVICE_NAME = "service.name"  # OpenTelemetry resource conventions
SERVICE_VERSION = "service.version"
SERVICE_INSTANCE_ID = "service.instance.id"
QUANTILES_KEY = "_quantiles"  # reserved attribute key of a summary point's quantiles

_NOT_FINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}  # OTLP/JSON spelling


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-item limits; an item over any of them is rejected (partial success)."""

    max_attributes: int = 256
    max_attribute_value_bytes: int = 65536
    max_name_bytes: int = 1024


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True, slots=True)
class Translation:
    """The rows of one export request, and what was rejected from it.

    Attributes:
        batch: The rows, all of the org of the request's ingest key.
        rejected: Spans, log records or data points rejected (``partial_success``).
        errors: Short, distinct messages (at most ``MAX_ERRORS``): why items were
            rejected, or warnings about parts skipped without rejecting their item.
    """

    batch: Batch
    rejected: int
    errors: tuple[str, ...]


class Rejected(Exception):
    """Raised while translating one item: that item is rejected, the request goes on."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(slots=True)
class Rejections:
    """Counts rejected items and keeps the first few distinct messages."""

    count: int = 0
    messages: list[str] = field(default_factory=list)

    def reject(self, what: str, reason: str, n: int = 1) -> None:
        """Counts ``n`` rejected items (spans, log records or data points)."""
        self.count += n
        self.warn(f"{what} rejected: {reason}")

    def warn(self, message: str) -> None:
        """Keeps a message without counting a rejection (an OTLP partial-success warning)."""
        if len(self.messages) < MAX_ERRORS and message not in self.messages:
            self.messages.append(message)


def clean_text(text: str) -> str:
    """``text`` without NUL characters, which PostgreSQL text and jsonb cannot store."""
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


def check_name(name: str, limits: Limits, what: str = "name") -> str:
    """The name, cleaned, or :class:`Rejected` if it is over ``max_name_bytes``."""
    limit = limits.max_name_bytes
    if len(name) * 4 > limit and len(name.encode("utf-8")) > limit:
        raise Rejected(f"{what} is longer than {limit} bytes")
    return clean_text(name)


def check_id(value: str | None, what: str) -> None:
    """Raises :class:`Rejected` if ``value`` is longer than ``MAX_ID_BYTES`` (UTF-8)."""
    too_long = value is not None and len(value) * 4 > MAX_ID_BYTES  # else short in any case
    if too_long and len(value.encode("utf-8", "surrogatepass")) > MAX_ID_BYTES:  # type: ignore[union-attr]
        raise Rejected(f"{what} is longer than {MAX_ID_BYTES} bytes")


class FastPathDoubt(Exception):
    """A fast decoder's input holds what only the reference decoder decides: the request
    (which keeps its ``body`` and ``media_type``) is translated again from the reference
    decoder's answer, which may refuse it."""


#: Attribute checks by the type of a list's items, for the attributes of a span that
#: translation rejected before reading them all: raise :class:`FastPathDoubt` (or a
#: subclass) where the reference decoder must decide. Registered by the fast decoders.
ATTRIBUTE_CHECKS: dict[type, Callable[[Any], None]] = {}

#: Attribute readers by the type of a list's items: the default (``message_attributes``)
#: reads ``KeyValue`` messages; the receiver's fast decoders register theirs (raw
#: ``KeyValue`` bytes, OTLP/JSON structs). Each must give exactly what
#: ``message_attributes`` gives for the same attributes, and raise the same rejections.
AttributeReader = Callable[[Any, "Limits", "dict[Any, Any] | None"], JsonObject]
ATTRIBUTE_READERS: dict[type, AttributeReader] = {}


def attributes(kvs: Any, limits: Limits, cache: dict[Any, Any] | None = None) -> JsonObject:
    """OTLP ``KeyValue`` list → a JSON-able dict (the later of duplicate keys wins).

    Strings, ints, bools and doubles map to themselves (non-finite doubles to their
    OTLP/JSON strings), bytes to hex, arrays to lists, kvlists to dicts, an empty value
    to ``None``. ``kvs`` holds messages, or what a fast decoder put there (see
    ``ATTRIBUTE_READERS``); ``cache`` lets a reader reuse what it converted earlier in
    the same request.

    Raises:
        Rejected: More than ``max_attributes``, or a value over ``max_attribute_value_bytes``.
    """
    if not kvs:
        return {}
    reader = ATTRIBUTE_READERS.get(type(kvs[0]))
    if reader is not None:
        return reader(kvs, limits, cache)
    return message_attributes(kvs, limits)


def message_attributes(kvs: Any, limits: Limits) -> JsonObject:
    """:func:`attributes` of ``KeyValue`` messages."""
    if len(kvs) > limits.max_attributes:
        raise Rejected(f"more than {limits.max_attributes} attributes")
    max_bytes = limits.max_attribute_value_bytes
    out: JsonObject = {}
    for kv in kvs:
        key, value = key_value(kv, max_bytes)
        out[key] = value
    if "\x00" in "".join(out):  # one scan for all keys rather than one per key
        out = {clean_text(key): value for key, value in out.items()}
    return out


def key_value(kv: Any, max_bytes: int) -> tuple[str, Any]:
    """One ``KeyValue`` message → (its key as sent, its value as :func:`attributes` maps it)."""
    value = kv.value
    text = value.string_value
    if text:  # the fast path: most attributes are strings
        if len(text) * 4 > max_bytes and len(text.encode("utf-8")) > max_bytes:
            raise Rejected(f"attribute {kv.key[:64]!r} is larger than {max_bytes} bytes")
        return kv.key, text.replace("\x00", "\ufffd") if "\x00" in text else text
    if number := value.int_value:  # a non-zero int_value: the set member
        return kv.key, number
    return kv.key, _other_value(value, kv.key, max_bytes)


def _other_value(value: Any, key: str, max_bytes: int) -> Any:
    kind = value.WhichOneof("value")
    if kind == "int_value" or kind == "bool_value":
        return getattr(value, kind)
    if kind == "double_value":
        return json_number(value.double_value)
    if kind == "string_value":
        return ""
    if kind is None:
        return None
    size = len(value.bytes_value) if kind == "bytes_value" else value.ByteSize()
    if size > max_bytes:
        raise Rejected(f"attribute {key[:64]!r} is larger than {max_bytes} bytes")
    return any_value(value)


def any_value(value: Any, depth: int = 0) -> Any:
    """One OTLP ``AnyValue`` → a JSON-able Python value (see :func:`attributes`).

    Raises:
        Rejected: The value nests arrays/kvlists deeper than ``MAX_VALUE_DEPTH``.
    """
    kind = value.WhichOneof("value")
    if kind in ("string_value", "int_value", "bool_value"):
        return clean_text(value.string_value) if kind == "string_value" else getattr(value, kind)
    if kind == "double_value":
        return json_number(value.double_value)
    if kind == "bytes_value":
        return bytes(value.bytes_value).hex()
    if kind not in ("array_value", "kvlist_value"):
        return None  # unset, or a profiles-only string-table index
    if depth >= MAX_VALUE_DEPTH:
        raise Rejected(f"attribute value nested deeper than {MAX_VALUE_DEPTH} levels")
    if kind == "array_value":
        return [any_value(v, depth + 1) for v in value.array_value.values]
    return {clean_text(kv.key): any_value(kv.value, depth + 1) for kv in value.kvlist_value.values}


def json_number(number: float) -> float | str:
    """A double for JSON: itself if finite, else its OTLP/JSON string ("NaN", ...)."""
    return number if number - number == 0.0 else _NOT_FINITE[repr(number)]


def canonical_json(obj: object) -> bytes:
    """Order-independent JSON of attributes (for hashes: series ids, event ids)."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8", "surrogatepass")


def digest16(*parts: bytes) -> bytes:
    """A 16-byte BLAKE2b digest of ``parts``, each length-prefixed (no ambiguity)."""
    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        h.update(len(part).to_bytes(8, "little"))
        h.update(part)
    return h.digest()


def text_attr(attrs: JsonObject, key: str) -> str | None:
    """A string attribute (ints are accepted as their decimal text); None if absent/empty."""
    value = attrs.get(key)
    if isinstance(value, str):
        return value or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def clamp_enum(value: int, top: int) -> int:
    """An OTLP enum value kept only when it is one we know (proto3 enums are open)."""
    return value if 0 <= value <= top else 0


@dataclass(frozen=True, slots=True)
class Scope:
    """An instrumentation scope: its name (a column) and digest (part of event ids)."""

    name: str | None
    digest: bytes


def scope_of(scope: Any) -> Scope:
    """The :class:`Scope` of an OTLP ``InstrumentationScope``."""
    return Scope(clean_text(scope.name) or None, digest16(scope.SerializeToString()))


@dataclass(slots=True)
class ResourceInfo:
    """One distinct resource of a request, the agent it names, and what was seen of it."""

    attributes: JsonObject
    key: bytes  # canonical JSON of the attributes: identifies the resource
    digest: bytes  # digest16 of key: what event ids hash
    agent_id: str | None
    agent_name: str | None
    fleet_id: str | None
    declared_subsystem: str | None  # aeos.subsystem when it is one we know
    service_name: str | None
    version: str | None
    seen_ns: int = 0
    heartbeat_ns: int | None = None
    status: str | None = None

    def seen(self, time_ns: int) -> None:
        """Records an accepted item of this resource."""
        if time_ns > self.seen_ns:
            self.seen_ns = time_ns

    def heartbeat(self, time_ns: int, status: str) -> None:
        """Records a heartbeat; the newest one decides the status."""
        if self.heartbeat_ns is None or time_ns >= self.heartbeat_ns:
            self.heartbeat_ns, self.status = time_ns, status
        self.seen(time_ns)


def _declared_subsystem(attrs: JsonObject) -> str | None:
    """``aeos.subsystem`` as ``semconv.normalize.subsystem_of`` reads it, or None."""
    value = as_text(attrs.get(AEOS_SUBSYSTEM))
    upper = value.upper() if value else None
    return upper if upper in SUBSYSTEMS else None


def subsystem(resource: ResourceInfo, attrs: JsonObject) -> str:
    """The subsystem of an item (``semconv.normalize.subsystem_of``).

    Short-cut for the usual case, with the same result: the resource declares its
    subsystem and the item does not override it.
    """
    if resource.declared_subsystem is not None and AEOS_SUBSYSTEM not in attrs:
        return resource.declared_subsystem
    return subsystem_of(resource.attributes, attrs)


class Resources:
    """The distinct resources of one request (two equal resources are one agent)."""

    __slots__ = ("_by_key", "_limits")

    def __init__(self, limits: Limits) -> None:
        self._limits = limits
        self._by_key: dict[bytes, ResourceInfo] = {}

    def get(self, resource: Any) -> ResourceInfo:
        """The resource's info, shared by every item of equal resources.

        Raises:
            Rejected: The resource's attributes are over the limits, or an identifier
                it maps (service, agent, fleet, version) is over ``MAX_ID_BYTES``.
        """
        attrs = attributes(resource.attributes, self._limits)
        key = canonical_json(attrs)
        info = self._by_key.get(key)
        if info is None:
            info = self._by_key[key] = _resource_info(attrs, key)
        return info

    def agent_sightings(self) -> list[AgentSighting]:
        """One sighting per resource that names an agent and had an accepted item."""
        return [
            AgentSighting(
                agent_id=info.agent_id,
                fleet_id=info.fleet_id,
                name=info.agent_name or info.agent_id,
                subsystem=subsystem_of(info.attributes),
                service_name=info.service_name,
                version=info.version,
                seen_ns=info.seen_ns,
                resource_attributes=info.attributes,
                heartbeat_ns=info.heartbeat_ns,
                status=info.status,
            )
            for info in self._by_key.values()
            if info.agent_id is not None and info.seen_ns > 0
        ]


def _resource_info(attrs: JsonObject, key: bytes) -> ResourceInfo:
    agent_id = (
        text_attr(attrs, AEOS_AGENT_ID)
        or text_attr(attrs, SERVICE_INSTANCE_ID)
        or text_attr(attrs, SERVICE_NAME)
    )
    for name in (AEOS_AGENT_ID, SERVICE_INSTANCE_ID, SERVICE_NAME, SERVICE_VERSION,
                 AEOS_AGENT_NAME, AEOS_FLEET_ID):  # fmt: skip
        check_id(text_attr(attrs, name), f"attribute {name!r}")
    return ResourceInfo(
        attributes=attrs,
        key=key,
        digest=digest16(key),
        agent_id=agent_id,
        agent_name=text_attr(attrs, AEOS_AGENT_NAME) or agent_id,
        fleet_id=text_attr(attrs, AEOS_FLEET_ID),
        declared_subsystem=_declared_subsystem(attrs),
        service_name=text_attr(attrs, SERVICE_NAME),
        version=text_attr(attrs, SERVICE_VERSION),
    )
