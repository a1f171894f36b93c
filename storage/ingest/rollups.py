"""Rollup maintenance on both engines, from the declarations in ``storage.schema._rollups``.

TimescaleDB engine (:func:`timescale_ddl`): each level is a continuous aggregate with
real-time aggregation on; 1 min reads the raw hypertable (or, for ``org_red`` and
``platform_red``, ``span_red_1m``), 1 h reads 1 min, 1 day reads 1 h. Refresh policies
keep them current, and a columnstore policy (segmented by ``org_id``) compresses them.
The 1 min refresh window (20 h) is shorter than the sampling window (24 h) and every
level's window is shorter than the retention of the level it reads, so deleting raw
rows (sampling, retention) never reaches a rollup. The price: a span that arrives more
than 20 h late is stored but not counted by the Timescale rollups (it is on PostgreSQL).

PostgreSQL engine (:func:`queue_rollups`): rollups are tables maintained by the ingest
writer in its own transaction. The writer aggregates the rows it actually inserted (so a
retried export counts once) into 1 min rows in Python (``storage.ingest._rollup_rows``),
and one statement per family (:data:`MERGE`) takes them as array parameters and merges
them into every level and every derived family: a ``WITH`` of the rows, then one
``INSERT ... SELECT [... GROUP BY] ... ON CONFLICT DO UPDATE`` per level and family, as
data-modifying CTEs. All of it is pipelined with the transaction's COMMIT (one round trip).
Statements run in a fixed order and each locks its rows in key order, so concurrent
writers never deadlock. Families with a non-additive measure
(``damn_heartbeats.active_minutes``) recompute their coarser buckets from the level below,
which a CTE of the same statement would not see updated: they stage their rows in a
temporary table and run one statement per level, under a per-org advisory lock.

Both paths compute the same values: the Python aggregation mirrors the SQL expressions of
the declarations (tests compare the engines and recompute every rollup from raw rows).

Overflow, both engines: sums saturate at ``2^63 - 1`` instead of failing
(``storage.schema._rollups`` says which and why it composes). On PostgreSQL the writer
saturates in Python while aggregating a batch and in SQL when merging into stored rows
and coarser levels; on TimescaleDB the aggregates sum in ``numeric`` and cap before the
cast to ``bigint`` (migration 0017), so a refresh never fails on accepted input. Histogram
bucket counts are added by ``aeos_array_add``, saturating too. Double-precision sums cannot
overflow: translation bounds every summed double (``otlp_receiver._translate``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from psycopg import AsyncConnection

from storage import hist
from storage.ingest._rollup_params import (
    BASE_FAMILIES,
    TEMP_COLUMNS,
    rows_sql,
    stage_params,
    temp_columns,
)
from storage.ingest._sql import ROLLUP_LOCK
from storage.ingest.folds import (
    FOLD_BY_RELATION,
    MARK_FUNCTION,
    ORIGIN,
    grouped_select,
    view_sql,
    watermark_sql,
)
from storage.schema import (
    FAMILIES,
    LEVEL_INTERVALS,
    MAX_BIGINT,
    ROLLUP_LEVELS,
    Family,
    Measure,
)

#: Continuous aggregate refresh policies per level: (start_offset, end_offset, every).
#: How far back the 1 min aggregates re-read raw rows: deleting raw rows older than this
#: (sampling, retention) cannot change a rollup.
RAW_REFRESH_WINDOW = timedelta(hours=20)
REFRESH_POLICIES = {
    "1m": (f"{RAW_REFRESH_WINDOW.total_seconds() / 3600:g} hours", "1 minute", "1 minute"),
    "1h": ("3 days", "1 hour", "10 minutes"),
    "1d": ("7 days", "1 day", "1 hour"),
    "cost_daily": ("30 days", "1 hour", "30 minutes"),
}
#: Every refresh policy refreshes its window in one pass (``buckets_per_batch => 0``):
#: TimescaleDB 2.19-2.28 refresh in batches by default, and skip a bucket whose only
#: invalidated row lies exactly on a batch boundary (timescale/timescaledb#10221, fixed in
#: 2.29; 2.28 is the last release for PostgreSQL 15). Migration 0018.
#: Columnstore (compression) after this age: always older than the refresh window.
COLUMNSTORE_AFTER = {"1m": "2 days", "1h": "7 days", "1d": "30 days", "cost_daily": "60 days"}
RAW_COLUMNSTORE = {
    "spans": ("start_time", "2 days"),
    "events": ("time", "2 days"),
    "metric_points": ("time", "2 days"),
    "cost_line_items": ("time", "14 days"),
    "alert_evaluations": ("time", "14 days"),
}


def _bucket(level: str, column: str) -> str:
    return f"time_bucket('{LEVEL_INTERVALS[level]}', {column})"


def _first_level_source(family: Family) -> tuple[str, bool]:
    """(relation the first level reads, whether it reads raw rows)."""
    if family.derived_from:
        return f"{family.derived_from}_1m", False
    return family.source, True


def cagg_select(family: Family, level: str) -> str:
    """The SELECT of ``family``'s continuous aggregate at ``level``."""
    first = level == family.levels[0]
    if first:
        source, raw = _first_level_source(family)
        time_col = family.time if raw else "bucket"
    else:
        source, raw = family.relation(ROLLUP_LEVELS[ROLLUP_LEVELS.index(level) - 1]), False
        time_col = "bucket"
    bucket = _bucket(level, time_col)
    cols = [f"{bucket} AS bucket"]
    group = [bucket]
    if family.per_org:
        cols.append("org_id")
        group.append("org_id")
    for dim, expr in family.dims:
        expr = expr if raw else dim
        cols.append(f"{expr} AS {dim}")
        group.append(expr)
    aggs: dict[str, str] = {}
    for m in family.measures:
        aggs[m.name] = m.raw if raw else m.merge_sql()
        cols.append(f"{aggs[m.name]} AS {m.name}")
    for quantiles in family.quantiles:
        for column, q in quantiles.columns():
            cols.append(f"aeos_hist_quantile({aggs[quantiles.hist]}, {q}) AS {column}")
    where = f" WHERE {family.where}" if raw and family.where else ""
    return f"SELECT {', '.join(cols)} FROM {source}{where} GROUP BY {', '.join(group)}"


