"""Raw telemetry: traces, spans, events, metric points and cost line items.

These are the high-volume, short-retention tables. On TimescaleDB they are hypertables;
``traces`` is the exception: one summary row per trace, updated as its spans arrive in
any order, keyed by ``(org_id, trace_id)`` so that a late early span cannot split it;
on plain PostgreSQL they are range-partitioned by their time column (see
``storage.schema.PARTITIONED``). Every unique key includes the time column because both
engines require it, and every unique key doubles as the de-duplication key for retried
OTLP exports. They carry no foreign key to ``orgs``: a per-row check would slow bulk COPY,
and ``org_id`` comes only from an authenticated ingest key.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Double,
    Integer,
    LargeBinary,
    Numeric,
    PrimaryKeyConstraint,
    SmallInteger,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY

from storage.schema._base import SUBSYSTEMS, indexed, jsonb, metadata, one_of, org_id_column, ts

COST_SOURCES = ("explicit", "priced", "unpriced")
METRIC_KINDS = ("gauge", "sum", "histogram", "exponential_histogram", "summary")


def _subsystem() -> Column[str]:
    return Column("subsystem", Text, nullable=False, server_default=text("'SYSTEM'"))


def _opt_text(name: str) -> Column[str]:
    return Column(name, Text, nullable=True)


traces = Table(
    "traces",
    metadata,
    org_id_column(fk=False),
    Column("trace_id", LargeBinary, nullable=False),
    ts("start_time"),
    ts("end_time"),
    Column("duration_ms", Double, nullable=False),
    Column("span_count", Integer, nullable=False, server_default=text("0")),
    Column("error_count", Integer, nullable=False, server_default=text("0")),
    _opt_text("root_service_name"),
    _opt_text("root_span_name"),
    _opt_text("task_run_id"),
    # Whether the trace's spans are kept past the full-fidelity window (storage.jobs.sampling):
    # decided at ingest; spans_pruned_at is when the sampling sweep deleted its spans.
    Column("sampled", Boolean, nullable=False, server_default=text("true")),
    ts("spans_pruned_at", nullable=True),
    PrimaryKeyConstraint("org_id", "trace_id"),
    indexed("ix_traces_org_start", "org_id", "start_time", serves="trace search by time range"),
    indexed("ix_traces_trace_id", "trace_id", serves="trace by id across orgs (staff)"),
    indexed("ix_traces_start", "start_time", serves="trace search across orgs (staff)"),
    indexed(
        "ix_traces_unsampled_end",
        "end_time",
        postgresql_where=text("NOT sampled AND spans_pruned_at IS NULL"),
        serves="sampling sweep: unsampled traces not yet pruned, oldest end first (all orgs)",
    ),
    comment="One summary per trace (start, end, counts, root); status is error if error_count > 0.",
)

spans = Table(
    "spans",
    metadata,
    org_id_column(fk=False),
    Column("trace_id", LargeBinary, nullable=False),
    Column("span_id", LargeBinary, nullable=False),
    Column("parent_span_id", LargeBinary, nullable=True),
    _opt_text("trace_state"),
    Column("name", Text, nullable=False),
    Column("kind", SmallInteger, nullable=False, server_default=text("0")),
    ts("start_time"),
    ts("end_time"),
    Column("duration_ms", Double, nullable=False),
    Column("status_code", SmallInteger, nullable=False, server_default=text("0")),
    _opt_text("status_message"),
    _subsystem(),
    _opt_text("service_name"),
    _opt_text("agent_id"),
    _opt_text("fleet_id"),
    _opt_text("task_run_id"),
    _opt_text("gen_ai_operation"),
    _opt_text("gen_ai_provider"),
    _opt_text("gen_ai_model"),
    Column("input_tokens", BigInteger, nullable=True),
    Column("output_tokens", BigInteger, nullable=True),
    _opt_text("scope_name"),
    jsonb("attributes"),
    jsonb("resource_attributes"),
    Column("links", ARRAY(LargeBinary), nullable=True),
    Column("dropped_attributes_count", Integer, nullable=False, server_default=text("0")),
    PrimaryKeyConstraint("org_id", "trace_id", "span_id", "start_time"),
    CheckConstraint("status_code IN (0, 1, 2)", name="status_code"),
    CheckConstraint(one_of("subsystem", SUBSYSTEMS), name="subsystem"),
    indexed("ix_spans_org_start", "org_id", "start_time", serves="span search by time range"),
    indexed(
        "ix_spans_org_service_start",
        "org_id",
        "service_name",
        "start_time",
        serves="span search by service (Tempo-style service filter)",
    ),
    indexed(
        "ix_spans_org_task_run",
        "org_id",
        "task_run_id",
        postgresql_where=text("task_run_id IS NOT NULL"),
        serves="spans of a task run (task run drill-down)",
    ),
    comment="OTLP spans; mapped attributes are columns, the rest stays in attributes (jsonb).",
)

events = Table(
    "events",
    metadata,
    org_id_column(fk=False),
    ts("time"),
    Column("event_id", LargeBinary, nullable=False),
    ts("observed_time", nullable=True),
    Column("severity", Text, nullable=False, server_default=text("'info'")),
    Column("severity_number", SmallInteger, nullable=False, server_default=text("0")),
    _subsystem(),
    Column("event_type", Text, nullable=False, server_default=text("''")),
    _opt_text("agent_id"),
    _opt_text("fleet_id"),
    _opt_text("task_run_id"),
    Column("trace_id", LargeBinary, nullable=True),
    Column("span_id", LargeBinary, nullable=True),
    _opt_text("service_name"),
    _opt_text("message"),
    jsonb("payload"),
    jsonb("resource_attributes"),
    PrimaryKeyConstraint("org_id", "event_id", "time"),
    CheckConstraint(
        one_of("severity", ("debug", "info", "warn", "error", "fatal")), name="severity"
    ),
    CheckConstraint(one_of("subsystem", SUBSYSTEMS), name="subsystem"),
    indexed("ix_events_org_time", "org_id", "time", serves="event timeline of an org"),
    indexed(
        "ix_events_org_severity_time",
        "org_id",
        "severity",
        "time",
        serves="event timeline filtered by severity",
    ),
    indexed(
        "ix_events_org_agent_time",
        "org_id",
        "agent_id",
        "time",
        serves="event timeline of one agent",
    ),
    indexed(
        "ix_events_org_trace_time",
        "org_id",
        "trace_id",
        "time",
        postgresql_where=text("trace_id IS NOT NULL"),
        serves="span events and logs of a trace (trace view)",
    ),
    comment="OTLP log records and span events; event_id is a content hash (dedupes retries).",
)

metric_points = Table(
    "metric_points",
    metadata,
    org_id_column(fk=False),
    Column("metric", Text, nullable=False),
    Column("series_id", LargeBinary, nullable=False),
    ts("time"),
    ts("start_time", nullable=True),
    Column("kind", Text, nullable=False),
    Column("temporality", SmallInteger, nullable=False, server_default=text("0")),
    Column("is_monotonic", Boolean, nullable=False, server_default=text("false")),
    Column("unit", Text, nullable=False, server_default=text("''")),
    Column("value", Double, nullable=True),
    Column("count", BigInteger, nullable=True),
    Column("sum", Double, nullable=True),
    Column("min", Double, nullable=True),
    Column("max", Double, nullable=True),
    Column("explicit_bounds", ARRAY(Double), nullable=True),
    Column("bucket_counts", ARRAY(BigInteger), nullable=True),
    Column("exp_scale", Integer, nullable=True),
    Column("exp_zero_count", BigInteger, nullable=True),
    Column("exp_positive_offset", Integer, nullable=True),
    Column("exp_positive_counts", ARRAY(BigInteger), nullable=True),
    Column("exp_negative_offset", Integer, nullable=True),
    Column("exp_negative_counts", ARRAY(BigInteger), nullable=True),
    _subsystem(),
    _opt_text("service_name"),
    _opt_text("agent_id"),
    jsonb("attributes"),
    jsonb("resource_attributes"),
    PrimaryKeyConstraint("org_id", "metric", "series_id", "time"),
    CheckConstraint(one_of("kind", METRIC_KINDS), name="kind"),
    CheckConstraint(one_of("subsystem", SUBSYSTEMS), name="subsystem"),
    indexed(
        "ix_metric_points_org_time", "org_id", "time", serves="all metrics of an org in a window"
    ),
    comment="OTLP data points; series_id hashes metric + resource + point attributes.",
)

cost_line_items = Table(
    "cost_line_items",
    metadata,
    org_id_column(fk=False),
    ts("time"),
    Column("trace_id", LargeBinary, nullable=False),
    Column("span_id", LargeBinary, nullable=False),
    _opt_text("task_run_id"),
    _opt_text("agent_id"),
    _subsystem(),
    Column("provider", Text, nullable=False, server_default=text("''")),
    Column("model", Text, nullable=False, server_default=text("''")),
    Column("tokens_in", BigInteger, nullable=False, server_default=text("0")),
    Column("tokens_out", BigInteger, nullable=False, server_default=text("0")),
    Column("cache_read_tokens", BigInteger, nullable=False, server_default=text("0")),
    Column("cache_creation_tokens", BigInteger, nullable=False, server_default=text("0")),
    Column("cost_usd", Numeric(20, 10), nullable=False),
    Column("cost_source", Text, nullable=False),
    Column("price_id", BigInteger, nullable=True),
    PrimaryKeyConstraint("org_id", "trace_id", "span_id", "time"),
    CheckConstraint(one_of("cost_source", COST_SOURCES), name="cost_source"),
    CheckConstraint(one_of("subsystem", SUBSYSTEMS), name="subsystem"),
    indexed("ix_cost_line_items_org_time", "org_id", "time", serves="cost breakdown of an org"),
    indexed(
        "ix_cost_line_items_org_task_run",
        "org_id",
        "task_run_id",
        postgresql_where=text("task_run_id IS NOT NULL"),
        serves="cost of a task run",
    ),
    comment="One LLM call's cost: priced from model_prices, or an explicit cost attribute.",
)

platform_health = Table(
    "platform_health",
    metadata,
    ts("time"),
    Column("instance", Text, nullable=False),
    Column("signal", Text, nullable=False),
    Column("accepted", BigInteger, nullable=False, server_default=text("0")),
    Column("rejected", BigInteger, nullable=False, server_default=text("0")),
    Column("refused", BigInteger, nullable=False, server_default=text("0")),
    Column("requests", BigInteger, nullable=False, server_default=text("0")),
    Column("queue_items", BigInteger, nullable=False, server_default=text("0")),
    Column("commits", BigInteger, nullable=False, server_default=text("0")),
    Column("commit_seconds_sum", Double, nullable=False, server_default=text("0")),
    Column("commit_seconds_max", Double, nullable=False, server_default=text("0")),
    PrimaryKeyConstraint("time", "instance", "signal"),
    comment="Receiver self-telemetry per process and signal, one row a minute (Platform Health).",
)
