"""The general metrics query over every rollup family (``/v1/query``).

A query names a family, measures (``agg(field)``: count, sum, avg, min, max, rate,
p50/p95/p99 where the field has a histogram), dimensions to group by, filters (eq, in,
not in) on the family's dimensions, a range and optionally a step:

- with a step, the answer is a series read from ONE level: the coarsest whose bucket
  divides the step and which the org's retention still holds at the (step-aligned)
  start; the answer names it;
- without a step, one row per group over the whole range, cut into day / hour / minute
  buckets (exact to the minute, ``storage.read._common``); the answer names the levels.

``cost_daily`` has only the 1-day level. Rates are per second of the step (series) or of
the range read (breakdowns). At most ``MAX_ROWS`` rows: more is refused as too broad.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from storage.errors import InvalidInputError
from storage.read._common import (
    Availability,
    QueryTooBroadError,
    Segment,
    check_span,
    coverage,
    segments,
    series_plan,
)
from storage.read._sql.query import AGGREGATIONS, CATALOGUE, FamilySpec, agg_for
from storage.read._sql.rollups import Filter, rollup_select

MAX_ROWS = 10_000
MAX_RANGE = timedelta(days=400)
MAX_MEASURES = 20
_NEVER = datetime.max.replace(tzinfo=UTC)

__all__ = ["CATALOGUE", "Filter", "Measure", "MetricsQuery", "QueryResult", "run_query"]


@dataclass(frozen=True, slots=True)
class Measure:
    """``aggregation(field)``."""

    field: str
    aggregation: str

    @property
    def name(self) -> str:
        """The output column: ``p95(duration_ms)``."""
        return f"{self.aggregation}({self.field})"


@dataclass(frozen=True, slots=True)
class MetricsQuery:
    """A metrics query (see the module docstring)."""

    family: str
    measures: tuple[Measure, ...]
    start: datetime
    end: datetime
    group_by: tuple[str, ...] = ()
    filters: tuple[Filter, ...] = ()
    step: timedelta | None = None


@dataclass(frozen=True, slots=True)
class QueryResult:
    """Rows (``t`` first for a series, then the group-by dims, then the measures)."""

    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    levels: tuple[str, ...]
    start: datetime
    end: datetime
    step: timedelta | None


def _spec(q: MetricsQuery) -> FamilySpec:
    spec = CATALOGUE.get(q.family)
    if spec is None:
        raise InvalidInputError(f"family: unknown {q.family!r}; use one of {', '.join(CATALOGUE)}")
    if not q.measures or len(q.measures) > MAX_MEASURES:
        raise InvalidInputError(f"measure: give 1 to {MAX_MEASURES} measures")
    for m in q.measures:
        f = spec.fields.get(m.field)
        if f is None:
            raise InvalidInputError(
                f"measure: {q.family} has no field {m.field!r}; use {', '.join(spec.fields)}"
            )
        if m.aggregation not in f.aggregations():
            raise InvalidInputError(
                f"measure: {m.name} is not available; {m.field} supports "
                f"{', '.join(f.aggregations())} (of {', '.join(AGGREGATIONS)})"
            )
    for d in (*q.group_by, *(f.dim for f in q.filters)):
        if d not in spec.dims:
            dims = ", ".join(spec.dims) or "none"
            raise InvalidInputError(f"{q.family} has no dimension {d!r}; its dimensions: {dims}")
    for flt in q.filters:
        if not flt.values or (flt.op == "eq" and len(flt.values) != 1):
            need = "one value" if flt.op == "eq" else "values"
            raise InvalidInputError(f"filter on {flt.dim}: {flt.op} needs {need}")
    pinned = {flt.dim for flt in q.filters if flt.op != "not_in"}
    missing = [d for d in spec.requires if d not in pinned]
    if missing:
        raise InvalidInputError(f"{q.family} needs a filter on {missing[0]} (eq or in)")
    return spec


def _availability(spec: FamilySpec, available: Availability) -> Availability:
    """Levels the family does not have count as holding nothing."""
    earliest = {
        lv: (available.earliest.get(lv) if lv in spec.levels else _NEVER)
        for lv in ("1m", "1h", "1d")
    }
    return Availability(earliest)


def run_query(conn: Connection, q: MetricsQuery, *, available: Availability) -> QueryResult:
    """Runs ``q`` as the current tenant.

    Raises:
        InvalidInputError: an unknown family, field, aggregation or dimension, a filter
            without values, or a step no level can serve.
        QueryTooBroadError: a range over 400 days, or more than ``MAX_ROWS`` rows.
    """
    check_span(q.start, q.end, MAX_RANGE, "query")
    spec = _spec(q)
    avail = _availability(spec, available)
    if q.step is not None:
        plan = series_plan(q.start, q.end, q.step, avail)
        parts: Sequence[Segment] = [plan.segment()]
        levels: tuple[str, ...] = (plan.level,)
        lo, hi, seconds = plan.start, plan.end, q.step.total_seconds()
    else:
        parts = segments(q.start, q.end, avail)
        cov = coverage(parts)
        levels, lo, hi = cov.levels, cov.start, cov.end
        seconds = (hi - lo).total_seconds()
    aggs = [agg_for(spec.fields[m.field], m.aggregation, m.name, seconds) for m in q.measures]
    stmt = rollup_select(
        q.family,
        parts,
        aggs,
        dims=list(q.group_by),
        filters=list(q.filters),
        step=q.step,
        limit=MAX_ROWS + 1,
    )
    if q.step is not None:
        stmt = stmt.order_by(None).order_by("ts", *q.group_by)
    elif q.group_by:
        stmt = stmt.order_by(*q.group_by)
    rows = conn.execute(stmt).all()
    if len(rows) > MAX_ROWS:
        raise QueryTooBroadError(
            f"query: more than {MAX_ROWS} rows; filter, group by fewer dimensions or use a "
            "larger step"
        )
    columns = (*(("t",) if q.step is not None else ()), *q.group_by, *(m.name for m in q.measures))
    return QueryResult(columns, tuple(tuple(r) for r in rows), levels, lo, hi, q.step)
