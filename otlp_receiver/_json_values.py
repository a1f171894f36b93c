"""Span attributes of the fast OTLP/JSON decoder, converted as ``message_attributes`` does.

The decoder leaves each span attribute as its JSON text (``msgspec.Raw``): as ``_wire``
does for raw protobuf bytes, each distinct text is decoded into a ``JsonKeyValue``,
checked and converted once per request, and the translator's cache gives the pair back
(a dictionary lookup in C when a span has only known pairs). Strings, ints, bools,
doubles and bytes are converted here with the rules of ``key_value``; arrays and
kvlists (rare) are built as the reference ``AnyValue`` message and converted by the
reference ``_other_value``, size limit included.

An attribute the structs do not take (an unknown field, a wrong type...), an ``AnyValue``
with several members set, an ``int_value`` string the fast path does not read, or a
value nested ``MAX_NESTING`` levels or more raises :class:`Doubt`, and
``translate_traces`` translates the request again from the reference decoder's answer
(which may refuse the body). A span rejected before all its attributes were read has
the rest checked too (``ATTRIBUTE_CHECKS``), so the answer is the reference's whatever
span holds the doubtful attribute. Decoding and checking here rather than in the
decoder does it once per distinct attribute: decoding every attribute into structs and
finding the distinct ones (a set of structs, hashed and compared) took the decoder 6 µs
a span of 20 attributes, four times msgspec's parse of the rest.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from otlp_receiver._json_structs import Doubt, JsonAnyValue, JsonKeyValue
from otlp_receiver._translate._common import (
    ATTRIBUTE_CHECKS,
    ATTRIBUTE_READERS,
    Limits,
    Rejected,
    _other_value,
    clean_text,
    json_number,
)
from otlp_receiver._translate._wire import MAX_CACHED
from storage import JsonObject

#: Array/kvlist nesting the fast path takes. Below it the reference's own limits
#: (``MAX_VALUE_DEPTH`` levels, 100 message levels in all) cannot be reached.
MAX_NESTING = 16
_ONE_SET = len(JsonAnyValue.__struct_fields__) - 1  # Nones when at most one member is set
_HOLD_DOUBLES = (float, list, dict)  # converted values that may hold a double
_KEY_VALUE = msgspec.json.Decoder(JsonKeyValue)


def json_attributes(raws: Any, limits: Limits, cache: dict[Any, Any] | None) -> JsonObject:
    """``attributes`` of the JSON texts of ``KeyValue`` objects (see the module docstring)."""
    if cache is None:
        cache = {}
    if len(raws) > limits.max_attributes:  # the translator then checks them (check_wire)
        raise Rejected(f"more than {limits.max_attributes} attributes")
    # bytes: hashable. The lookups run in C; Python only for the misses.
    pairs: list[Any] = list(map(cache.get, map(bytes, raws)))
    nul = None in pairs and _convert_misses(raws, pairs, cache, limits.max_attribute_value_bytes)
    out = dict(pairs)
    if nul:
        out = {clean_text(key): value for key, value in out.items()}
    return out


def _convert_misses(raws: Any, pairs: list[Any], cache: dict[Any, Any], max_bytes: int) -> bool:
    """Converts the attributes not in ``cache`` (their pairs are None); True if a key has NUL."""
    nul = False
    index = 0
    for _ in range(pairs.count(None)):
        index = pairs.index(None, index)
        text = bytes(raws[index])
        kv = key_value_of(text)  # checked; on a Rejected the translator checks the rest
        pair = pairs[index] = _pair(kv.key, kv.value, max_bytes)
        if "\x00" in pair[0]:
            nul = True  # never cached: a hit is not cleaned
        elif len(cache) < MAX_CACHED and (
            type(pair[1]) not in _HOLD_DOUBLES or _cacheable(pair[1])
        ):
            cache[text] = pair
    return nul


def key_value_of(text: bytes | msgspec.Raw) -> JsonKeyValue:
    """The checked ``JsonKeyValue`` of an attribute's JSON text.

    Raises:
        Doubt: The structs do not take it, or :func:`check_values` doubts it.
    """
    try:
        kv = _KEY_VALUE.decode(text)
    except Exception:  # invalid or unusual (msgspec's errors, or nested too deep for it)
        raise Doubt("an attribute the fast path does not take") from None
    _check(kv)
    return kv


def _pair(key: str, value: JsonAnyValue | None, max_bytes: int) -> tuple[str, Any]:
    """``key_value`` of one attribute: its key as sent, its value as ``attributes`` maps it."""
    if value is None:
        return key, None
    text = value.string_value
    if text is not None:
        if len(text) * 4 > max_bytes and len(text.encode("utf-8")) > max_bytes:
            raise Rejected(f"attribute {key[:64]!r} is larger than {max_bytes} bytes")
        return key, text.replace("\x00", "\ufffd") if "\x00" in text else text
    number = value.int_value
    if number is not None:
        return key, number if type(number) is int else int(number)
    if value.bool_value is not None:
        return key, value.bool_value
    if value.double_value is not None:
        return key, json_number(value.double_value)
    data = value.bytes_value
    if data is not None:
        if len(data) > max_bytes:
            raise Rejected(f"attribute {key[:64]!r} is larger than {max_bytes} bytes")
        return key, data.hex()
    if value.array_value is None and value.kvlist_value is None:
        return key, None
    return key, _other_value(any_value_message(value), key, max_bytes)


def _cacheable(value: Any) -> bool:
    """False if ``value`` holds a zero double: 0.0 and -0.0 are equal keys, not equal JSON."""
    if type(value) is float:
        return value != 0.0
    if type(value) is list:
        return all(map(_cacheable, value))
    if type(value) is dict:
        return all(map(_cacheable, value.values()))
    return True


def check_values(texts: Iterable[bytes | msgspec.Raw]) -> None:
    """Raises :class:`Doubt` unless every attribute (JSON text) converts without doubt."""
    for text in texts:
        key_value_of(text)


def _check(kv: JsonKeyValue) -> None:
    value = kv.value
    if value is None:
        return
    if msgspec.structs.astuple(value).count(None) < _ONE_SET:
        raise Doubt("several members of an AnyValue are set")
    if type(value.int_value) is str:
        _check_int_text(value.int_value)
    elif value.array_value is not None or value.kvlist_value is not None:
        any_value_message(value)


def _check_int_text(text: str) -> None:
    """An int64 as a string: at most 18 digits, so always in range (the reference
    takes 20, and checks the range: longer strings, and "+1", " 1", "1_0"... go its way)."""
    digits = text[1:] if text[:1] == "-" else text
    if not (0 < len(digits) <= 18 and digits.isascii() and digits.isdigit()):
        raise Doubt("not an int64 the fast path takes")


def any_value_message(value: JsonAnyValue) -> AnyValue:
    """The reference ``AnyValue`` message of a struct.

    Raises:
        Doubt: A member nested ``MAX_NESTING`` levels deep, or several members set.
    """
    message = AnyValue()
    _fill_value(message, value, 0)
    return message


def _fill_value(message: Any, value: JsonAnyValue, depth: int) -> None:
    if msgspec.structs.astuple(value).count(None) < _ONE_SET:
        raise Doubt("several members of an AnyValue are set")
    if value.string_value is not None:
        message.string_value = value.string_value
    elif value.int_value is not None:
        if type(value.int_value) is str:
            _check_int_text(value.int_value)
        message.int_value = int(value.int_value)
    elif value.bool_value is not None:
        message.bool_value = value.bool_value
    elif value.double_value is not None:
        message.double_value = value.double_value
    elif value.bytes_value is not None:
        message.bytes_value = value.bytes_value
    elif value.array_value is not None or value.kvlist_value is not None:
        if depth + 1 >= MAX_NESTING:
            raise Doubt("attribute value nested too deep")
        if value.array_value is not None:
            message.array_value.SetInParent()  # present even when empty, as in _fill
            for item in value.array_value.values:
                _fill_value(message.array_value.values.add(), item, depth + 1)
        else:
            message.kvlist_value.SetInParent()
            for kv in value.kvlist_value.values:  # type: ignore[union-attr]
                entry = message.kvlist_value.values.add(key=kv.key)
                if kv.value is not None:
                    entry.value.SetInParent()
                    _fill_value(entry.value, kv.value, depth + 1)


ATTRIBUTE_READERS[msgspec.Raw] = json_attributes
ATTRIBUTE_CHECKS[msgspec.Raw] = check_values
