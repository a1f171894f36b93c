"""Initial schema: every table of the data model.

Raw telemetry tables are created range-partitioned by time on the PostgreSQL engine
(partitions are added by 0002); on the TimescaleDB engine they are plain tables that 0002
turns into hypertables.

Revision ID: 0001
Revises:
Create Date: 2026-11-28 14:31:40.550687
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


# Frozen copy of storage.schema.PARTITIONED as of this revision: table -> time column.
_PARTITION_COLUMNS = {
    "spans": "start_time",
    "events": "time",
    "metric_points": "time",
    "cost_line_items": "time",
    "alert_evaluations": "time",
}


def _partition_by(table: str) -> dict[str, Any]:
    if op.get_context().config.attributes.get("storage_engine") == "timescale":  # type: ignore[union-attr]
        return {}
    return {"postgresql_partition_by": f"RANGE ({_PARTITION_COLUMNS[table]})"}


def upgrade() -> None:
    op.create_table(
        "aeos_meta",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_aeos_meta")),
        comment="Facts about this database chosen at migration time (storage_engine).",
    )
    op.create_table(
        "alert_evaluations",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("rule_id", sa.Uuid(), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("value", sa.Double(), nullable=True),
        sa.Column(
            "details",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "state IN ('ok', 'pending', 'firing', 'no_data')",
            name=op.f("ck_alert_evaluations_state"),
        ),
        sa.PrimaryKeyConstraint("org_id", "rule_id", "time", name=op.f("pk_alert_evaluations")),
        comment="Every evaluation of every rule (history for the Anomalies view).",
        **_partition_by("alert_evaluations"),
    )
    op.create_table(
        "cost_daily",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("provider", sa.Text(), server_default=sa.text("''"), nullable=False),
        sa.Column("model", sa.Text(), server_default=sa.text("''"), nullable=False),
        sa.Column("agent_id", sa.Text(), server_default=sa.text("''"), nullable=False),
        sa.Column("subsystem", sa.Text(), server_default=sa.text("'SYSTEM'"), nullable=False),
        sa.Column("calls", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "cost_usd",
            sa.Numeric(precision=24, scale=10),
            server_default=sa.text("0"),
            nullable=False,
        ),
        sa.Column("tokens_in", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("tokens_out", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "cache_read_tokens", sa.BigInteger(), server_default=sa.text("0"), nullable=False
        ),
        sa.Column(
            "cache_creation_tokens", sa.BigInteger(), server_default=sa.text("0"), nullable=False
        ),
        sa.PrimaryKeyConstraint(
            "org_id",
            "day",
            "provider",
            "model",
            "agent_id",
            "subsystem",
            name=op.f("pk_cost_daily"),
        ),
        comment="LLM cost per org, day, provider, model, agent and subsystem.",
    )
    op.create_table(
        "cost_line_items",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("trace_id", sa.LargeBinary(), nullable=False),
        sa.Column("span_id", sa.LargeBinary(), nullable=False),
        sa.Column("task_run_id", sa.Text(), nullable=True),
        sa.Column("agent_id", sa.Text(), nullable=True),
        sa.Column("subsystem", sa.Text(), server_default=sa.text("'SYSTEM'"), nullable=False),
        sa.Column("provider", sa.Text(), server_default=sa.text("''"), nullable=False),
        sa.Column("model", sa.Text(), server_default=sa.text("''"), nullable=False),
        sa.Column("tokens_in", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("tokens_out", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "cache_read_tokens", sa.BigInteger(), server_default=sa.text("0"), nullable=False
        ),
        sa.Column(
            "cache_creation_tokens", sa.BigInteger(), server_default=sa.text("0"), nullable=False
        ),
        sa.Column("cost_usd", sa.Numeric(precision=20, scale=10), nullable=False),
        sa.Column("cost_source", sa.Text(), nullable=False),
        sa.Column("price_id", sa.BigInteger(), nullable=True),
        sa.CheckConstraint(
            "cost_source IN ('explicit', 'priced', 'unpriced')",
            name=op.f("ck_cost_line_items_cost_source"),
        ),
        sa.CheckConstraint(
            "subsystem IN ('MOSAIC', 'DAMN', 'UCE', 'SYSTEM')",
            name=op.f("ck_cost_line_items_subsystem"),
        ),
        sa.PrimaryKeyConstraint(
            "org_id", "trace_id", "span_id", "time", name=op.f("pk_cost_line_items")
        ),
        comment="One LLM call's cost: priced from model_prices, or an explicit cost attribute.",
        **_partition_by("cost_line_items"),
    )
    op.create_index(
        "ix_cost_line_items_org_task_run",
        "cost_line_items",
        ["org_id", "task_run_id"],
        unique=False,
        postgresql_where=sa.text("task_run_id IS NOT NULL"),
    )
    op.create_index(
        "ix_cost_line_items_org_time", "cost_line_items", ["org_id", "time"], unique=False
    )
    op.create_table(
        "events",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_id", sa.LargeBinary(), nullable=False),
        sa.Column("observed_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("severity", sa.Text(), server_default=sa.text("'info'"), nullable=False),
        sa.Column(
            "severity_number", sa.SmallInteger(), server_default=sa.text("0"), nullable=False
        ),
        sa.Column("subsystem", sa.Text(), server_default=sa.text("'SYSTEM'"), nullable=False),
        sa.Column("event_type", sa.Text(), server_default=sa.text("''"), nullable=False),
        sa.Column("agent_id", sa.Text(), nullable=True),
        sa.Column("fleet_id", sa.Text(), nullable=True),
        sa.Column("task_run_id", sa.Text(), nullable=True),
        sa.Column("trace_id", sa.LargeBinary(), nullable=True),
        sa.Column("span_id", sa.LargeBinary(), nullable=True),
        sa.Column("service_name", sa.Text(), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column(
            "payload",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "resource_attributes",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "severity IN ('debug', 'info', 'warn', 'error', 'fatal')",
            name=op.f("ck_events_severity"),
        ),
        sa.CheckConstraint(
            "subsystem IN ('MOSAIC', 'DAMN', 'UCE', 'SYSTEM')", name=op.f("ck_events_subsystem")
        ),
        sa.PrimaryKeyConstraint("org_id", "event_id", "time", name=op.f("pk_events")),
        comment="OTLP log records and span events; event_id is a content hash (dedupes retries).",
        **_partition_by("events"),
    )
    op.create_index(
        "ix_events_org_agent_time", "events", ["org_id", "agent_id", "time"], unique=False
    )
    op.create_index(
        "ix_events_org_severity_time", "events", ["org_id", "severity", "time"], unique=False
    )
    op.create_index("ix_events_org_time", "events", ["org_id", "time"], unique=False)
    op.create_table(
        "metric_points",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("metric", sa.Text(), nullable=False),
        sa.Column("series_id", sa.LargeBinary(), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("start_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("temporality", sa.SmallInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("is_monotonic", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("unit", sa.Text(), server_default=sa.text("''"), nullable=False),
        sa.Column("value", sa.Double(), nullable=True),
        sa.Column("count", sa.BigInteger(), nullable=True),
        sa.Column("sum", sa.Double(), nullable=True),
        sa.Column("min", sa.Double(), nullable=True),
        sa.Column("max", sa.Double(), nullable=True),
        sa.Column("explicit_bounds", postgresql.ARRAY(sa.Double()), nullable=True),
        sa.Column("bucket_counts", postgresql.ARRAY(sa.BigInteger()), nullable=True),
        sa.Column("exp_scale", sa.Integer(), nullable=True),
        sa.Column("exp_zero_count", sa.BigInteger(), nullable=True),
        sa.Column("exp_positive_offset", sa.Integer(), nullable=True),
        sa.Column("exp_positive_counts", postgresql.ARRAY(sa.BigInteger()), nullable=True),
        sa.Column("exp_negative_offset", sa.Integer(), nullable=True),
        sa.Column("exp_negative_counts", postgresql.ARRAY(sa.BigInteger()), nullable=True),
        sa.Column("subsystem", sa.Text(), server_default=sa.text("'SYSTEM'"), nullable=False),
        sa.Column("service_name", sa.Text(), nullable=True),
        sa.Column("agent_id", sa.Text(), nullable=True),
        sa.Column(
            "attributes",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "resource_attributes",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "kind IN ('gauge', 'sum', 'histogram', 'exponential_histogram', 'summary')",
            name=op.f("ck_metric_points_kind"),
        ),
        sa.CheckConstraint(
            "subsystem IN ('MOSAIC', 'DAMN', 'UCE', 'SYSTEM')",
            name=op.f("ck_metric_points_subsystem"),
        ),
        sa.PrimaryKeyConstraint(
            "org_id", "metric", "series_id", "time", name=op.f("pk_metric_points")
        ),
        comment="OTLP data points; series_id hashes metric + resource + point attributes.",
        **_partition_by("metric_points"),
    )
    op.create_index("ix_metric_points_org_time", "metric_points", ["org_id", "time"], unique=False)
    op.create_table(
        "metric_rollup_1d",
        sa.Column("bucket", sa.DateTime(timezone=True), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("metric", sa.Text(), nullable=False),
        sa.Column("series_id", sa.LargeBinary(), nullable=False),
        sa.Column(
            "dimensions",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("count", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("sum", sa.Double(), server_default=sa.text("0"), nullable=False),
        sa.Column("min", sa.Double(), nullable=True),
        sa.Column("max", sa.Double(), nullable=True),
        sa.Column("last", sa.Double(), nullable=True),
        sa.Column("last_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("explicit_bounds", postgresql.ARRAY(sa.Double()), nullable=True),
        sa.Column("bucket_counts", postgresql.ARRAY(sa.BigInteger()), nullable=True),
        sa.PrimaryKeyConstraint(
            "org_id", "metric", "series_id", "bucket", name=op.f("pk_metric_rollup_1d")
        ),
        comment="Metric points per series per 1d: count/sum/min/max/last, merged histograms",
    )
    op.create_index(
        "ix_metric_rollup_1d_org_bucket", "metric_rollup_1d", ["org_id", "bucket"], unique=False
    )
    op.create_table(
        "metric_rollup_1h",
        sa.Column("bucket", sa.DateTime(timezone=True), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("metric", sa.Text(), nullable=False),
        sa.Column("series_id", sa.LargeBinary(), nullable=False),
        sa.Column(
            "dimensions",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("count", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("sum", sa.Double(), server_default=sa.text("0"), nullable=False),
        sa.Column("min", sa.Double(), nullable=True),
        sa.Column("max", sa.Double(), nullable=True),
        sa.Column("last", sa.Double(), nullable=True),
        sa.Column("last_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("explicit_bounds", postgresql.ARRAY(sa.Double()), nullable=True),
        sa.Column("bucket_counts", postgresql.ARRAY(sa.BigInteger()), nullable=True),
        sa.PrimaryKeyConstraint(
            "org_id", "metric", "series_id", "bucket", name=op.f("pk_metric_rollup_1h")
        ),
        comment="Metric points per series per 1h: count/sum/min/max/last, merged histograms",
    )
    op.create_index(
        "ix_metric_rollup_1h_org_bucket", "metric_rollup_1h", ["org_id", "bucket"], unique=False
    )
    op.create_table(
        "metric_rollup_1m",
        sa.Column("bucket", sa.DateTime(timezone=True), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("metric", sa.Text(), nullable=False),
        sa.Column("series_id", sa.LargeBinary(), nullable=False),
        sa.Column(
            "dimensions",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("count", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("sum", sa.Double(), server_default=sa.text("0"), nullable=False),
        sa.Column("min", sa.Double(), nullable=True),
        sa.Column("max", sa.Double(), nullable=True),
        sa.Column("last", sa.Double(), nullable=True),
        sa.Column("last_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("explicit_bounds", postgresql.ARRAY(sa.Double()), nullable=True),
        sa.Column("bucket_counts", postgresql.ARRAY(sa.BigInteger()), nullable=True),
        sa.PrimaryKeyConstraint(
            "org_id", "metric", "series_id", "bucket", name=op.f("pk_metric_rollup_1m")
        ),
        comment="Metric points per series per 1m: count/sum/min/max/last, merged histograms",
    )
    op.create_index(
        "ix_metric_rollup_1m_org_bucket", "metric_rollup_1m", ["org_id", "bucket"], unique=False
    )
    op.create_table(
        "model_prices",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=True),
        sa.Column("provider", sa.Text(), nullable=False),
        sa.Column("model_pattern", sa.Text(), nullable=False),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column("input_per_mtok", sa.Numeric(precision=20, scale=10), nullable=False),
        sa.Column("output_per_mtok", sa.Numeric(precision=20, scale=10), nullable=False),
        sa.Column("cache_read_per_mtok", sa.Numeric(precision=20, scale=10), nullable=True),
        sa.Column("cache_creation_per_mtok", sa.Numeric(precision=20, scale=10), nullable=True),
        sa.Column("source", sa.Text(), server_default=sa.text("''"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_prices")),
        comment="USD per million tokens, versioned by effective date; org_id set = an org override.",
    )
    op.create_index(
        "ix_model_prices_lookup",
        "model_prices",
        ["org_id", "provider", "model_pattern", "effective_from"],
        unique=False,
    )
    op.create_table(
        "orgs",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("plan", sa.Text(), server_default=sa.text("'free'"), nullable=False),
        sa.Column("workos_org_id", sa.Text(), nullable=True),
        sa.Column(
            "retention_overrides",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "settings",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("plan IN ('free', 'pro', 'enterprise')", name=op.f("ck_orgs_plan")),
        sa.CheckConstraint("length(btrim(name)) > 0", name=op.f("ck_orgs_name_not_blank")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orgs")),
        sa.UniqueConstraint("name", name=op.f("uq_orgs_name")),
        sa.UniqueConstraint("workos_org_id", name=op.f("uq_orgs_workos_org_id")),
        comment="Tenants: every telemetry row belongs to exactly one org.",
    )
    op.create_table(
        "span_red_1d",
        sa.Column("bucket", sa.DateTime(timezone=True), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("subsystem", sa.Text(), server_default=sa.text("'SYSTEM'"), nullable=False),
        sa.Column("service_name", sa.Text(), server_default=sa.text("''"), nullable=False),
        sa.Column("operation", sa.Text(), server_default=sa.text("''"), nullable=False),
        sa.Column("agent_id", sa.Text(), server_default=sa.text("''"), nullable=False),
        sa.Column("span_count", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("error_count", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("duration_sum_ms", sa.Double(), server_default=sa.text("0"), nullable=False),
        sa.Column("duration_min_ms", sa.Double(), nullable=True),
        sa.Column("duration_max_ms", sa.Double(), nullable=True),
        sa.Column("duration_hist", postgresql.ARRAY(sa.BigInteger()), nullable=True),
        sa.PrimaryKeyConstraint(
            "org_id",
            "bucket",
            "subsystem",
            "service_name",
            "operation",
            "agent_id",
            name=op.f("pk_span_red_1d"),
        ),
        comment="Span requests/errors/duration per 1d bucket; duration_hist is log-bucketed.",
    )
    op.create_table(
        "span_red_1h",
        sa.Column("bucket", sa.DateTime(timezone=True), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("subsystem", sa.Text(), server_default=sa.text("'SYSTEM'"), nullable=False),
        sa.Column("service_name", sa.Text(), server_default=sa.text("''"), nullable=False),
        sa.Column("operation", sa.Text(), server_default=sa.text("''"), nullable=False),
        sa.Column("agent_id", sa.Text(), server_default=sa.text("''"), nullable=False),
        sa.Column("span_count", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("error_count", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("duration_sum_ms", sa.Double(), server_default=sa.text("0"), nullable=False),
        sa.Column("duration_min_ms", sa.Double(), nullable=True),
        sa.Column("duration_max_ms", sa.Double(), nullable=True),
        sa.Column("duration_hist", postgresql.ARRAY(sa.BigInteger()), nullable=True),
        sa.PrimaryKeyConstraint(
            "org_id",
            "bucket",
            "subsystem",
            "service_name",
            "operation",
            "agent_id",
            name=op.f("pk_span_red_1h"),
        ),
        comment="Span requests/errors/duration per 1h bucket; duration_hist is log-bucketed.",
    )
    op.create_table(
        "span_red_1m",
        sa.Column("bucket", sa.DateTime(timezone=True), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("subsystem", sa.Text(), server_default=sa.text("'SYSTEM'"), nullable=False),
        sa.Column("service_name", sa.Text(), server_default=sa.text("''"), nullable=False),
        sa.Column("operation", sa.Text(), server_default=sa.text("''"), nullable=False),
        sa.Column("agent_id", sa.Text(), server_default=sa.text("''"), nullable=False),
        sa.Column("span_count", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("error_count", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("duration_sum_ms", sa.Double(), server_default=sa.text("0"), nullable=False),
        sa.Column("duration_min_ms", sa.Double(), nullable=True),
        sa.Column("duration_max_ms", sa.Double(), nullable=True),
        sa.Column("duration_hist", postgresql.ARRAY(sa.BigInteger()), nullable=True),
        sa.PrimaryKeyConstraint(
            "org_id",
            "bucket",
            "subsystem",
            "service_name",
            "operation",
            "agent_id",
            name=op.f("pk_span_red_1m"),
        ),
        comment="Span requests/errors/duration per 1m bucket; duration_hist is log-bucketed.",
    )
    op.create_table(
        "spans",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("trace_id", sa.LargeBinary(), nullable=False),
        sa.Column("span_id", sa.LargeBinary(), nullable=False),
        sa.Column("parent_span_id", sa.LargeBinary(), nullable=True),
        sa.Column("trace_state", sa.Text(), nullable=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("kind", sa.SmallInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("start_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_ms", sa.Double(), nullable=False),
        sa.Column("status_code", sa.SmallInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("status_message", sa.Text(), nullable=True),
        sa.Column("subsystem", sa.Text(), server_default=sa.text("'SYSTEM'"), nullable=False),
        sa.Column("service_name", sa.Text(), nullable=True),
        sa.Column("agent_id", sa.Text(), nullable=True),
        sa.Column("fleet_id", sa.Text(), nullable=True),
        sa.Column("task_run_id", sa.Text(), nullable=True),
        sa.Column("gen_ai_operation", sa.Text(), nullable=True),
        sa.Column("gen_ai_provider", sa.Text(), nullable=True),
        sa.Column("gen_ai_model", sa.Text(), nullable=True),
        sa.Column("input_tokens", sa.BigInteger(), nullable=True),
        sa.Column("output_tokens", sa.BigInteger(), nullable=True),
        sa.Column("scope_name", sa.Text(), nullable=True),
        sa.Column(
            "attributes",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "resource_attributes",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("links", postgresql.ARRAY(sa.LargeBinary()), nullable=True),
        sa.Column(
            "dropped_attributes_count", sa.Integer(), server_default=sa.text("0"), nullable=False
        ),
        sa.CheckConstraint(
            "subsystem IN ('MOSAIC', 'DAMN', 'UCE', 'SYSTEM')", name=op.f("ck_spans_subsystem")
        ),
        sa.CheckConstraint("status_code IN (0, 1, 2)", name=op.f("ck_spans_status_code")),
        sa.PrimaryKeyConstraint(
            "org_id", "trace_id", "span_id", "start_time", name=op.f("pk_spans")
        ),
        comment="OTLP spans; mapped attributes are columns, the rest stays in attributes (jsonb).",
        **_partition_by("spans"),
    )
    op.create_index(
        "ix_spans_org_service_start",
        "spans",
        ["org_id", "service_name", "start_time"],
        unique=False,
    )
    op.create_index("ix_spans_org_start", "spans", ["org_id", "start_time"], unique=False)
    op.create_index(
        "ix_spans_org_task_run",
        "spans",
        ["org_id", "task_run_id"],
        unique=False,
        postgresql_where=sa.text("task_run_id IS NOT NULL"),
    )
    op.create_table(
        "traces",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("trace_id", sa.LargeBinary(), nullable=False),
        sa.Column("start_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_ms", sa.Double(), nullable=False),
        sa.Column("span_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("error_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("root_service_name", sa.Text(), nullable=True),
        sa.Column("root_span_name", sa.Text(), nullable=True),
        sa.Column("task_run_id", sa.Text(), nullable=True),
        sa.Column("sampled", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.PrimaryKeyConstraint("org_id", "trace_id", name=op.f("pk_traces")),
        comment="One summary per trace (start, end, counts, root); status is error if error_count > 0.",
    )
    op.create_index("ix_traces_org_start", "traces", ["org_id", "start_time"], unique=False)
    op.create_table(
        "agents",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("agent_id", sa.Text(), nullable=False),
        sa.Column("fleet_id", sa.Text(), nullable=True),
        sa.Column("name", sa.Text(), server_default=sa.text("''"), nullable=False),
        sa.Column("subsystem", sa.Text(), server_default=sa.text("'SYSTEM'"), nullable=False),
        sa.Column("status", sa.Text(), server_default=sa.text("'online'"), nullable=False),
        sa.Column("last_heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Text(), nullable=True),
        sa.Column("service_name", sa.Text(), nullable=True),
        sa.Column(
            "resource_attributes",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "status IN ('online', 'offline', 'degraded')", name=op.f("ck_agents_status")
        ),
        sa.CheckConstraint(
            "subsystem IN ('MOSAIC', 'DAMN', 'UCE', 'SYSTEM')", name=op.f("ck_agents_subsystem")
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_agents_org_id_orgs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("org_id", "agent_id", name=op.f("pk_agents")),
        comment="Agents, upserted from OTLP resources; version gives version skew.",
    )
    op.create_index("ix_agents_org_fleet", "agents", ["org_id", "fleet_id"], unique=False)
    op.create_index("ix_agents_org_status", "agents", ["org_id", "status"], unique=False)
    op.create_table(
        "alert_rules",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("severity", sa.Text(), server_default=sa.text("'warning'"), nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column(
            "params",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "severity IN ('info', 'warning', 'critical')", name=op.f("ck_alert_rules_severity")
        ),
        sa.CheckConstraint(
            "type IN ('threshold', 'budget', 'heartbeat', 'anomaly')",
            name=op.f("ck_alert_rules_type"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_alert_rules_org_id_orgs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_rules")),
        comment="Alert rules: params hold metric, window, threshold and comparator.",
    )
    op.create_index(
        "ix_alert_rules_org_enabled", "alert_rules", ["org_id", "enabled"], unique=False
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("prefix", sa.Text(), nullable=False),
        sa.Column("key_hash", sa.LargeBinary(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), server_default=sa.text("''"), nullable=False),
        sa.Column(
            "require_signature", sa.Boolean(), server_default=sa.text("false"), nullable=False
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "role IN ('ingest', 'admin', 'member', 'alias_admin', 'alias_support')",
            name=op.f("ck_api_keys_role"),
        ),
        sa.CheckConstraint("octet_length(key_hash) = 32", name=op.f("ck_api_keys_sha256")),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_api_keys_org_id_orgs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("prefix", name=op.f("uq_api_keys_prefix")),
        comment="Machine credentials: only the SHA-256 of the secret is stored; prefix identifies.",
    )
    op.create_index("ix_api_keys_org_created", "api_keys", ["org_id", "created_at"], unique=False)
    op.create_table(
        "db_role_orgs",
        sa.Column("role_name", sa.Text(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_db_role_orgs_org_id_orgs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("role_name", name=op.f("pk_db_role_orgs")),
        comment="Login roles pinned to one org (Grafana data sources); RLS reads it by session_user.",
    )
    op.create_table(
        "fleets",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("fleet_id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), server_default=sa.text("''"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_fleets_org_id_orgs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("org_id", "fleet_id", name=op.f("pk_fleets")),
        comment="Groups of agents; fleet_id is aeos.fleet.id from the resource.",
    )
    op.create_table(
        "notification_endpoints",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("email", sa.Text(), nullable=True),
        sa.Column("secret", sa.Text(), nullable=True),
        sa.Column("enabled", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "(kind = 'webhook' AND url IS NOT NULL) OR (kind = 'email' AND email IS NOT NULL)",
            name=op.f("ck_notification_endpoints_target"),
        ),
        sa.CheckConstraint(
            "kind IN ('webhook', 'email')", name=op.f("ck_notification_endpoints_kind")
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["orgs.id"],
            name=op.f("fk_notification_endpoints_org_id_orgs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_endpoints")),
        comment="Where notifications go besides the in-app inbox (webhooks, email).",
    )
    op.create_index(
        "ix_notification_endpoints_org_enabled",
        "notification_endpoints",
        ["org_id", "enabled"],
        unique=False,
    )
    op.create_table(
        "notifications",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("severity", sa.Text(), server_default=sa.text("'info'"), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("rule_id", sa.Uuid(), nullable=True),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "severity IN ('info', 'warning', 'critical')", name=op.f("ck_notifications_severity")
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_notifications_org_id_orgs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
        comment="In-app inbox: alert.firing, alert.resolved, system.notice.",
    )
    op.create_index(
        "ix_notifications_org_created", "notifications", ["org_id", "created_at"], unique=False
    )
    op.create_table(
        "task_runs",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("task_run_id", sa.Text(), nullable=False),
        sa.Column("task_id", sa.Text(), nullable=True),
        sa.Column("agent_id", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), server_default=sa.text("'running'"), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("duration_ms", sa.Double(), nullable=True),
        sa.Column("trace_id", sa.LargeBinary(), nullable=True),
        sa.Column(
            "cost_usd",
            sa.Numeric(precision=20, scale=10),
            server_default=sa.text("0"),
            nullable=False,
        ),
        sa.Column(
            "attributes",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'succeeded', 'failed', 'canceled')",
            name=op.f("ck_task_runs_status"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_task_runs_org_id_orgs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("org_id", "task_run_id", name=op.f("pk_task_runs")),
        comment="Executions of a task (spans carrying mosaic.task_run.id).",
    )
    op.create_index("ix_task_runs_org_created", "task_runs", ["org_id", "created_at"], unique=False)
    op.create_index(
        "ix_task_runs_org_status_created",
        "task_runs",
        ["org_id", "status", "created_at"],
        unique=False,
    )
    op.create_index("ix_task_runs_org_trace", "task_runs", ["org_id", "trace_id"], unique=False)
    op.create_table(
        "tasks",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("task_id", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_tasks_org_id_orgs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("org_id", "task_id", name=op.f("pk_tasks")),
        comment="Units of work requested of the platform (mosaic.task.id).",
    )
    op.create_index("ix_tasks_org_created", "tasks", ["org_id", "created_at"], unique=False)
    op.create_table(
        "users",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("workos_user_id", sa.Text(), nullable=True),
        sa.Column("email", sa.Text(), nullable=False),
        sa.Column("org_role", sa.Text(), server_default=sa.text("'member'"), nullable=False),
        sa.Column("system_role", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("org_role IN ('admin', 'member')", name=op.f("ck_users_org_role")),
        sa.CheckConstraint(
            "system_role IS NULL OR system_role IN ('alias_admin', 'alias_support')",
            name=op.f("ck_users_system_role"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_users_org_id_orgs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("workos_user_id", name=op.f("uq_users_workos_user_id")),
        comment="People (from WorkOS); system_role grants ALIAS staff access across orgs.",
    )
    op.create_index("ix_users_org_email", "users", ["org_id", "email"], unique=True)
    op.create_table(
        "alert_states",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("rule_id", sa.Uuid(), nullable=False),
        sa.Column("state", sa.Text(), server_default=sa.text("'ok'"), nullable=False),
        sa.Column("is_firing", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("last_evaluated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_value", sa.Double(), nullable=True),
        sa.CheckConstraint(
            "state IN ('ok', 'pending', 'firing', 'no_data')", name=op.f("ck_alert_states_state")
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_alert_states_org_id_orgs"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["rule_id"],
            ["alert_rules.id"],
            name=op.f("fk_alert_states_rule_id_alert_rules"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("org_id", "rule_id", name=op.f("pk_alert_states")),
        comment="Current state of each rule (one row per rule).",
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("endpoint_id", sa.Uuid(), nullable=False),
        sa.Column("notification_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.Text(), server_default=sa.text("'pending'"), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("response_code", sa.SmallInteger(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'delivered', 'failed')",
            name=op.f("ck_webhook_deliveries_status"),
        ),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["notification_endpoints.id"],
            name=op.f("fk_webhook_deliveries_endpoint_id_notification_endpoints"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["notification_id"],
            ["notifications.id"],
            name=op.f("fk_webhook_deliveries_notification_id_notifications"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["orgs.id"],
            name=op.f("fk_webhook_deliveries_org_id_orgs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
        comment="Each webhook delivery and its retries.",
    )
    op.create_index(
        "ix_webhook_deliveries_due",
        "webhook_deliveries",
        ["next_attempt_at"],
        unique=False,
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        "ix_webhook_deliveries_org_created",
        "webhook_deliveries",
        ["org_id", "created_at"],
        unique=False,
    )


def downgrade() -> None:
    raise NotImplementedError("migrations are forward-only")
