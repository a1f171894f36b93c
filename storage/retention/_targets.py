"""What retention finds in the database: each covered relation, its kind and its children.

Relations are looked up at run time, never assumed: a rollup relation named in
``RETENTION_CLASSES`` may not exist yet, may be a plain table (PostgreSQL engine, or
TimescaleDB before its continuous aggregates), a range-partitioned table, a hypertable or
a continuous aggregate, whose rows live in its materialization hypertable.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum

from sqlalchemy import Connection, text

from storage.migrate import StorageEngine
from storage.retention import _sql as q
from storage.retention._sql import quote
from storage.schema import RETENTION_CLASSES, ROLLUP_TABLES, STORE_SUFFIX
from storage.schema._rollups import LEVEL_SECONDS

#: Relations pruned last in their class: a trace summary goes only once its spans have.
_LAST = ("traces",)
_TIME_TYPES = ("timestamp with time zone", "date")


class RelationKind(StrEnum):
    """How a relation stores its rows, as far as pruning cares."""

    MISSING = "missing"
    TABLE = "table"
    PARTITIONED = "partitioned"
    HYPERTABLE = "hypertable"
    CONTINUOUS_AGGREGATE = "continuous_aggregate"
    UNSUPPORTED = "unsupported"


@dataclass(frozen=True, slots=True)
class Target:
    """One relation to prune."""

    relation: str
    data_class: str
    time_column: str
    kind: RelationKind
    #: Where its rows are deleted (quoted, schema-qualified): the relation itself or, for
    #: a continuous aggregate, its materialization hypertable.
    rows_in: str = ""
    #: ``schema.name`` of the hypertable whose chunks hold the rows (TimescaleDB).
    hypertable: tuple[str, str] | None = None
    per_org: bool = True
    time_is_date: bool = False
    #: Why it is not pruned (missing, no such column, ...), or None.
    skip: str | None = None

    @property
    def width(self) -> timedelta:
        """How much time one row covers: a rollup bucket, a day, or nothing (raw rows)."""
        if self.time_is_date:
            return timedelta(days=1)
        declared = ROLLUP_TABLES.get(self.relation)  # the rollup declarations know the level
        if declared is None:
            return timedelta(0)
        return timedelta(seconds=LEVEL_SECONDS[declared.info["level"]])

    @property
    def has_children(self) -> bool:
        """Whether whole partitions or chunks can be dropped."""
        return self.kind in (
            RelationKind.PARTITIONED,
            RelationKind.HYPERTABLE,
            RelationKind.CONTINUOUS_AGGREGATE,
        )

    def cutoff_value(self, cutoff: datetime) -> datetime | date:
        """``cutoff`` as a parameter for the time column (rows before it go).

        A date column holds days starting at midnight UTC: day D starts before ``cutoff``
        exactly when D is before ``cutoff`` rounded up to a whole day.
        """
        if not self.time_is_date:
            return cutoff
        utc = cutoff.astimezone(UTC)
        day = utc.date()
        return (
            day
            if utc == datetime(day.year, day.month, day.day, tzinfo=UTC)
            else (day + timedelta(days=1))
        )


@dataclass(frozen=True, slots=True)
class Child:
    """A partition or chunk whose whole time range is ``[range_start, range_end)``."""

    name: str
    #: Its schema-qualified, quoted name (to lock it).
    qualified: str
    range_start: datetime
    range_end: datetime


def find_targets(conn: Connection, engine: StorageEngine | None) -> list[Target]:
    """Every relation of every retention class, as it exists now, in pruning order."""
    found = [
        _describe(conn, engine, data_class, relation, column)
        for data_class, relations in RETENTION_CLASSES.items()
        for relation, column in relations.items()
    ]
    return sorted(found, key=lambda t: t.relation in _LAST)


def _describe(
    conn: Connection, engine: StorageEngine | None, data_class: str, relation: str, column: str
) -> Target:
    target = Target(relation, data_class, column, RelationKind.MISSING)
    qualified = f"public.{quote(relation)}"
    row = conn.execute(text(q.DESCRIBE), {"rel": qualified, "col": column}).first()
    if row is None:
        return replace(target, skip="does not exist")
    if row.relkind == "v" and engine is not StorageEngine.TIMESCALE:
        # A folded rollup level (storage.ingest.folds): its rows are in its store table.
        store = f"public.{quote(relation + STORE_SUFFIX)}"
        found = conn.execute(text(q.DESCRIBE), {"rel": store, "col": column}).first()
        if found is not None:
            row, qualified = found, store
    kind = {"r": RelationKind.TABLE, "p": RelationKind.PARTITIONED}.get(
        row.relkind, RelationKind.UNSUPPORTED
    )
    target = replace(
        target, kind=kind, rows_in=qualified, per_org=row.per_org,
        time_is_date=row.time_type == "date",
    )  # fmt: skip
    if engine is StorageEngine.TIMESCALE:
        target = _timescale(conn, target)
    if target.kind is RelationKind.UNSUPPORTED:
        return replace(target, skip=f"a relation of kind {row.relkind!r}, not a table")
    if row.time_type not in _TIME_TYPES:
        return replace(target, skip=f"time column {column!r} is {row.time_type or 'missing'}")
    return target


def _timescale(conn: Connection, target: Target) -> Target:
    cagg = conn.execute(text(q.CAGG), {"name": target.relation}).first()
    if cagg is not None:
        return replace(
            target,
            kind=RelationKind.CONTINUOUS_AGGREGATE,
            rows_in=f"{quote(cagg.schema)}.{quote(cagg.name)}",
            hypertable=(cagg.schema, cagg.name),
        )
    if conn.execute(text(q.HYPERTABLE), {"name": target.relation}).first() is not None:
        return replace(target, kind=RelationKind.HYPERTABLE, hypertable=("public", target.relation))
    return target


def expired_children(conn: Connection, target: Target, before: datetime) -> list[Child]:
    """The partitions or chunks of ``target`` whose whole range ends by ``before``."""
    if target.kind is RelationKind.PARTITIONED:
        rows = conn.execute(text(q.PARTITIONS), {"rel": target.rows_in, "before": before}).all()
        return [Child(r.name, f"public.{quote(r.name)}", r.range_start, r.range_end) for r in rows]
    if target.hypertable is not None:
        schema, name = target.hypertable
        params = {"schema": schema, "name": name, "before": before}
        rows = conn.execute(text(q.CHUNKS), params).all()
        return [Child(r.name, r.name, r.range_start, r.range_end) for r in rows]
    return []
