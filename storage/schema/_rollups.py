"""Rollup relations, declared once for both engines, and the model price table.

Each rollup *family* is declared by a :class:`Family`: its source, its dimensions (SQL
expressions over a source row) and its measures (an aggregate over source rows, and how
finer rollup rows merge into coarser ones). From that one declaration come:

- the SQLAlchemy tables below (the PostgreSQL engine's rollup tables, maintained at
  ingest by ``storage.ingest.rollups``), one per level: ``<family>_1m``, ``_1h``, ``_1d``;
- the TimescaleDB engine's hierarchical continuous aggregates of the same names and
  columns (``storage.ingest.rollups.timescale_ddl``): 1 min from the raw hypertable (or from
  another family's 1 min rollup), 1 h from 1 min, 1 day from 1 h.

Sums cannot overflow: they saturate. Counts of rows (``span_count``, ``calls``, ...) are
``bigint`` and below 2^63 at every level (there are fewer rows than that). Sums of
summed inputs (metric ``observations``, the token columns of ``cost_daily``, histogram
``bucket_counts``) are computed in ``numeric`` (``sum(bigint)``) and saturate at
``MAX_BIGINT`` (2^63 - 1) on both engines, at every level: each summand is bounded
(``otlp_receiver._translate._bounds``) but a thousand of them are not. Saturation
composes exactly because the summands are never negative (``min(a + b, M)`` of partial
sums already capped at ``M`` equals the capped total), so both engines and every level
agree; a saturated value reads as 9223372036854775807 (an ``int``). Double-precision sums
cannot overflow (translation bounds every summed double).

Distributions (span durations, context sizes) are ``bigint[]`` log-bucket histograms that
merge exactly at every level (``storage.hist``, 1 % relative error), with p50/p95/p99
computed from them: stored by the continuous aggregates (TimescaleDB); on PostgreSQL,
since migration 0020, computed when read (``quantile_sql``; the ``tenant.*`` and
``*_levels`` views have them as columns) rather than at every upsert of every level.
Dimensions are ``text NOT NULL`` ('' when unknown) so they can be part of a key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    DateTime,
    Double,
    Identity,
    LargeBinary,
    Numeric,
    PrimaryKeyConstraint,
    Table,
    Text,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from semconv.attributes.damn import DAMN_AGENT_STATUS
from semconv.attributes.mosaic import (
    MOSAIC_HANDOFF_FROM_AGENT,
    MOSAIC_HANDOFF_TO_AGENT,
    MOSAIC_ROUTING_OUTCOME,
    MOSAIC_ROUTING_ROUTE,
)
from semconv.attributes.uce import UCE_CACHE_HIT, UCE_CONTEXT_SIZE_TOKENS, UCE_OPERATION_NAME
from semconv.events.damn import DAMN_AGENT_HEARTBEAT
from storage.schema._base import created_at, indexed, metadata

ROLLUP_LEVELS = ("1m", "1h", "1d")
#: Where saturating sums stop (``bigint``'s maximum, 2^63 - 1).
MAX_BIGINT = 2**63 - 1
LEVEL_INTERVALS = {"1m": "1 minute", "1h": "1 hour", "1d": "1 day"}
LEVEL_SECONDS = {"1m": 60, "1h": 3600, "1d": 86400}
#: A folded level's table (PostgreSQL engine) is its relation's name with this suffix.
STORE_SUFFIX = "_store"

#: How a measure merges: finer rows into a coarser row, or a stored row with new rows.
MERGES = ("sum", "min", "max", "hist", "last", "array_sum", "array_max", "minutes")


@dataclass(frozen=True, slots=True)
class Measure:
    """A rollup column computed by aggregation."""

    name: str
    sql_type: str  # bigint, double precision, numeric, bigint[], double precision[], ...
    raw: str  # aggregate over source rows (the 1 min level of a family read from raw rows)
    merge: str  # one of MERGES
    #: A bigint sum of summed inputs (not a count of rows): saturates at ``MAX_BIGINT``.
    saturate: bool = False

    def merge_sql(self, prefix: str = "") -> str:
        """Aggregate of finer rollup rows (columns qualified by ``prefix``) into a coarser one."""
        c = prefix + self.name
        last_time = prefix + "last_time"
        if self.saturate:  # sum(bigint) is numeric: it cannot overflow before LEAST
            return f"LEAST(sum({c}), {MAX_BIGINT})::bigint"
        return {
            "sum": f"sum({c})::{self.sql_type}",
            "min": f"min({c})",
            "max": f"max({c})",
            "hist": f"aeos_hist_merge_agg({c})",
            "last": f"(array_agg({c} ORDER BY {last_time} DESC))[1]",
            "array_sum": f"aeos_array_sum_agg({c})",
            "array_max": f"max({c})",
            "minutes": f"sum({c})::bigint",
        }[self.merge]

    def upsert_sql(self) -> str:
        """A stored row (alias ``t``) combined with new rows (``EXCLUDED``)."""
        c, last_time = self.name, "last_time"
        return {
            "sum": f"t.{c} + EXCLUDED.{c}",
            "min": f"LEAST(t.{c}, EXCLUDED.{c})",
            "max": f"GREATEST(t.{c}, EXCLUDED.{c})",
            "hist": f"aeos_hist_add(t.{c}, EXCLUDED.{c})",
            "last": f"CASE WHEN t.{last_time} IS NULL OR EXCLUDED.{last_time} >= t.{last_time} "
            f"THEN EXCLUDED.{c} ELSE t.{c} END",
            "array_sum": f"aeos_array_add(t.{c}, EXCLUDED.{c})",
            "array_max": f"GREATEST(t.{c}, EXCLUDED.{c})",
            "minutes": f"EXCLUDED.{c}",  # 1 per 1 min row; recomputed above
        }[self.merge]


@dataclass(frozen=True, slots=True)
class Quantiles:
    """p-columns computed from a histogram column: ``<prefix>_p50<suffix>`` ...

    ``count`` is the column holding the histogram's total count (every observation is
    counted there and binned there), so a quantile of one row is ranked without a pass
    over the buckets (``aeos_hist_quantile_n``): the continuous aggregates store these
    columns; on PostgreSQL the views over the tables and the readers compute them.
    """

    hist: str
    count: str
    prefix: str
    suffix: str
    qs: tuple[int, ...] = (50, 95, 99)

    def columns(self) -> list[tuple[str, float]]:
        """(column name, quantile) pairs."""
        return [(f"{self.prefix}_p{q}{self.suffix}", q / 100) for q in self.qs]

    def sql(self, q: float, prefix: str = "") -> str:
        """Quantile ``q`` of one rollup row (columns qualified by ``prefix``), ranked with
        the row's own count so it reads only the buckets up to the answer."""
        return f"aeos_hist_quantile_n({prefix}{self.hist}, {prefix}{self.count}, {q})"


