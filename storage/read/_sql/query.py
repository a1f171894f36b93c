"""Named statements of the general metrics query: the catalogue of what each rollup
family offers (dimensions, fields and their aggregations) as ``rollups.Agg`` builders."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Double, Subquery, cast, func, literal

from storage.read._sql.rollups import Agg, highest, lowest, quantile, total

COUNTER_AGGS = ("count", "sum", "rate")
AGGREGATIONS = ("count", "sum", "avg", "min", "max", "rate", "p50", "p95", "p99")


@dataclass(frozen=True, slots=True)
class Field:
    """A queryable field: the rollup columns behind each aggregation it supports."""

    count: str | None = None  # column counting observations
    sum: str | None = None
    min: str | None = None
    max: str | None = None
    hist: str | None = None
    quantiles: tuple[str, ...] = ()

    def aggregations(self) -> tuple[str, ...]:
        """The aggregations this field answers."""
        out = [a for a in ("count",) if self.count]
        out += ["sum", "rate"] if self.sum else []
        out += ["avg"] if self.sum and self.count else []
        out += [a for a, c in (("min", self.min), ("max", self.max)) if c]
        return (*out, *self.quantiles)


def counter(column: str) -> Field:
    """A counter: count and sum are its total, rate its total per second."""
    return Field(count=column, sum=column)


@dataclass(frozen=True, slots=True)
class FamilySpec:
    """What one family offers to ``/v1/query``."""

    dims: tuple[str, ...]
    fields: Mapping[str, Field]
    levels: tuple[str, ...] = ("1m", "1h", "1d")
    requires: tuple[str, ...] = field(default=())  # dims a filter must pin


_DURATION = Field(
    "span_count",
    "duration_sum_ms",
    "duration_min_ms",
    "duration_max_ms",
    "duration_hist",
    ("p50", "p95", "p99"),
)
_RED = {"spans": counter("span_count"), "errors": counter("error_count"), "duration_ms": _DURATION}

CATALOGUE: Mapping[str, FamilySpec] = {
    "span_red": FamilySpec(("subsystem", "service_name", "operation", "agent_id"), _RED),
    "org_red": FamilySpec((), _RED),
    "uce_ops": FamilySpec(
        ("agent_id", "operation"),
        {
            "ops": counter("op_count"),
            "errors": counter("error_count"),
            "cache_hits": counter("cache_hits"),
            "cache_lookups": counter("cache_lookups"),
            "context_size": Field(
                "context_size_count",
                "context_size_sum",
                None,
                "context_size_max",
                "context_size_hist",
                ("p50", "p95"),
            ),
        },
    ),
    "mosaic_routes": FamilySpec(
        ("route", "outcome"),
        {
            "decisions": counter("decisions"),
            "successes": counter("successes"),
            "failures": counter("failures"),
        },
    ),
    "mosaic_handoffs": FamilySpec(
        ("from_agent", "to_agent"),
        {
            "handoffs": counter("handoffs"),
            "failures": counter("failures"),
        },
    ),
    "damn_heartbeats": FamilySpec(
        ("agent_id", "status"),
        {
            "heartbeats": counter("heartbeats"),
            "active_minutes": counter("active_minutes"),
        },
    ),
    "metric_rollup": FamilySpec(
        ("metric", "service_name", "agent_id", "kind", "unit"),
        {
            "value": Field("count", "sum", "min", "max"),
            "points": counter("count"),
            "observations": counter("observations"),
        },
        requires=("metric",),
    ),
    "cost_daily": FamilySpec(
        ("provider", "model", "agent_id", "subsystem"),
        {
            "calls": counter("calls"),
            "cost_usd": counter("cost_usd"),
            "tokens_in": counter("tokens_in"),
            "tokens_out": counter("tokens_out"),
            "cache_read_tokens": counter("cache_read_tokens"),
            "cache_creation_tokens": counter("cache_creation_tokens"),
        },
        levels=("1d",),
    ),
}


def _avg(f: Field, name: str) -> Agg:
    assert f.sum
    assert f.count
    total_col, count_col = f.sum, f.count

    def build(r: Subquery) -> ColumnElement[Any]:
        return cast(func.sum(r.c[total_col]), Double) / func.nullif(func.sum(r.c[count_col]), 0)

    return Agg(name, (total_col, count_col), build)


def _rate(column: str, seconds: float, name: str) -> Agg:
    def build(r: Subquery) -> ColumnElement[Any]:
        return cast(func.coalesce(func.sum(r.c[column]), 0), Double) / literal(seconds)

    return Agg(name, (column,), build)


def agg_for(f: Field, aggregation: str, name: str, seconds: float) -> Agg:
    """The aggregate of ``f``; ``seconds`` is the width rates divide by (step or range)."""
    if aggregation == "count":
        assert f.count
        return total(f.count, name)
    if aggregation == "sum":
        assert f.sum
        return total(f.sum, name)
    if aggregation == "rate":
        assert f.sum
        return _rate(f.sum, seconds, name)
    if aggregation == "avg":
        return _avg(f, name)
    if aggregation == "min":
        assert f.min
        return lowest(f.min, name)
    if aggregation == "max":
        assert f.max
        return highest(f.max, name)
    assert f.hist
    return quantile(f.hist, int(aggregation[1:]) / 100, name)
