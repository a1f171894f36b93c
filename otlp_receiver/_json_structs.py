"""msgspec structs of an OTLP/JSON traces request (see ``otlp_receiver._json_traces``).

Field names are the proto names; ``rename="camel"`` gives the OTLP/JSON keys, and
``forbid_unknown_fields`` makes any other key (a proto name too) an error, so that such
a body goes the reference way. Integer bounds are those of the proto types.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from otlp_receiver._translate._common import FastPathDoubt

_I32 = Annotated[int, msgspec.Meta(ge=-(2**31), le=2**31 - 1)]
_U32 = Annotated[int, msgspec.Meta(ge=0, le=2**32 - 1)]
_I64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
_U64 = Annotated[int, msgspec.Meta(ge=0)]  # msgspec bounds stop at int64: checked after
_ABSENT = msgspec.Raw(b"")


class Doubt(FastPathDoubt):
    """Something the fast path does not take: the reference decoder decides (raised while
    decoding, or while translating an attribute: see ``_json_values``)."""


class JsonAnyValue(msgspec.Struct, frozen=True, gc=False, rename="camel",
                   forbid_unknown_fields=True):  # fmt: skip
    """An ``AnyValue``; None is "not set" (null included, as in the reference).

    An ``int_value`` string is checked by ``_json_values.check_values`` (faster there,
    once per distinct attribute of the request, than a msgspec pattern on every one).
    """

    string_value: str | None = None
    bool_value: bool | None = None
    int_value: _I64 | str | None = None
    double_value: float | None = None
    array_value: JsonArrayValue | None = None
    kvlist_value: JsonKeyValueList | None = None
    bytes_value: bytes | None = None


class JsonKeyValue(msgspec.Struct, frozen=True, gc=False, rename="camel",
                   forbid_unknown_fields=True):  # fmt: skip
    """A ``KeyValue`` (a span's attribute is decoded into one when its JSON text is not in
    the per-request conversion cache: ``_json_values``; a kvlist's, with its value)."""

    key: str = ""
    value: JsonAnyValue | None = None


class JsonArrayValue(msgspec.Struct, frozen=True, gc=False, forbid_unknown_fields=True):
    """An ``ArrayValue``."""

    values: tuple[JsonAnyValue, ...] = ()


class JsonKeyValueList(msgspec.Struct, frozen=True, gc=False, forbid_unknown_fields=True):
    """A ``KeyValueList``."""

    values: tuple[JsonKeyValue, ...] = ()


class JsonStatus(msgspec.Struct, frozen=True, gc=False, forbid_unknown_fields=True):
    """A span's ``Status``."""

    message: str = ""
    code: _I32 | str = 0


_DEFAULT_STATUS = JsonStatus()


class JsonSpan(msgspec.Struct, gc=False, rename="camel", forbid_unknown_fields=True):
    """A ``Span``: the decoder replaces its hex ids by bytes, times given as strings by
    ints, its events and links by their protobuf messages (``_json_traces``)."""

    trace_id: str = ""
    span_id: str = ""
    trace_state: str = ""
    parent_span_id: str = ""
    flags: _U32 = 0
    name: str = ""
    kind: _I32 | str = 0
    start_time_unix_nano: _U64 | str = 0
    end_time_unix_nano: _U64 | str = 0
    attributes: list[msgspec.Raw] = []  # each a JsonKeyValue, decoded once per request
    dropped_attributes_count: _U32 = 0
    events: list[msgspec.Raw] = []
    dropped_events_count: _U32 = 0
    links: list[msgspec.Raw] = []
    dropped_links_count: _U32 = 0
    status: JsonStatus = _DEFAULT_STATUS


class JsonScopeSpans(msgspec.Struct, gc=False, rename="camel", forbid_unknown_fields=True):
    """A ``ScopeSpans``; its scope becomes the reference ``InstrumentationScope``."""

    scope: msgspec.Raw = _ABSENT
    spans: list[JsonSpan] = []
    schema_url: str = ""


class JsonResourceSpans(msgspec.Struct, gc=False, rename="camel",
                        forbid_unknown_fields=True):  # fmt: skip
    """A ``ResourceSpans``; its resource becomes the reference ``Resource``."""

    resource: msgspec.Raw = _ABSENT
    scope_spans: list[JsonScopeSpans] = []
    schema_url: str = ""


class JsonTraces(msgspec.Struct, gc=False, rename="camel", forbid_unknown_fields=True):
    """An ``ExportTraceServiceRequest``."""

    resource_spans: list[JsonResourceSpans] = []