@dataclass(frozen=True, slots=True)
class Family:
    """One rollup family (see the module docstring)."""

    name: str
    source: str  # raw table, or the family whose 1 min rows this one regroups
    time: str  # source time column
    dims: tuple[tuple[str, str], ...]  # (column, SQL over a source row)
    measures: tuple[Measure, ...]
    where: str | None = None
    quantiles: tuple[Quantiles, ...] = ()
    per_org: bool = True
    levels: tuple[str, ...] = ROLLUP_LEVELS
    derived_from: str | None = None  # a family: this one regroups its 1 min rows
    comment: str = ""
    dim_types: dict[str, str] = field(default_factory=dict)  # non-text dimensions
    functional: tuple[str, ...] = ()  # dims that depend on the key (not in the key)
    #: PostgreSQL engine: coarser levels are recomputed from the level below for the
    #: buckets a write touched, instead of merging the write's delta (non-additive
    #: measures, e.g. minutes with a heartbeat).
    recompute: bool = False

    def relation(self, level: str) -> str:
        """The relation name of ``level``."""
        return self.name if self.name == "cost_daily" else f"{self.name}_{level}"

    def folded(self, level: str) -> bool:
        """PostgreSQL engine: whether ``level`` is a view over a folded store table
        (``storage.ingest.folds``): every coarser level of an additive family."""
        return not self.recompute and level != self.levels[0]

    def rows_of(self, level: str) -> str:
        """PostgreSQL engine: the table holding the rows of ``level`` (its store, if folded)."""
        relation = self.relation(level)
        return f"{relation}{STORE_SUFFIX}" if self.folded(level) else relation

    @property
    def key(self) -> tuple[str, ...]:
        """Columns of the primary key (PostgreSQL) / the GROUP BY (TimescaleDB)."""
        org = ("org_id",) if self.per_org else ()
        return (*org, "bucket", *(d for d, _ in self.dims if d not in self.functional))


