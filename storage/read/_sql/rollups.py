"""Named statements over the rollup relations, built once for every family and level.

``rollup_select`` is the one statement shape every rollup reader uses: the segments of a
range (``_common.segments``, or one level for a series) read as a ``UNION ALL`` of the
levels' relations, filtered, then grouped by dimensions (and a time step) with the
requested aggregates. Relations are named unqualified: a tenant's search path resolves
them to the ``tenant`` security-barrier views on TimescaleDB, everyone else to the tables.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    Select,
    Subquery,
    bindparam,
    case,
    cast,
    func,
    literal,
    select,
    union_all,
)
from sqlalchemy.sql.elements import KeyedColumnElement

from storage.read._common import EPOCH, LEVEL_SECONDS, Segment
from storage.schema import FAMILY_BY_NAME, MAX_BIGINT, ROLLUP_TABLES, Family

FilterOp = Literal["eq", "in", "not_in"]


@dataclass(frozen=True, slots=True)
class Filter:
    """``dim`` equals / is one of / is none of ``values``."""

    dim: str
    op: FilterOp
    values: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Agg:
    """An output column: an aggregate over the union's columns ``needs``."""

    name: str
    needs: tuple[str, ...]
    build: Callable[[Subquery], ColumnElement[Any]]
    #: For a quantile: (histogram column, q), so that a group of one rollup row can rank
    #: within that row's histogram instead of merging (much cheaper per group).
    quantile_of: tuple[str, float] | None = None


def total(column: str, name: str | None = None) -> Agg:
    """``sum(column)`` (0 when no rows); integer columns stay integers (not numeric),
    saturating at 2^63 - 1 like the rollups themselves (``storage.schema._rollups``):
    ``sum(bigint)`` is numeric, so only the cast could overflow, and it never sees more."""

    def build(r: Subquery) -> ColumnElement[Any]:
        summed: ColumnElement[Any] = func.sum(r.c[column])
        if isinstance(r.c[column].type, Integer):  # not LEAST: it would turn no rows into MAX
            summed = cast(case((summed > MAX_BIGINT, MAX_BIGINT), else_=summed), BigInteger)
        return func.coalesce(summed, 0)

    return Agg(name or column, (column,), build)


def lowest(column: str, name: str | None = None) -> Agg:
    """``min(column)``."""
    return Agg(name or column, (column,), lambda r: func.min(r.c[column]))


def highest(column: str, name: str | None = None) -> Agg:
    """``max(column)``."""
    return Agg(name or column, (column,), lambda r: func.max(r.c[column]))


def quantile(hist: str, q: float, name: str) -> Agg:
    """The ``q`` quantile of the merged histograms in ``hist`` (1 % relative error)."""
    return Agg(
        name,
        (hist,),
        lambda r: func.aeos_hist_quantile(func.aeos_hist_merge_agg(r.c[hist]), literal(q)),
        (hist, q),
    )


def red_aggs(quantiles: Sequence[int] = (50, 95, 99)) -> list[Agg]:
    """Requests, errors, duration sum/min/max and duration quantiles (RED families)."""
    out = [
        total("span_count"),
        total("error_count"),
        total("duration_sum_ms"),
        lowest("duration_min_ms"),
        highest("duration_max_ms"),
    ]
    out += [quantile("duration_hist", q / 100, f"duration_p{q}_ms") for q in quantiles]
    return out


def _condition(column: KeyedColumnElement[Any], f: Filter) -> ColumnElement[bool]:
    if f.op == "eq":
        equal: ColumnElement[bool] = column == f.values[0]
        return equal
    if f.op == "in":
        return column.in_(f.values)
    return column.not_in(f.values)


def rollup_select(
    family: str,
    parts: Sequence[Segment],
    aggs: Sequence[Agg],
    *,
    dims: Sequence[str] = (),
    filters: Sequence[Filter] = (),
    step: timedelta | None = None,
    order_by: Sequence[str] = (),
    limit: int | None = None,
) -> Select[Any]:
    """The grouped aggregates of ``family`` over ``parts`` (see the module docstring).

    With ``step`` the first output column is ``ts``, the step's start (buckets binned from
    the epoch); then ``dims`` in order, then ``aggs``.
    """
    fam = FAMILY_BY_NAME[family]
    if _one_row_per_group(fam, parts, dims, filters, step):
        aggs = [_stored(fam, a) for a in aggs]
    filter_dims = [f.dim for f in filters]
    needed = list(dict.fromkeys([*dims, *filter_dims, *(c for a in aggs for c in a.needs)]))
    pieces = []
    for seg in parts:
        table = ROLLUP_TABLES[fam.relation(seg.level)]
        conds = [table.c.bucket >= seg.lo, table.c.bucket < seg.hi]
        conds += [_condition(table.c[f.dim], f) for f in filters]
        pieces.append(select(table.c.bucket, *(table.c[c] for c in needed)).where(*conds))
    if not pieces:
        raise ValueError("no segments to read")
    union = pieces[0].subquery("r") if len(pieces) == 1 else union_all(*pieces).subquery("r")
    keys: list[ColumnElement[Any]] = []
    if step is not None:
        width: Any = bindparam("step_width", value=step)
        keys.append(func.date_bin(width, union.c.bucket, literal(EPOCH)).label("ts"))
    keys += [union.c[d] for d in dims]
    stmt = select(*keys, *(a.build(union).label(a.name) for a in aggs))
    if keys:
        stmt = stmt.group_by(*keys)
    if order_by:
        stmt = stmt.order_by(*(_order(o) for o in order_by))
    elif step is not None:
        stmt = stmt.order_by(keys[0])
    if limit is not None:
        stmt = stmt.limit(limit)
    return stmt


def _one_row_per_group(
    fam: Family,
    parts: Sequence[Segment],
    dims: Sequence[str],
    filters: Sequence[Filter],
    step: timedelta | None,
) -> bool:
    """Whether each output group is exactly one rollup row: a series at the level's own
    bucket width, grouped by (or pinned to one value of) every dimension of the key."""
    if step is None or len(parts) != 1 or step.total_seconds() != LEVEL_SECONDS[parts[0].level]:
        return False
    pinned = {f.dim for f in filters if f.op == "eq"} | set(dims)
    return all(d in pinned for d in fam.key if d not in ("org_id", "bucket"))


def _stored(fam: Family, agg: Agg) -> Agg:
    """A quantile of the group's one row, from that row's histogram ranked with its own
    count (``aeos_hist_quantile_n``, a few buckets read), instead of merging histograms.
    The same expression on both engines: PostgreSQL rollup tables store no quantiles
    (migration 0020: computing them at every upsert cost ingest a third of its rollup time)."""
    if agg.quantile_of is None:
        return agg
    hist, q = agg.quantile_of
    for quantiles in fam.quantiles:
        if quantiles.hist == hist:
            return Agg(agg.name, (hist, quantiles.count), _row_quantile(hist, quantiles.count, q))
    return agg


def _row_quantile(hist: str, count: str, q: float) -> Callable[[Subquery], ColumnElement[Any]]:
    def build(r: Subquery) -> ColumnElement[Any]:
        return func.max(func.aeos_hist_quantile_n(r.c[hist], r.c[count], literal(q)))

    return build


def _order(spec: str) -> Any:
    from sqlalchemy import desc, literal_column

    if spec.startswith("-"):
        return desc(literal_column(spec[1:]))
    return literal_column(spec)
