"""The PostgreSQL engine's 1 min rollup rows as statement parameters (``storage.ingest.rollups``).

A family's rows travel as one array parameter per column of its temp table layout
(:data:`TEMP_COLUMNS`), turned back into rows by :func:`rows_sql`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import orjson

from storage.schema import FAMILIES, Family

__all__ = ["BASE_FAMILIES", "TEMP_COLUMNS", "rows_sql", "stage_params", "temp_columns"]


def temp_columns(family: Family) -> list[tuple[str, str]]:
    """(column, type) of the family's 1 min rows: bucket, org, dimensions, measures."""
    cols = [("bucket", "timestamptz")]
    if family.per_org:
        cols.append(("org_id", "uuid"))
    cols += [(d, family.dim_types.get(d, "text")) for d, _ in family.dims]
    types = {"double precision": "float8", "timestamp with time zone": "timestamptz"}
    types |= {"double precision[]": "float8[]", "bigint": "int8", "bigint[]": "int8[]"}
    cols += [(m.name, types.get(m.sql_type, m.sql_type)) for m in family.measures]
    return cols


#: Families the writer aggregates in Python (the others derive from these in SQL).
BASE_FAMILIES = tuple(f for f in FAMILIES if f.derived_from is None)
TEMP_COLUMNS = {f.name: temp_columns(f) for f in BASE_FAMILIES}

_EPOCH = "TIMESTAMPTZ '1970-01-01 00:00:00+00'"


def rows_sql(family: Family) -> str:
    """The family's 1 min rows, from one array parameter per column (temp table columns).

    Parameters instead of COPY: COPY cannot be pipelined (two round trips per family).
    Timestamps travel as Unix microseconds (exact: ``interval * float8`` is exact below
    2^53 us), arrays and JSON as their text form (``unnest`` would flatten nested arrays).
    """
    columns = TEMP_COLUMNS[family.name]
    params, values = [], []
    for i, (_, sql_type) in enumerate(columns):
        if sql_type == "timestamptz":
            params.append("%s::int8[]")
            values.append(f"{_EPOCH} + u.c{i} * INTERVAL '1 microsecond'")
        elif sql_type.endswith("[]") or sql_type == "jsonb":
            params.append("%s::text[]")
            values.append(f"u.c{i}::{sql_type}")
        else:
            params.append(f"%s::{sql_type}[]")
            values.append(f"u.c{i}")
    aliases = ", ".join(f"c{i}" for i in range(len(columns)))
    return f"SELECT {', '.join(values)} FROM unnest({', '.join(params)}) AS u({aliases})"


def _microseconds(value: int | None) -> int | None:
    return None if value is None else value // 1000  # as the COPY dumper (NsTime) did


def _array_text(value: Sequence[Any] | None) -> str | None:
    if value is None:
        return None
    return "{" + ",".join("NULL" if v is None else repr(v) for v in value) + "}"


def _json_text(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def _converter(sql_type: str) -> Callable[[Any], Any] | None:
    if sql_type == "timestamptz":
        return _microseconds
    if sql_type.endswith("[]"):
        return _array_text
    return _json_text if sql_type == "jsonb" else None


def stage_params(family: Family, rows: list[tuple[Any, ...]]) -> list[list[Any]]:
    """One list per temp column: the parameters of :func:`rows_sql`."""
    out: list[list[Any]] = []
    for (_, sql_type), column in zip(TEMP_COLUMNS[family.name], zip(*rows, strict=True),
                                     strict=True):  # fmt: skip
        convert = _converter(sql_type)
        out.append(list(column) if convert is None else [convert(v) for v in column])
    return out