def _saturating_sum(expr: str) -> str:
    """``sum`` of a bigint expression, saturating (``sum(bigint)`` is numeric: exact)."""
    return f"LEAST(sum({expr}), {MAX_BIGINT})::bigint"


def _summed(name: str, expr: str) -> Measure:
    return Measure(name, "bigint", _saturating_sum(expr), "sum", saturate=True)


def _count(where: str | None = None) -> str:
    return "count(*)" if where is None else f"count(*) FILTER (WHERE {where})"


def _attr_text(key: str, source: str = "attributes") -> str:
    """An attribute's value when it is a string, else NULL (same rule in Python)."""
    return f"CASE WHEN jsonb_typeof({source}->'{key}') = 'string' THEN {source}->>'{key}' END"


def _attr_number(key: str) -> str:
    return (
        f"CASE WHEN jsonb_typeof(attributes->'{key}') = 'number' "
        f"THEN (attributes->>'{key}')::double precision END"
    )


ERROR = "status_code = 2"

_RED_MEASURES = (
    Measure("span_count", "bigint", "count(*)", "sum"),
    Measure("error_count", "bigint", _count(ERROR), "sum"),
    Measure("duration_sum_ms", "double precision", "sum(duration_ms)", "sum"),
    Measure("duration_min_ms", "double precision", "min(duration_ms)", "min"),
    Measure("duration_max_ms", "double precision", "max(duration_ms)", "max"),
    Measure("duration_hist", "bigint[]", "aeos_hist_collect(aeos_hist_unit(duration_ms))", "hist"),
)
_DURATION_Q = (Quantiles("duration_hist", "span_count", "duration", "_ms"),)

_CONTEXT_SIZE = _attr_number(UCE_CONTEXT_SIZE_TOKENS)