def timescale_ddl() -> list[str]:
    """Statements creating every rollup as a continuous aggregate, with its policies."""
    out: list[str] = []
    for family in _creation_order():
        for level in family.levels:
            name = family.relation(level)
            out.append(
                f"CREATE MATERIALIZED VIEW {name} WITH (timescaledb.continuous, "
                f"timescaledb.materialized_only = false) AS {cagg_select(family, level)} "
                "WITH NO DATA"
            )
            policy = "cost_daily" if family.name == "cost_daily" else level
            start, end, every = REFRESH_POLICIES[policy]
            out.append(
                f"SELECT add_continuous_aggregate_policy('{name}', start_offset => "
                f"INTERVAL '{start}', end_offset => INTERVAL '{end}', "
                f"schedule_interval => INTERVAL '{every}', buckets_per_batch => 0)"
            )  # one pass, not batches: see migration 0018
            segment = ", timescaledb.segmentby = 'org_id'" if family.per_org else ""
            out.append(
                f"ALTER MATERIALIZED VIEW {name} SET "
                f"(timescaledb.enable_columnstore = true{segment})"
            )
            out.append(
                f"CALL add_columnstore_policy('{name}', after => "
                f"INTERVAL '{COLUMNSTORE_AFTER[policy]}')"
            )
    for table, (time_col, after) in RAW_COLUMNSTORE.items():
        out.append(
            f"ALTER TABLE {table} SET (timescaledb.enable_columnstore = true, "
            f"timescaledb.segmentby = 'org_id', timescaledb.orderby = '{time_col} DESC')"
        )
        out.append(f"CALL add_columnstore_policy('{table}', after => INTERVAL '{after}')")
    return out


def _creation_order() -> list[Family]:
    return sorted(FAMILIES, key=lambda f: f.derived_from is not None)


# --- PostgreSQL engine: maintenance at ingest ----------------------------------------


def _temp(family: Family) -> str:
    return f"_r_{family.name}"


#: Families staged in a temporary table (the others need none: :data:`MERGE`). Only these:
#: at COMMIT, PostgreSQL truncates every ``ON COMMIT DELETE ROWS`` table of a session that
#: touched any, a file operation per table inside the commit (seen as ``DataFileTruncate``
#: waits on the ingest benchmark when every family had one).
STAGED_FAMILIES = tuple(f for f in BASE_FAMILIES if f.recompute)


async def create_temp_tables(
    conn: AsyncConnection[Any], families: Sequence[Family] = STAGED_FAMILIES
) -> None:
    """This connection's staging tables for 1 min rows (once, after connecting)."""
    for family in families:
        body = ", ".join(f"{c} {t}" for c, t in TEMP_COLUMNS[family.name])
        await conn.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {_temp(family)} ({body}) ON COMMIT DELETE ROWS"
        )


