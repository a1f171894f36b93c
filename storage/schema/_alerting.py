"""Alert rules, their state and evaluations, notifications and where they go.

Shape as of migration 0014 (the alerting engine, ``alerting/``): rules carry their
evaluation timing (interval, ``for``, ``keep_firing_for``), NoData/Error choices, labels
and the next evaluation time that lets several processes share the work; states are per
rule *instance* (one per label set); grouping, silences and budget steps have tables of
their own; endpoints have kinds, formats, routes and rotating secrets; deliveries keep a
stable webhook id and the exact body they send.
"""

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
    UniqueConstraint,
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
RULE_SCOPES = ("org", "platform")
#: Instance states (Grafana's): Recovering is "within keep_firing_for".
ALERT_STATES = ("normal", "pending", "alerting", "recovering", "no_data", "error")
NO_DATA_CHOICES = ("no_data", "alerting", "normal", "keep_last")
ERROR_CHOICES = ("error", "alerting", "normal", "keep_last")
ENDPOINT_KINDS = ("webhook", "slack", "email", "alertmanager")
ENDPOINT_FORMATS = ("aeos", "alertmanager")
DELIVERY_STATUSES = ("pending", "delivered", "failed")


def _uuid_pk() -> Column[object]:
    return Column(
        "id", Uuid(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()")
    )


def _rule_fk() -> Column[object]:
    return Column(
        "rule_id",
        Uuid(as_uuid=True),
        ForeignKey("alert_rules.id", ondelete="CASCADE"),
        nullable=False,
    )


def _int(name: str, default: int) -> Column[object]:
    return Column(name, Integer, nullable=False, server_default=text(str(default)))


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
    Column("scope", Text, nullable=False, server_default=text("'org'")),
    _int("interval_s", 60),
    _int("for_s", 0),
    _int("keep_firing_for_s", 0),
    Column("no_data_state", Text, nullable=False, server_default=text("'no_data'")),
    Column("error_state", Text, nullable=False, server_default=text("'error'")),
    jsonb("labels"),
    jsonb("annotations"),
    ts("next_eval_at", nullable=True),
    CheckConstraint(one_of("severity", SEVERITIES), name="severity"),
    CheckConstraint(one_of("type", RULE_TYPES), name="type"),
    CheckConstraint(one_of("scope", RULE_SCOPES), name="scope"),
    CheckConstraint(one_of("no_data_state", NO_DATA_CHOICES), name="no_data_state"),
    CheckConstraint(one_of("error_state", ERROR_CHOICES), name="error_state"),
    CheckConstraint("interval_s >= 10 AND for_s >= 0 AND keep_firing_for_s >= 0", name="timing"),
    indexed(
        "ix_alert_rules_org_enabled", "org_id", "enabled", serves="rules to evaluate for an org"
    ),
    indexed(
        "ix_alert_rules_due",
        "next_eval_at",
        postgresql_where=text("enabled"),
        serves="rules due for evaluation, across orgs (evaluation claim)",
    ),
    comment="Alert rules: params hold the measure, window, threshold and comparator.",
)

alert_states = Table(
    "alert_states",
    metadata,
    org_id_column(),
    _rule_fk(),
    Column("fingerprint", Text, nullable=False, server_default=text("''")),
    jsonb("labels"),
    Column("state", Text, nullable=False, server_default=text("'normal'")),
    Column("is_firing", Boolean, nullable=False, server_default=text("false")),
    ts("last_evaluated_at", nullable=True),
    ts("last_changed_at", nullable=True),
    Column("last_value", Double, nullable=True),
    ts("active_at", nullable=True),
    ts("fired_at", nullable=True),
    ts("resolved_at", nullable=True),
    ts("breach_ended_at", nullable=True),
    Column("missed", SmallInteger, nullable=False, server_default=text("0")),
    Column("reason", Text, nullable=True),
    PrimaryKeyConstraint("org_id", "rule_id", "fingerprint"),
    CheckConstraint(one_of("state", ALERT_STATES), name="state"),
    indexed(
        "ix_alert_states_firing",
        "org_id",
        "fired_at",
        postgresql_where=text("is_firing"),
        serves="alerts firing in an org (overview count, incidents)",
    ),
    comment="Current state of each rule instance (one row per rule and label set).",
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
    # History written before migration 0014 keeps its state names.
    CheckConstraint(one_of("state", (*ALERT_STATES, "ok", "firing")), name="state"),
    comment="Every evaluation of every rule (history for the Anomalies view).",
)

