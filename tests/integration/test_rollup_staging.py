"""Rollup staging by array parameters stores exactly what a binary COPY of the rows stores.

The ingest writer (PostgreSQL engine) passes its 1 min rollup rows as one array parameter
per column, turned back into rows by ``unnest`` (``storage.ingest._rollup_params.rows_sql``,
used by both the one-statement merges and the temp-table staging), with timestamps as
microseconds and arrays and JSON as text. Here every base family's rows,
with awkward values (quotes, backslashes, non-ASCII, infinities, NaN, empty and NULL
arrays, nested JSON, zero bytes, sub-microsecond times), go both ways into the same
temporary table of a real server, and the two stored copies must be equal.
"""

from __future__ import annotations

import asyncio
import math
import uuid
from decimal import Decimal
from typing import Any

from psycopg import AsyncConnection

from storage.database import Database
from storage.ingest import _rollup_params as rp
from storage.ingest import _sql as q
from storage.ingest import rollups

NS = 1_764_633_600_123_456_789  # not on a microsecond: the staging truncates as COPY does
ORG = uuid.UUID(int=7)
TEXTS = ["", "it's", 'a "quoted" \\ back\\slash', "ünï ✓ {,}", "NULL"]


def _value(sql_type: str, i: int) -> Any:
    """The ``i``-th awkward value of ``sql_type`` (a temp table column type)."""
    values: dict[str, list[Any]] = {
        "timestamptz": [q.NsTime(NS + i * 60 * 10**9 + i)],
        "uuid": [ORG, uuid.UUID(int=2**128 - 1 - i)],
        "text": TEXTS,
        "int8": [0, 1, 2**63 - 1, 12345],
        "float8": [0.1, math.inf, -math.inf, math.nan, 1e300, -0.0, 5e-324, None],
        "numeric": [Decimal("0"), Decimal("0.000000123456789"), Decimal("12345678901234.5")],
        "int8[]": [[], [1, 2**63 - 1], None, [(5 << 20) | 3]],
        "float8[]": [[0.5, math.inf], [], None, [1e-300, -2.5, math.nan]],
        "jsonb": [{}, {"k": "v'\"\\", "ü": [1, 2.5, None, True]}, {"n": {"m": []}}],
        "bytea": [b"\x00" * 16, bytes(range(16)), b"'\\"],
    }
    options = values[sql_type]
    return options[i % len(options)]


def _rows(family_name: str, n: int) -> list[tuple[Any, ...]]:
    columns = rp.TEMP_COLUMNS[family_name]
    return [tuple(_value(t, i + j) for j, (_, t) in enumerate(columns)) for i in range(n)]


async def _stored(conn: AsyncConnection[Any], table: str) -> list[tuple[Any, ...]]:
    cur = await conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2, 3")
    rows = await cur.fetchall()
    return [tuple(_comparable(v) for v in r) for r in rows]


def _comparable(value: Any) -> Any:
    """NaN never equals itself: compared by its text."""
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    return value


async def _both_ways(conninfo: str) -> dict[str, tuple[list[Any], list[Any]]]:
    conn = await AsyncConnection.connect(conninfo, autocommit=True)
    try:
        await conn.execute(q.SET_INGEST_ROLE)
        q.configure(conn)
        await rollups.create_temp_tables(conn, rp.BASE_FAMILIES)
        out = {}
        for family in rp.BASE_FAMILIES:
            rows = _rows(family.name, 9)
            table = rollups._temp(family)
            async with conn.transaction():
                await conn.execute(rollups.STAGE[family.name], rp.stage_params(family, rows))
                staged = await _stored(conn, table)
            async with conn.transaction():
                await q.copy_rows(conn, table, rp.TEMP_COLUMNS[family.name], rows)
                copied = await _stored(conn, table)
            out[family.name] = (staged, copied)
        return out
    finally:
        await conn.close()


def test_staged_rows_equal_copied_rows(database: Database) -> None:
    results = asyncio.run(_both_ways(database.app_conninfo()))
    assert set(results) == {f.name for f in rp.BASE_FAMILIES}
    for name, (staged, copied) in results.items():
        assert len(copied) == 9, name
        assert staged == copied, name


def test_arrays_stage_as_their_text_form() -> None:
    """Arrays travel as PostgreSQL array literals, ``repr`` of each element (exact)."""
    family = next(f for f in rp.BASE_FAMILIES if f.name == "metric_rollup")
    rows = [tuple(_value(t, 0) for _, t in rp.TEMP_COLUMNS[family.name])]
    params = rp.stage_params(family, rows)
    bounds = [c for c, _ in rp.TEMP_COLUMNS[family.name]].index("explicit_bounds")
    assert params[bounds] == ["{0.5,inf}"]
    assert rp._array_text([math.nan, None, -math.inf, 0.1]) == "{nan,NULL,-inf,0.1}"
    assert rp._array_text(None) is None