def _sum_upsert(c: str) -> str:
    return (
        f"CASE WHEN t.{c} IS NULL THEN EXCLUDED.{c} WHEN EXCLUDED.{c} IS NULL THEN t.{c} "
        f"ELSE t.{c} + EXCLUDED.{c} END"
    )


def _upsert(
    target: Family, level: str, source: str, *, recompute: bool = False, direct: bool = False,
    folded: bool = True,
) -> str:  # fmt: skip
    """INSERT ... SELECT ... ON CONFLICT merging ``source`` rows into ``target`` at ``level``.

    ``direct``: the source rows are already one per key of ``level`` (no GROUP BY). A
    folded level (``storage.ingest.folds``) gets only the rows before its watermark (late
    ones), into its store table; unless ``folded`` is false (a schema older than migration
    0021, which folds nothing: every level is a table, merged into directly).
    """
    folded = folded and target.folded(level)
    name = target.rows_of(level) if folded else target.relation(level)
    if direct:
        columns = [c for c, _ in temp_columns(target)]
        sets = ", ".join(f"{m.name} = {_upsert_expr(m)}" for m in target.measures)
        return (
            f"INSERT INTO {name} AS t ({', '.join(columns)}) SELECT "
            f"{', '.join('s.' + c for c in columns)} FROM {source} "
            f"ORDER BY {', '.join('s.' + c for c in target.key)} "
            f"ON CONFLICT ({', '.join(target.key)}) DO UPDATE SET {sets}"
        )
    late = f"s.bucket < {watermark_sql(target.relation(level))}" if folded else ""
    cols = ["bucket", *(["org_id"] if target.per_org else []), *(d for d, _ in target.dims)]
    cols += [m.name for m in target.measures]
    assignments = [
        f"{m.name} = {f'EXCLUDED.{m.name}' if recompute else _upsert_expr(m)}"
        for m in target.measures
    ]
    order = ", ".join(str(i + 1) for i in range(len(target.key)))
    return (
        f"INSERT INTO {name} AS t ({', '.join(cols)}) "
        f"{grouped_select(target, level, source, late)} ORDER BY {order} "
        f"ON CONFLICT ({', '.join(target.key)}) DO UPDATE SET {', '.join(assignments)}"
    )


def _upsert_expr(m: Measure) -> str:
    if m.merge == "sum" and m.sql_type != "bigint":  # nullable sums (no value: NULL)
        return _sum_upsert(m.name)
    if m.merge == "sum":  # saturating: counts are never negative, so MAX - x cannot overflow
        c = m.name
        return (
            f"CASE WHEN t.{c} <= {MAX_BIGINT} - EXCLUDED.{c} THEN t.{c} + EXCLUDED.{c} "
            f"ELSE {MAX_BIGINT} END"
        )
    return m.upsert_sql()


def _recompute_source(family: Family, level: str) -> str:
    """Rows of the level below for the buckets of ``level`` this write touched."""
    below = family.relation(ROLLUP_LEVELS[ROLLUP_LEVELS.index(level) - 1])
    interval = f"INTERVAL '{LEVEL_INTERVALS[level]}'"
    dims = [d for d, _ in family.dims]
    touched = ", ".join(["org_id", *dims])
    on = " AND ".join(f"m.{c} = a.{c}" for c in ["org_id", *dims])
    return (
        f"(SELECT m.* FROM {below} AS m JOIN (SELECT DISTINCT {touched}, "
        f"date_bin({interval}, bucket, {ORIGIN}) AS b FROM {_temp(family)}) AS a "
        f"ON {on} AND m.bucket >= a.b AND m.bucket < a.b + {interval}) AS s"
    )


def _statements(family: Family, source: str, folded: bool = True) -> list[str]:
    """The family's upserts, in order, reading its 1 min rows from ``source`` (``... AS s``)."""
    out: list[str] = []
    for i, level in enumerate(family.levels):
        if i == 0:
            out.append(_upsert(family, level, source, direct=True))
        elif family.recompute:
            out.append(_upsert(family, level, _recompute_source(family, level), recompute=True))
        else:
            out.append(_upsert(family, level, source, folded=folded))
    for derived in FAMILIES:
        if derived.derived_from == family.name:
            out.extend(_upsert(derived, lv, source, folded=folded) for lv in derived.levels)
    return out


STATEMENTS = {
    folded: {f.name: _statements(f, f"{_temp(f)} AS s", folded) for f in STAGED_FAMILIES}
    for folded in (True, False)
}


