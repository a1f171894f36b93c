"""Parameters of the Jaeger query APIs as clients send them (pure; no I/O).

Grafana's Jaeger data source (upper-floors notes §A1) sends search times as epoch
microseconds, trace-by-id times as microseconds (frontend) or milliseconds (its Go
backend), durations as Go duration strings (``1.2s``, ``100ms``, ``1h30m``), and tags as
a JSON object string. api_v3 takes RFC 3339 times and trace ids in hex or base64.
Every parser raises :class:`ParamError` naming the parameter.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Go's time.ParseDuration units, in nanoseconds (µ is U+00B5, μ is U+03BC: Go takes both).
_UNITS = {"ns": 1, "us": 1_000, "\u00b5s": 1_000, "\u03bcs": 1_000, "ms": 1_000_000,
          "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}  # fmt: skip
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)")
#: Below this an epoch number is taken as milliseconds (10**14 µs is in 1973; 10**14 ms
#: in the year 5138), so both units Grafana uses for trace-by-id bounds are understood.
MS_OR_US_THRESHOLD = 10**14
_LOOKBACK = re.compile(r"(\d+)([smhdw])")
_LOOKBACK_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class ParamError(ValueError):
    """A query parameter that cannot be understood."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(f"{param}: {message}")
        self.param = param


def go_duration_us(value: str, param: str) -> int:
    """A Go duration string in whole microseconds (``1.5ms`` → 1500; ``0`` → 0)."""
    text = value.strip()
    sign = -1 if text.startswith("-") else 1
    body = text.lstrip("+-")
    if body == "0":
        return 0
    pos, total_ns = 0, 0.0
    for match in _PART.finditer(body):
        if match.start() != pos:
            break
        total_ns += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if not body or pos != len(body):
        raise ParamError(param, f"not a duration like 100ms, 1.5s or 1h30m: {value!r}")
    return sign * int(total_ns // 1000)


def epoch_us(value: str, param: str) -> int:
    """Epoch microseconds (a Jaeger search bound)."""
    try:
        return int(value.strip())
    except ValueError:
        raise ParamError(param, f"not an integer number of microseconds: {value!r}") from None


def epoch_us_or_ms(value: str, param: str) -> int:
    """Epoch microseconds from a number in µs or in ms (see ``MS_OR_US_THRESHOLD``)."""
    number = epoch_us(value, param)
    return number * 1000 if 0 <= number < MS_OR_US_THRESHOLD else number


def at_us(us: int) -> datetime:
    """Epoch microseconds as an aware datetime."""
    return _EPOCH + timedelta(microseconds=us)


def us_of(t: datetime) -> int:
    """An aware datetime as epoch microseconds."""
    return (t - _EPOCH) // timedelta(microseconds=1)


def lookback(value: str, param: str) -> timedelta:
    """Jaeger UI's lookback (``1h``, ``2d``, ``7d``; a Go duration is also accepted)."""
    match = _LOOKBACK.fullmatch(value.strip())
    if match:
        return timedelta(seconds=int(match.group(1)) * _LOOKBACK_UNITS[match.group(2)])
    return timedelta(microseconds=go_duration_us(value, param))


def tags(value: str | None, pairs: list[str], param: str = "tags") -> tuple[tuple[str, str], ...]:
    """Tag filters from ``tags`` (a JSON object) and repeated ``tag=key:value``."""
    out: list[tuple[str, str]] = []
    if value:
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            raise ParamError(param, 'not a JSON object like {"http.status_code":"500"}') from None
        if not isinstance(parsed, dict):
            raise ParamError(param, 'not a JSON object like {"http.status_code":"500"}')
        for key, tag_value in parsed.items():
            out.append((str(key), _text(tag_value)))
    for pair in pairs:
        key, sep, tag_value = pair.partition(":")
        if not sep or not key:
            raise ParamError("tag", f"not key:value: {pair!r}")
        out.append((key, tag_value))
    return tuple(out)


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value)


def hex_trace_id(value: str, param: str = "traceID") -> bytes:
    """A hex trace id (1 to 32 digits; shorter ids are 64-bit ones, zero-padded)."""
    text = value.strip().lower()
    if not 0 < len(text) <= 32 or not re.fullmatch(r"[0-9a-f]+", text):
        raise ParamError(param, f"not a hex trace id of up to 32 digits: {value!r}")
    return bytes.fromhex(text.rjust(32, "0"))


def any_trace_id(value: str, param: str = "trace_id") -> bytes:
    """A trace id in hex (32 digits) or base64 (standard or URL-safe, padded or not)."""
    text = value.strip()
    if re.fullmatch(r"[0-9a-fA-F]{32}", text):
        return bytes.fromhex(text)
    padded = text + "=" * (-len(text) % 4)
    for decode in (base64.b64decode, base64.urlsafe_b64decode):
        try:
            raw = decode(padded.encode())
        except (binascii.Error, ValueError):
            continue
        if len(raw) == 16:
            return raw
    raise ParamError(param, f"not a trace id (32 hex digits or base64 of 16 bytes): {value!r}")


def rfc3339(value: str, param: str) -> datetime:
    """An RFC 3339 time (nanoseconds are cut to microseconds; ``Z`` or an offset)."""
    text = value.strip()
    match = re.fullmatch(r"(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", text, re.I)
    if not match:
        raise ParamError(param, f"not an RFC 3339 time: {value!r}")
    head, frac, zone = match.groups()
    zone = "+00:00" if zone.upper() == "Z" else zone
    try:
        parsed = datetime.fromisoformat(f"{head}.{(frac or '0')[:6].ljust(6, '0')}{zone}")
    except ValueError:
        raise ParamError(param, f"not an RFC 3339 time: {value!r}") from None
    return parsed.astimezone(UTC)