FAMILIES: tuple[Family, ...] = (
    Family(
        "span_red",
        source="spans",
        time="start_time",
        dims=(
            ("subsystem", "subsystem"),
            ("service_name", "coalesce(service_name, '')"),
            ("operation", "name"),
            ("agent_id", "coalesce(agent_id, '')"),
        ),
        measures=_RED_MEASURES,
        quantiles=_DURATION_Q,
        comment="Span rate/errors/duration per org, subsystem, service, operation and agent",
    ),
    Family(
        "org_red",
        source="span_red",
        time="bucket",
        dims=(),
        measures=_RED_MEASURES,
        quantiles=_DURATION_Q,
        derived_from="span_red",
        comment="Span rate/errors/duration per org (the org overview)",
    ),
    Family(
        "platform_red",
        source="span_red",
        time="bucket",
        dims=(),
        measures=_RED_MEASURES,
        quantiles=_DURATION_Q,
        per_org=False,
        derived_from="span_red",
        comment="Span rate/errors/duration of all orgs together (staff global overview)",
    ),
    Family(
        "uce_ops",
        source="spans",
        time="start_time",
        where=f"jsonb_typeof(attributes->'{UCE_OPERATION_NAME}') = 'string'",
        dims=(
            ("agent_id", "coalesce(agent_id, '')"),
            ("operation", f"attributes->>'{UCE_OPERATION_NAME}'"),
        ),
        measures=(
            Measure("op_count", "bigint", "count(*)", "sum"),
            Measure("error_count", "bigint", _count(ERROR), "sum"),
            Measure(
                "cache_hits", "bigint", _count(f"attributes->'{UCE_CACHE_HIT}' = 'true'"), "sum"
            ),
            Measure(
                "cache_lookups",
                "bigint",
                _count(f"jsonb_typeof(attributes->'{UCE_CACHE_HIT}') = 'boolean'"),
                "sum",
            ),
            Measure("context_size_count", "bigint", f"count({_CONTEXT_SIZE})", "sum"),
            Measure("context_size_sum", "double precision", f"sum({_CONTEXT_SIZE})", "sum"),
            Measure("context_size_max", "double precision", f"max({_CONTEXT_SIZE})", "max"),
            Measure(
                "context_size_hist",
                "bigint[]",
                f"aeos_hist_collect(aeos_hist_unit({_CONTEXT_SIZE})) "
                f"FILTER (WHERE {_CONTEXT_SIZE} IS NOT NULL)",
                "hist",
            ),
        ),
        quantiles=(
            Quantiles("context_size_hist", "context_size_count", "context_size", "", (50, 95)),
        ),
        comment="UCE context operations per agent and operation: cache hits, context sizes",
    ),
    Family(
        "mosaic_routes",
        source="spans",
        time="start_time",
        where=f"jsonb_typeof(attributes->'{MOSAIC_ROUTING_ROUTE}') = 'string'",
        dims=(
            ("route", f"attributes->>'{MOSAIC_ROUTING_ROUTE}'"),
            ("outcome", f"coalesce({_attr_text(MOSAIC_ROUTING_OUTCOME)}, '')"),
        ),
        measures=(
            Measure("decisions", "bigint", "count(*)", "sum"),
            Measure("successes", "bigint", _count(f"NOT {ERROR}"), "sum"),
            Measure("failures", "bigint", _count(ERROR), "sum"),
        ),
        comment="MOSAIC routing decisions per route and outcome, with success counts",
    ),
    Family(
        "mosaic_handoffs",
        source="spans",
        time="start_time",
        where=f"jsonb_typeof(attributes->'{MOSAIC_HANDOFF_TO_AGENT}') = 'string'",
        dims=(
            (
                "from_agent",
                f"coalesce({_attr_text(MOSAIC_HANDOFF_FROM_AGENT)}, agent_id, '')",
            ),
            ("to_agent", f"attributes->>'{MOSAIC_HANDOFF_TO_AGENT}'"),
        ),
        measures=(
            Measure("handoffs", "bigint", "count(*)", "sum"),
            Measure("failures", "bigint", _count(ERROR), "sum"),
        ),
        comment="MOSAIC handoffs between agents (the plan graph's edges)",
    ),
    Family(
        "damn_heartbeats",
        source="events",
        time="time",
        where=f"event_type = '{DAMN_AGENT_HEARTBEAT}'",
        dims=(
            ("agent_id", "coalesce(agent_id, '')"),
            (
                "status",
                f"CASE WHEN lower(payload->>'{DAMN_AGENT_STATUS}') IN ('online', 'offline', "
                f"'degraded') THEN lower(payload->>'{DAMN_AGENT_STATUS}') ELSE 'online' END",
            ),
        ),
        measures=(
            Measure("heartbeats", "bigint", "count(*)", "sum"),
            # Minutes with at least one heartbeat: 1 per 1 min row, counted above that.
            Measure("active_minutes", "bigint", "1::bigint", "minutes"),
        ),
        recompute=True,
        comment="DAMN heartbeats per agent and reported status; active_minutes gives uptime",
    ),
    Family(
        "metric_rollup",
        source="metric_points",
        time="time",
        dims=(
            ("metric", "metric"),
            ("series_id", "series_id"),
            ("kind", "kind"),
            ("unit", "unit"),
            ("service_name", "coalesce(service_name, '')"),
            ("agent_id", "coalesce(agent_id, '')"),
            ("dimensions", "attributes"),
        ),
        dim_types={"series_id": "bytea", "dimensions": "jsonb"},
        functional=("kind", "unit", "service_name", "agent_id", "dimensions"),
        measures=(
            Measure("count", "bigint", "count(*)", "sum"),
            _summed("observations", "coalesce(count, 1)"),
            Measure("sum", "double precision", "sum(coalesce(value, sum))", "sum"),
            Measure("min", "double precision", "min(coalesce(value, min))", "min"),
            Measure("max", "double precision", "max(coalesce(value, max))", "max"),
            Measure(
                "last",
                "double precision",
                "(array_agg(coalesce(value, sum) ORDER BY time DESC))[1]",
                "last",
            ),
            Measure("last_time", "timestamp with time zone", "max(time)", "max"),
            Measure("explicit_bounds", "double precision[]", "max(explicit_bounds)", "array_max"),
            Measure("bucket_counts", "bigint[]", "aeos_array_sum_agg(bucket_counts)", "array_sum"),
        ),
        comment="OTLP data points per series: count/sum/min/max/last, histogram buckets merged",
    ),
    Family(
        "cost_daily",
        source="cost_line_items",
        time="time",
        levels=("1d",),
        dims=(
            ("provider", "provider"),
            ("model", "model"),
            ("agent_id", "coalesce(agent_id, '')"),
            ("subsystem", "subsystem"),
        ),
        measures=(
            Measure("calls", "bigint", "count(*)", "sum"),
            Measure("cost_usd", "numeric", "sum(cost_usd)", "sum"),
            _summed("tokens_in", "tokens_in"),
            _summed("tokens_out", "tokens_out"),
            _summed("cache_read_tokens", "cache_read_tokens"),
            _summed("cache_creation_tokens", "cache_creation_tokens"),
        ),
        comment="LLM cost and tokens per org, UTC day, provider, model, agent and subsystem",
    ),
)