async def queue_rollups(
    conn: AsyncConnection[Any], rows: dict[str, list[tuple[Any, ...]]], folded: bool = True
) -> None:
    """Sends the statements merging ``rows`` into every rollup table, in pipeline mode.

    The caller holds ``conn.pipeline()`` open and queues its COMMIT after these, so that the
    staging of 1 min rows, the advisory locks, every upsert and the commit cost one round
    trip: the upserts lock the most contended rows of the transaction (every writer updates
    the current minute's), and no lock then waits on this process's event loop. ``folded``:
    the schema has ``rollup_folds`` (migration 0021 and later).
    """
    for family in BASE_FAMILIES:
        family_rows = rows.get(family.name)
        if not family_rows:
            continue  # no rows: every statement of the family would touch no row
        params = stage_params(family, family_rows)
        if not family.recompute:
            await conn.execute(MERGE[folded][family.name], params)
            continue
        await conn.execute(STAGE[family.name], params)
        orgs = sorted({r[1] for r in family_rows})
        await conn.execute(ROLLUP_LOCK, (family.name, orgs))
        for statement in STATEMENTS[folded][family.name]:
            await conn.execute(statement)


def _stage_sql(family: Family) -> str:
    """INSERT of the family's 1 min rows into its temp table."""
    names = ", ".join(c for c, _ in TEMP_COLUMNS[family.name])
    return f"INSERT INTO {_temp(family)} ({names}) {rows_sql(family)}"


def _merge_sql(family: Family, folded: bool) -> str:
    """The family's rows and every upsert of them, as one statement.

    One statement instead of a staging INSERT and one per level and derived family
    (e.g. 10 for ``span_red``): each statement has a fixed cost (parse of its bind, plan
    cache, executor start and end), which was most of the rollups' cost per commit.
    The upserts are data-modifying CTEs: each runs once, in the same order in every
    writer, and sees the rows as they were before the statement (none reads another's).
    """
    names = ", ".join(c for c, _ in TEMP_COLUMNS[family.name])
    upserts = [f"u{i} AS ({u})" for i, u in enumerate(_statements(family, "s AS s", folded))]
    rows = f"s ({names}) AS MATERIALIZED ({rows_sql(family)})"
    return f"WITH {rows}, {', '.join(upserts)} SELECT 1"


STAGE = {f.name: _stage_sql(f) for f in BASE_FAMILIES}
MERGE = {
    folded: {f.name: _merge_sql(f, folded) for f in BASE_FAMILIES if not f.recompute}
    for folded in (True, False)
}


def cagg_refresh_order() -> list[str]:
    """Continuous aggregates in an order where each comes after the relation it reads."""
    return [f.relation(lv) for lv in ROLLUP_LEVELS for f in _creation_order() if lv in f.levels]


def postgres_ddl() -> list[str]:
    """Statements creating every rollup as a table, or a folded level as its store table
    and its view (PostgreSQL engine; ``storage.ingest.folds``)."""
    from sqlalchemy import MetaData
    from sqlalchemy.dialects import postgresql
    from sqlalchemy.schema import CreateTable

    from storage.schema import ROLLUP_TABLES, rollup_folds

    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    out: list[str] = [str(CreateTable(rollup_folds).compile(dialect=dialect)).strip(),
                      MARK_FUNCTION]  # fmt: skip
    views: list[str] = []
    for name, table in ROLLUP_TABLES.items():
        comment = (table.comment or "").replace("'", "''")
        fold = FOLD_BY_RELATION.get(name)
        if fold is not None:
            table = table.to_metadata(MetaData(naming_convention=table.metadata.naming_convention),
                                      name=fold.store)  # fmt: skip
            views += [view_sql(fold), f"COMMENT ON VIEW {name} IS '{comment}'"]
        out.append(str(CreateTable(table).compile(dialect=dialect)).strip())
        out.append(f"COMMENT ON TABLE {table.name} IS '{comment}'")
    return out + views


def declared_ddl() -> dict[str, Any]:
    """What the declarations create, per engine (migration 0006 holds a frozen copy)."""
    from storage.schema import ROLLUP_TABLES

    return {
        "functions": hist.SQL_FUNCTIONS,
        "postgres": postgres_ddl(),
        "timescale": timescale_ddl(),
        "relations": {
            name: {"per_org": "org_id" in table.c, "comment": table.comment}
            for name, table in ROLLUP_TABLES.items()
        },
    }
