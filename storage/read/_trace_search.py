"""The SQL conditions of a trace search (fragments of ``storage.read._traces_sql``)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from storage.errors import InvalidInputError
from storage.read import _traces_sql as sql

if TYPE_CHECKING:
    from storage.read.traces import SpanFilter, TraceQuery

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Attribute keys answered from typed span columns (the receiver maps them there), then
# the keys of Jaeger's OTLP conventions (span.kind, otel.status_code, error, ...).
_COLUMN_KEYS = {
    "service.name": "service_name",
    "mosaic.task_run.id": "task_run_id",
    "aeos.agent.id": "agent_id",
    "aeos.fleet.id": "fleet_id",
    "aeos.subsystem": "subsystem",
    "gen_ai.operation.name": "gen_ai_operation",
    "gen_ai.provider.name": "gen_ai_provider",
    "gen_ai.system": "gen_ai_provider",
    "otel.scope.name": "scope_name",
    "otel.status_description": "status_message",
}
SPAN_KINDS = {"unspecified": 0, "internal": 1, "server": 2, "client": 3, "producer": 4,
              "consumer": 5}  # fmt: skip
STATUS_CODES = {"unset": 0, "ok": 1, "error": 2}


def at_us(us: int) -> datetime:
    """Epoch microseconds as an aware datetime."""
    return _EPOCH + timedelta(microseconds=us)


def trace_conditions(query: TraceQuery) -> tuple[list[str], dict[str, Any]]:
    where: list[str] = []
    params: dict[str, Any] = {}
    c = sql.TRACE_CONDITIONS
    if query.status is not None:
        where.append(c["error"] if query.status == "error" else c["no_error"])
    if query.min_duration_us is not None:
        where.append(c["min_duration"])
        params["min_trace_ms"] = query.min_duration_us / 1000
    if query.max_duration_us is not None:
        where.append(c["max_duration"])
        params["max_trace_ms"] = query.max_duration_us / 1000
    if query.org_id is not None:
        where.append(c["org"])
        params["org_id"] = query.org_id
    if query.before is not None:
        where.append(c["before"])
        params.update(before_start=at_us(query.before[0]), before_id=query.before[1])
    return where, params


def span_conditions(f: SpanFilter, org_id: uuid.UUID | None) -> tuple[list[str], dict[str, Any]]:
    c = sql.SPAN_CONDITIONS
    where: list[str] = []
    params: dict[str, Any] = {}
    for name, value, key, convert in (
        ("service", f.service, "service", None),
        ("operation", f.operation, "operation", None),
        ("min_duration", f.min_duration_us, "min_span_ms", 1000),
        ("max_duration", f.max_duration_us, "max_span_ms", 1000),
        ("org", org_id, "org_id", None),
    ):
        if value:
            where.append(c[name])
            params[key] = value / convert if convert and isinstance(value, int) else value
    for i, (key, value) in enumerate(f.attributes):
        fragment, param = attribute_condition(i, key, value)
        where.append(fragment)
        params.update(param)
    return where, params


def attribute_condition(i: int, key: str, value: str) -> tuple[str, dict[str, Any]]:
    """The SQL condition for attribute ``key`` = ``value`` (condition number ``i``).

    Mapped keys read their typed column; Jaeger's tag conventions (``error``,
    ``span.kind``, ``otel.status_code``) read kind and status; any other key matches the
    span's or its resource's attribute by its text (so ``200`` matches the integer 200).

    Raises:
        InvalidInputError: a value that the convention does not allow.
    """
    v = f"v{i}"
    lowered = value.strip().lower()
    if key == "error":
        if lowered not in ("true", "false"):
            raise InvalidInputError(f"tag error must be true or false, not {value!r}")
        return ("s.status_code = 2" if lowered == "true" else "s.status_code <> 2"), {}
    if key in ("span.kind", "otel.status_code"):
        table, column = (
            (SPAN_KINDS, "kind") if key == "span.kind" else (STATUS_CODES, "status_code")
        )
        if lowered not in table:
            raise InvalidInputError(f"tag {key} must be one of {', '.join(table)}, not {value!r}")
        return f"s.{column} = :{v}", {v: table[lowered]}
    mapped = _COLUMN_KEYS.get(key)
    if mapped is not None:
        return sql.COLUMN_CONDITION.format(column=mapped, i=i), {v: value}
    return sql.ATTRIBUTE_CONDITION.format(i=i), {f"k{i}": key, v: value}