FAMILY_BY_NAME = {f.name: f for f in FAMILIES}

_TYPES: dict[str, Any] = {
    "bigint": BigInteger,
    "double precision": Double,
    "numeric": Numeric,
    "bigint[]": ARRAY(BigInteger),
    "double precision[]": ARRAY(Double),
    "timestamp with time zone": DateTime(timezone=True),
    "bytea": LargeBinary,
    "jsonb": JSONB,
}


def _table(family: Family, level: str) -> Table:
    name = family.relation(level)
    columns: list[Any] = [Column("bucket", DateTime(timezone=True), nullable=False)]
    if family.per_org:
        columns.append(Column("org_id", Uuid(as_uuid=True), nullable=False))
    for dim, _ in family.dims:
        kind = family.dim_types.get(dim)
        columns.append(
            Column(dim, JSONB, nullable=False, server_default=text("'{}'::jsonb"))
            if kind == "jsonb"
            else Column(dim, _TYPES[kind], nullable=False)
            if kind
            else Column(dim, Text, nullable=False, server_default=text("''"))
        )
    for m in family.measures:
        if m.merge in ("sum", "minutes") and m.sql_type == "bigint":  # counters
            columns.append(Column(m.name, BigInteger, nullable=False, server_default=text("0")))
        else:
            columns.append(Column(m.name, _TYPES[m.sql_type], nullable=True))
    return Table(
        name,
        metadata,
        *columns,
        PrimaryKeyConstraint(*family.key),
        comment=f"{family.comment} ({LEVEL_INTERVALS[level]} buckets).",
        info={"rollup": family.name, "level": level},
    )


ROLLUP_TABLES: dict[str, Table] = {
    f.relation(level): _table(f, level) for f in FAMILIES for level in f.levels
}

model_prices = Table(
    "model_prices",
    metadata,
    Column("id", BigInteger, Identity(always=False), primary_key=True),
    Column("org_id", Uuid(as_uuid=True), nullable=True),
    Column("provider", Text, nullable=False),
    Column("model_pattern", Text, nullable=False),
    Column("effective_from", Date, nullable=False),
    Column("input_per_mtok", Numeric(20, 10), nullable=False),
    Column("output_per_mtok", Numeric(20, 10), nullable=False),
    Column("cache_read_per_mtok", Numeric(20, 10), nullable=True),
    Column("cache_creation_per_mtok", Numeric(20, 10), nullable=True),
    Column("source", Text, nullable=False, server_default=text("''")),
    created_at(),
    indexed(
        "ix_model_prices_lookup",
        "org_id",
        "provider",
        "model_pattern",
        "effective_from",
        serves="price in force for (org override or global) provider/model at a date",
    ),
    comment="USD per million tokens, versioned by effective date; org_id set = an org override.",
)

rollup_folds = Table(
    "rollup_folds",
    metadata,
    Column("relation", Text, primary_key=True),
    Column("folded_until", DateTime(timezone=True), nullable=False),
    comment="PostgreSQL engine: a folded rollup level's store table holds exactly the "
    "buckets before folded_until; its view regroups the level below from there on.",
)
