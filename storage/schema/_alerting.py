"""Alert rules, their state and evaluations, notifications and where they go."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Double,
    ForeignKey,
    Integer,
    PrimaryKeyConstraint,
    SmallInteger,
    Table,
    Text,
    Uuid,
    text,
)

from storage.schema._base import (
    created_at,
    indexed,
    jsonb,
    metadata,
    one_of,
    org_id_column,
    ts,
)

SEVERITIES = ("info", "warning", "critical")
RULE_TYPES = ("threshold", "budget", "heartbeat", "anomaly")
ALERT_STATES = ("ok", "pending", "firing", "no_data")
ENDPOINT_KINDS = ("webhook", "email")
DELIVERY_STATUSES = ("pending", "delivered", "failed")


def _uuid_pk() -> Column[object]:
    return Column(
        "id", Uuid(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()")
    )


alert_rules = Table(
    "alert_rules",
    metadata,
    _uuid_pk(),
    org_id_column(),
    Column("name", Text, nullable=False),
    Column("enabled", Boolean, nullable=False, server_default=text("true")),
    Column("severity", Text, nullable=False, server_default=text("'warning'")),
    Column("type", Text, nullable=False),
    jsonb("params"),
    created_at(),
    ts("updated_at", nullable=True),
    CheckConstraint(one_of("severity", SEVERITIES), name="severity"),
    CheckConstraint(one_of("type", RULE_TYPES), name="type"),
    indexed(
        "ix_alert_rules_org_enabled", "org_id", "enabled", serves="rules to evaluate for an org"
    ),
    comment="Alert rules: params hold metric, window, threshold and comparator.",
)

alert_states = Table(
    "alert_states",
    metadata,
    org_id_column(),
    Column(
        "rule_id",
        Uuid(as_uuid=True),
        ForeignKey("alert_rules.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("state", Text, nullable=False, server_default=text("'ok'")),
    Column("is_firing", Boolean, nullable=False, server_default=text("false")),
    ts("last_evaluated_at", nullable=True),
    ts("last_changed_at", nullable=True),
    Column("last_value", Double, nullable=True),
    PrimaryKeyConstraint("org_id", "rule_id"),
    CheckConstraint(one_of("state", ALERT_STATES), name="state"),
    comment="Current state of each rule (one row per rule).",
)

alert_evaluations = Table(
    "alert_evaluations",
    metadata,
    org_id_column(fk=False),
    Column("rule_id", Uuid(as_uuid=True), nullable=False),
    ts("time"),
    Column("state", Text, nullable=False),
    Column("value", Double, nullable=True),
    jsonb("details"),
    PrimaryKeyConstraint("org_id", "rule_id", "time"),
    CheckConstraint(one_of("state", ALERT_STATES), name="state"),
    comment="Every evaluation of every rule (history for the Anomalies view).",
)

notification_endpoints = Table(
    "notification_endpoints",
    metadata,
    _uuid_pk(),
    org_id_column(),
    Column("kind", Text, nullable=False),
    Column("url", Text, nullable=True),
    Column("email", Text, nullable=True),
    Column("secret", Text, nullable=True),
    Column("enabled", Boolean, nullable=False, server_default=text("true")),
    created_at(),
    CheckConstraint(one_of("kind", ENDPOINT_KINDS), name="kind"),
    CheckConstraint(
        "(kind = 'webhook' AND url IS NOT NULL) OR (kind = 'email' AND email IS NOT NULL)",
        name="target",
    ),
    indexed(
        "ix_notification_endpoints_org_enabled",
        "org_id",
        "enabled",
        serves="endpoints to notify for an org",
    ),
    comment="Where notifications go besides the in-app inbox (webhooks, email).",
)

notifications = Table(
    "notifications",
    metadata,
    _uuid_pk(),
    org_id_column(),
    created_at(),
    Column("type", Text, nullable=False),
    Column("severity", Text, nullable=False, server_default=text("'info'")),
    Column("title", Text, nullable=False),
    Column("body", Text, nullable=True),
    Column("rule_id", Uuid(as_uuid=True), nullable=True),
    ts("read_at", nullable=True),
    CheckConstraint(one_of("severity", SEVERITIES), name="severity"),
    indexed(
        "ix_notifications_org_created",
        "org_id",
        "created_at",
        serves="in-app inbox, newest first",
    ),
    comment="In-app inbox: alert.firing, alert.resolved, system.notice.",
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    _uuid_pk(),
    org_id_column(),
    Column(
        "endpoint_id",
        Uuid(as_uuid=True),
        ForeignKey("notification_endpoints.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column(
        "notification_id",
        Uuid(as_uuid=True),
        ForeignKey("notifications.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("status", Text, nullable=False, server_default=text("'pending'")),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("response_code", SmallInteger, nullable=True),
    Column("error", Text, nullable=True),
    created_at(),
    ts("next_attempt_at", nullable=True),
    ts("delivered_at", nullable=True),
    CheckConstraint(one_of("status", DELIVERY_STATUSES), name="status"),
    indexed(
        "ix_webhook_deliveries_due",
        "next_attempt_at",
        postgresql_where=text("status = 'pending'"),
        serves="deliveries due for a (re)try, across orgs (delivery worker)",
    ),
    indexed(
        "ix_webhook_deliveries_org_created",
        "org_id",
        "created_at",
        serves="delivery log of an org",
    ),
    comment="Each webhook delivery and its retries.",
)
