"""Grafana's expansion of a PostgreSQL panel query, for tests and benchmarks.

What Grafana does before the SQL reaches the database: the frontend replaces template
variables (``$var``, ``${var}``, ``${var:format}``; a multi-value or "include All"
variable becomes quoted literals joined by commas; a custom "All" value is inserted as
it is), then the backend replaces ``$__interval_ms`` and ``$__interval`` and expands the
macros (``grafana-postgresql-datasource`` ``macros.go``): ``$__timeFilter(c)`` is
``c BETWEEN 'from' AND 'to'`` (RFC 3339, UTC), ``$__timeFrom()`` / ``$__timeTo()`` the
quoted bounds, ``$__timeGroup(c, 10m)`` ``time_bucket('600s',c)`` with the data source's
TimescaleDB option and ``floor(extract(epoch from c)/600)*600`` without, and
``$__timeGroupAlias`` the same plus ``AS "time"``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

ALL: Final = None  # a variable's value meaning "All"
_VARIABLE = re.compile(r"\$\{(\w+)(?::(\w+))?\}|\$(\w+)")
_MACRO = re.compile(r"\$__(\w+)\(([^)]*)\)")
_UNITS: Final = (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1))
_INTERVAL = re.compile(r"^(\d+)(ms|s|m|h|d|w)$")
_UNIT_MS: Final = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000,
                   "w": 604_800_000}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Request:
    """What Grafana knows when it runs a panel: range, interval, variable values."""

    start: datetime
    end: datetime
    interval_ms: int
    values: Mapping[str, Sequence[str] | None]
    timescaledb: bool = False


def interval_text(ms: int) -> str:
    """``$__interval`` as Grafana writes it (``10m``, ``1h``, ``500ms``)."""
    for unit, size in _UNITS:
        if ms % size == 0 and ms >= size:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _variable(definition: Mapping[str, Any], value: Sequence[str] | None, fmt: str | None) -> str:
    if value is ALL:
        custom = definition.get("allValue")
        if custom:
            return str(custom)
        raise ValueError(f"variable {definition['name']} has no custom All value")
    values = list(value)
    if fmt == "sqlstring":
        return ",".join(_quote(v) for v in values)
    if fmt == "raw" or fmt == "csv":
        return ",".join(values)
    if fmt is not None:
        raise ValueError(f"format {fmt!r} is not emulated")
    if definition.get("multi") or definition.get("includeAll"):
        return ",".join(_quote(v) for v in values)
    return ",".join(v.replace("'", "''") for v in values)


def replace_variables(
    text: str, variables: Sequence[Mapping[str, Any]], values: Mapping[str, Sequence[str] | None]
) -> str:
    """Template variables replaced as Grafana's frontend does for a SQL data source."""
    defined = {v["name"]: v for v in variables}

    def one(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(3)
        if name.startswith("__"):
            return match.group(0)  # built-ins: the backend's job
        if name not in defined:
            raise KeyError(f"variable {name!r} is used but not defined")
        return _variable(defined[name], values[name], match.group(2))

    return _VARIABLE.sub(one, text)


def _utc(t: datetime) -> str:
    u = t.astimezone(UTC)
    return "'" + u.strftime("%Y-%m-%dT%H:%M:%S") + (f".{u.microsecond:06d}".rstrip("0") if
                                                    u.microsecond else "") + "Z'"  # fmt: skip


def parse_interval(text: str) -> timedelta:
    """An interval argument of ``$__timeGroup`` (``10m``, ``1d``)."""
    match = _INTERVAL.match(text.strip().strip("'"))
    if match is None:
        raise ValueError(f"bad interval {text!r}")
    return timedelta(milliseconds=int(match.group(1)) * _UNIT_MS[match.group(2)])


def _macro(name: str, args: list[str], request: Request) -> str:
    if name == "timeFilter":
        return f"{args[0]} BETWEEN {_utc(request.start)} AND {_utc(request.end)}"
    if name == "timeFrom":
        return _utc(request.start)
    if name == "timeTo":
        return _utc(request.end)
    if name in ("timeGroup", "timeGroupAlias"):
        seconds = parse_interval(args[1]).total_seconds()
        if request.timescaledb:
            group = f"time_bucket('{seconds:.0f}s',{args[0]})"
        else:
            group = f"floor(extract(epoch from {args[0]})/{seconds:g})*{seconds:g}"
        return group + (' AS "time"' if name == "timeGroupAlias" else "")
    raise ValueError(f"macro $__{name} is not emulated")


def expand(sql: str, variables: Sequence[Mapping[str, Any]], request: Request) -> str:
    """``sql`` as the database receives it from Grafana."""
    text = replace_variables(sql, variables, request.values)
    text = text.replace("$__interval_ms", str(request.interval_ms))
    text = text.replace("$__interval", interval_text(request.interval_ms))

    def one(match: re.Match[str]) -> str:
        args = [a.strip() for a in match.group(2).split(",")] if match.group(2).strip() else []
        return _macro(match.group(1), args, request)

    text = _MACRO.sub(one, text)
    if "$" in text.replace("$fn$", ""):
        leftover = re.findall(r"\$\w+", text)
        if leftover:
            raise ValueError(f"unexpanded {leftover} in {text}")
    return text