alert_silences = Table(
    "alert_silences",
    metadata,
    _uuid_pk(),
    org_id_column(),
    Column("rule_id", Uuid(as_uuid=True), ForeignKey("alert_rules.id", ondelete="CASCADE")),
    jsonb("matchers"),
    ts("starts_at"),
    ts("ends_at"),
    Column("comment", Text, nullable=False, server_default=text("''")),
    Column("created_by", Text, nullable=False, server_default=text("''")),
    created_at(),
    CheckConstraint("ends_at > starts_at", name="period"),
    indexed(
        "ix_alert_silences_org_ends", "org_id", "ends_at", serves="silences in force for an org"
    ),
    comment="Silences: mute a rule, or instances whose labels match, until ends_at.",
)

alert_groups = Table(
    "alert_groups",
    metadata,
    org_id_column(),
    _rule_fk(),
    ts("first_change_at", nullable=True),
    ts("last_flush_at", nullable=True),
    Column("last_digest", Text, nullable=False, server_default=text("''")),
    ts("next_flush_at", nullable=True),
    PrimaryKeyConstraint("org_id", "rule_id"),
    indexed(
        "ix_alert_groups_due",
        "next_flush_at",
        postgresql_where=text("next_flush_at IS NOT NULL"),
        serves="notification groups due to flush (group_wait / group_interval / repeat)",
    ),
    comment="Notification grouping per rule, with Alertmanager's timers.",
)

alert_budget_marks = Table(
    "alert_budget_marks",
    metadata,
    org_id_column(),
    _rule_fk(),
    Column("period", Text, nullable=False),
    Column("step", Text, nullable=False),
    created_at(),
    PrimaryKeyConstraint("org_id", "rule_id", "period", "step"),
    comment="Budget ladder steps already notified: each step once per period.",
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
    Column("name", Text, nullable=False, server_default=text("''")),
    Column("format", Text, nullable=False, server_default=text("'aeos'")),
    jsonb("route"),
    Column("previous_secret", Text, nullable=True),
    ts("previous_secret_until", nullable=True),
    ts("failing_since", nullable=True),
    Column("disabled_reason", Text, nullable=True),
    ts("updated_at", nullable=True),
    CheckConstraint(one_of("kind", ENDPOINT_KINDS), name="kind"),
    CheckConstraint(one_of("format", ENDPOINT_FORMATS), name="format"),
    CheckConstraint(
        "(kind <> 'email' AND url IS NOT NULL) OR (kind = 'email' AND email IS NOT NULL)",
        name="target",
    ),
    indexed(
        "ix_notification_endpoints_org_enabled",
        "org_id",
        "enabled",
        serves="endpoints to notify for an org",
    ),
    comment=(
        "Where notifications go besides the in-app inbox (webhook, Slack, email, Alertmanager)."
    ),
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
    Column("dedup_key", Text, nullable=True),
    jsonb("labels"),
    jsonb("details"),
    CheckConstraint(one_of("severity", SEVERITIES), name="severity"),
    UniqueConstraint("org_id", "dedup_key"),
    indexed(
        "ix_notifications_org_created",
        "org_id",
        "created_at",
        serves="in-app inbox, newest first",
    ),
    comment="In-app inbox: alert.firing, alert.resolved, budget.*, system.notice.",
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
    Column(
        "webhook_id",
        Text,
        nullable=False,
        server_default=text("('msg_'::text || gen_random_uuid())"),
    ),
    ts("last_attempt_at", nullable=True),
    CheckConstraint(one_of("status", DELIVERY_STATUSES), name="status"),
    UniqueConstraint("endpoint_id", "notification_id"),
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
    comment="Each delivery of a notification to an endpoint, and its retries.",
)
