"""Rollup relations (shapes): span RED metrics, metric rollups, daily costs, model prices.

On PostgreSQL these are tables maintained at ingest; the rollups issue turns them into
hierarchical continuous aggregates on TimescaleDB under the same names and columns.
Dimensions are ``NOT NULL DEFAULT ''`` so that they can be part of a primary key.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
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
from sqlalchemy.dialects.postgresql import ARRAY

from storage.schema._base import (
    counter,
    created_at,
    indexed,
    jsonb,
    label,
    metadata,
    org_id_column,
    ts,
)

ROLLUP_LEVELS = ("1m", "1h", "1d")


def _span_red(level: str) -> Table:
    name = f"span_red_{level}"
    return Table(
        name,
        metadata,
        ts("bucket"),
        org_id_column(fk=False),
        label("subsystem", default="SYSTEM"),
        label("service_name"),
        label("operation"),
        label("agent_id"),
        counter("span_count"),
        counter("error_count"),
        Column("duration_sum_ms", Double, nullable=False, server_default=text("0")),
        Column("duration_min_ms", Double, nullable=True),
        Column("duration_max_ms", Double, nullable=True),
        Column("duration_hist", ARRAY(BigInteger), nullable=True),
        PrimaryKeyConstraint(
            "org_id", "bucket", "subsystem", "service_name", "operation", "agent_id"
        ),
        comment=f"Span requests/errors/duration per {level} bucket; duration_hist is log-bucketed.",
    )


def _metric_rollup(level: str) -> Table:
    name = f"metric_rollup_{level}"
    return Table(
        name,
        metadata,
        ts("bucket"),
        org_id_column(fk=False),
        Column("metric", Text, nullable=False),
        Column("series_id", LargeBinary, nullable=False),
        jsonb("dimensions"),
        counter("count"),
        Column("sum", Double, nullable=False, server_default=text("0")),
        Column("min", Double, nullable=True),
        Column("max", Double, nullable=True),
        Column("last", Double, nullable=True),
        ts("last_time", nullable=True),
        Column("explicit_bounds", ARRAY(Double), nullable=True),
        Column("bucket_counts", ARRAY(BigInteger), nullable=True),
        PrimaryKeyConstraint("org_id", "metric", "series_id", "bucket"),
        indexed(
            f"ix_{name}_org_bucket",
            "org_id",
            "bucket",
            serves=f"all metric rollups of an org in a window ({level})",
        ),
        comment=f"Metric points per series per {level}: count/sum/min/max/last, merged histograms",
    )


span_red_1m, span_red_1h, span_red_1d = (_span_red(level) for level in ROLLUP_LEVELS)
metric_rollup_1m, metric_rollup_1h, metric_rollup_1d = (_metric_rollup(lv) for lv in ROLLUP_LEVELS)

cost_daily = Table(
    "cost_daily",
    metadata,
    Column("day", Date, nullable=False),
    org_id_column(fk=False),
    label("provider"),
    label("model"),
    label("agent_id"),
    label("subsystem", default="SYSTEM"),
    counter("calls"),
    Column("cost_usd", Numeric(24, 10), nullable=False, server_default=text("0")),
    counter("tokens_in"),
    counter("tokens_out"),
    counter("cache_read_tokens"),
    counter("cache_creation_tokens"),
    PrimaryKeyConstraint("org_id", "day", "provider", "model", "agent_id", "subsystem"),
    comment="LLM cost per org, day, provider, model, agent and subsystem.",
)

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
