"""The alerting engine: rule timing and choices, per-instance states, grouping, silences,
budget steps, endpoint kinds and rotating secrets, durable deliveries.

- ``alert_rules``: ``scope`` (``org``: evaluated as the org's tenant; ``platform``: a
  staff rule read with the support role over the platform rollups), ``interval_s``,
  ``for_s``, ``keep_firing_for_s``, ``no_data_state`` / ``error_state`` (what NoData and
  Error do: their own state, Alerting, Normal or keep the last state), ``labels``,
  ``annotations`` and ``next_eval_at``, the per-rule time a process claims with
  ``FOR UPDATE SKIP LOCKED`` so that several processes evaluate each rule once per tick.
- ``alert_states``: one row per rule *instance* (``fingerprint`` of its labels), with
  Grafana's states; old rows are mapped (``ok`` -> ``normal``, ``firing`` -> ``alerting``).
- ``alert_evaluations``: the state check follows, and still admits the old names so
  that history already stored is kept as it is (never rewritten, never lost).
- New: ``alert_silences`` (tenant-writable), ``alert_groups`` (Alertmanager timers per
  rule) and ``alert_budget_marks`` (ladder steps notified per period), both worker-written.
- ``notification_endpoints``: kinds ``webhook``, ``slack``, ``email``, ``alertmanager``;
  ``format`` (``aeos`` or ``alertmanager`` v4 body), ``route``, a previous secret kept
  until a time (both signatures are sent during a rotation), failure bookkeeping.
- ``notifications``: ``dedup_key`` (unique per org: two processes cannot notify twice),
  ``labels``, ``details``. ``webhook_deliveries``: a stable ``webhook_id`` (the Standard
  Webhooks ``webhook-id``, the same on every retry), one delivery per endpoint and
  notification.

Revision ID: 0014
Revises: 0008
Create Date: 2026-12-01 20:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_STATES = "'normal', 'pending', 'alerting', 'recovering', 'no_data', 'error'"

_INDEX_COMMENTS = {
    "ix_alert_rules_due": "rules due for evaluation, across orgs (evaluation claim)",
    "ix_alert_states_firing": "alerts firing in an org (overview count, incidents)",
    "ix_alert_silences_org_ends": "silences in force for an org",
    "ix_alert_groups_due": "notification groups due to flush (group_wait / group_interval / repeat)",
    "pk_alert_states": "current state of a rule instance; all instances of a rule",
    "pk_alert_silences": "silence by id",
    "pk_alert_groups": "grouping state of a rule",
    "pk_alert_budget_marks": "budget step already notified in a period (once per step)",
    "uq_notifications_org_id_dedup_key": "one notification per dedup key (several processes)",
    "uq_webhook_deliveries_endpoint_id_notification_id": "one delivery per endpoint and notification",
}


def _jsonb(name: str) -> sa.Column[object]:
    return sa.Column(
        name,
        postgresql.JSONB(astext_type=sa.Text()),
        server_default=sa.text("'{}'::jsonb"),
        nullable=False,
    )


def _ts(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=True)


def _int(name: str, default: int) -> sa.Column[object]:
    return sa.Column(name, sa.Integer(), server_default=sa.text(str(default)), nullable=False)


def _text(name: str, default: str) -> sa.Column[object]:
    return sa.Column(name, sa.Text(), server_default=sa.text(f"'{default}'"), nullable=False)


def _rules() -> None:
    for column in (
        _text("scope", "org"),
        _int("interval_s", 60),
        _int("for_s", 0),
        _int("keep_firing_for_s", 0),
        _text("no_data_state", "no_data"),
        _text("error_state", "error"),
        _jsonb("labels"),
        _jsonb("annotations"),
        _ts("next_eval_at"),
    ):
        op.add_column("alert_rules", column)
    checks = {
        "scope": "scope IN ('org', 'platform')",
        "no_data_state": "no_data_state IN ('no_data', 'alerting', 'normal', 'keep_last')",
        "error_state": "error_state IN ('error', 'alerting', 'normal', 'keep_last')",
        "timing": "interval_s >= 10 AND for_s >= 0 AND keep_firing_for_s >= 0",
    }
    for name, check in checks.items():
        op.create_check_constraint(op.f(f"ck_alert_rules_{name}"), "alert_rules", check)
    op.create_index(
        "ix_alert_rules_due", "alert_rules", ["next_eval_at"], postgresql_where=sa.text("enabled")
    )
    op.create_table_comment(
        "alert_rules", "Alert rules: params hold the measure, window, threshold and comparator."
    )


def _states() -> None:
    op.drop_constraint(op.f("ck_alert_states_state"), "alert_states", type_="check")
    op.drop_constraint(op.f("pk_alert_states"), "alert_states", type_="primary")
    op.add_column("alert_states", _text("fingerprint", ""))
    op.add_column("alert_states", _jsonb("labels"))
    for name in ("active_at", "fired_at", "resolved_at", "breach_ended_at"):
        op.add_column("alert_states", _ts(name))
    op.add_column(
        "alert_states",
        sa.Column("missed", sa.SmallInteger(), server_default=sa.text("0"), nullable=False),
    )
    op.add_column("alert_states", sa.Column("reason", sa.Text(), nullable=True))
    op.execute(
        "UPDATE alert_states SET state = CASE state WHEN 'ok' THEN 'normal' "
        "WHEN 'firing' THEN 'alerting' ELSE state END"
    )
    op.alter_column("alert_states", "state", server_default=sa.text("'normal'"))
    op.create_primary_key(
        op.f("pk_alert_states"), "alert_states", ["org_id", "rule_id", "fingerprint"]
    )
    op.create_check_constraint(
        op.f("ck_alert_states_state"), "alert_states", f"state IN ({_STATES})"
    )
    op.create_index(
        "ix_alert_states_firing",
        "alert_states",
        ["org_id", "fired_at"],
        postgresql_where=sa.text("is_firing"),
    )
    op.create_table_comment(
        "alert_states", "Current state of each rule instance (one row per rule and label set)."
    )
    op.drop_constraint(op.f("ck_alert_evaluations_state"), "alert_evaluations", type_="check")
    # History written before this revision keeps its state names ('ok', 'firing').
    op.create_check_constraint(
        op.f("ck_alert_evaluations_state"),
        "alert_evaluations",
        f"state IN ({_STATES}, 'ok', 'firing')",
    )


def _tenant_table(table: str) -> None:
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY tenant_own_org ON {table} FOR ALL TO aeos_tenant "
        "USING (org_id = (SELECT aeos_current_org())) "
        "WITH CHECK (org_id = (SELECT aeos_current_org()))"
    )
    op.execute(
        f"CREATE POLICY service_all_orgs ON {table} FOR ALL "
        "TO aeos_ingest, aeos_worker, aeos_staff USING (true) WITH CHECK (true)"
    )
    op.execute(f"CREATE POLICY support_read ON {table} FOR SELECT TO aeos_support USING (true)")
    op.execute(f"GRANT SELECT ON {table} TO aeos_tenant, aeos_staff, aeos_support, aeos_worker")


def _org_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["org_id"], ["orgs.id"], name=op.f(f"fk_{table}_org_id_orgs"), ondelete="CASCADE"
    )


def _rule_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["rule_id"],
        ["alert_rules.id"],
        name=op.f(f"fk_{table}_rule_id_alert_rules"),
        ondelete="CASCADE",
    )


def _new_tables() -> None:
    op.create_table(
        "alert_silences",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("rule_id", sa.Uuid(), nullable=True),
        _jsonb("matchers"),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        _text("comment", ""),
        _text("created_by", ""),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("ends_at > starts_at", name=op.f("ck_alert_silences_period")),
        _org_fk("alert_silences"),
        _rule_fk("alert_silences"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_silences")),
        comment="Silences: mute a rule, or instances whose labels match, until ends_at.",
    )
    op.create_index("ix_alert_silences_org_ends", "alert_silences", ["org_id", "ends_at"])
    op.create_table(
        "alert_groups",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("rule_id", sa.Uuid(), nullable=False),
        _ts("first_change_at"),
        _ts("last_flush_at"),
        _text("last_digest", ""),
        _ts("next_flush_at"),
        _org_fk("alert_groups"),
        _rule_fk("alert_groups"),
        sa.PrimaryKeyConstraint("org_id", "rule_id", name=op.f("pk_alert_groups")),
        comment="Notification grouping per rule, with Alertmanager's timers.",
    )
    op.create_index(
        "ix_alert_groups_due",
        "alert_groups",
        ["next_flush_at"],
        postgresql_where=sa.text("next_flush_at IS NOT NULL"),
    )
    op.create_table(
        "alert_budget_marks",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("rule_id", sa.Uuid(), nullable=False),
        sa.Column("period", sa.Text(), nullable=False),
        sa.Column("step", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        _org_fk("alert_budget_marks"),
        _rule_fk("alert_budget_marks"),
        sa.PrimaryKeyConstraint(
            "org_id", "rule_id", "period", "step", name=op.f("pk_alert_budget_marks")
        ),
        comment="Budget ladder steps already notified: each step once per period.",
    )
    for table in ("alert_silences", "alert_groups", "alert_budget_marks"):
        _tenant_table(table)
    op.execute("GRANT INSERT, UPDATE, DELETE ON alert_silences TO aeos_tenant, aeos_staff")
    op.execute("GRANT INSERT, UPDATE, DELETE ON alert_groups, alert_budget_marks TO aeos_worker")


def _endpoints() -> None:
    table = "notification_endpoints"
    op.drop_constraint(op.f("ck_notification_endpoints_kind"), table, type_="check")
    op.drop_constraint(op.f("ck_notification_endpoints_target"), table, type_="check")
    for column in (
        _text("name", ""),
        _text("format", "aeos"),
        _jsonb("route"),
        sa.Column("previous_secret", sa.Text(), nullable=True),
        _ts("previous_secret_until"),
        _ts("failing_since"),
        sa.Column("disabled_reason", sa.Text(), nullable=True),
        _ts("updated_at"),
    ):
        op.add_column(table, column)
    checks = {
        "kind": "kind IN ('webhook', 'slack', 'email', 'alertmanager')",
        "format": "format IN ('aeos', 'alertmanager')",
        "target": "(kind <> 'email' AND url IS NOT NULL) OR (kind = 'email' AND email IS NOT NULL)",
    }
    for name, check in checks.items():
        op.create_check_constraint(op.f(f"ck_{table}_{name}"), table, check)
    op.create_table_comment(
        table,
        "Where notifications go besides the in-app inbox (webhook, Slack, email, Alertmanager).",
    )
    # The delivery worker records failures and disables endpoints (410, failing N days).
    op.execute(
        f"GRANT UPDATE (enabled, failing_since, disabled_reason, updated_at) ON {table} "
        "TO aeos_worker"
    )


def _notifications() -> None:
    op.add_column("notifications", sa.Column("dedup_key", sa.Text(), nullable=True))
    op.add_column("notifications", _jsonb("labels"))
    op.add_column("notifications", _jsonb("details"))
    op.create_unique_constraint(
        op.f("uq_notifications_org_id_dedup_key"), "notifications", ["org_id", "dedup_key"]
    )
    op.create_table_comment(
        "notifications", "In-app inbox: alert.firing, alert.resolved, budget.*, system.notice."
    )
    op.add_column(
        "webhook_deliveries",
        sa.Column(
            "webhook_id",
            sa.Text(),
            server_default=sa.text("('msg_'::text || gen_random_uuid())"),
            nullable=False,
        ),
    )
    op.add_column("webhook_deliveries", _ts("last_attempt_at"))
    op.create_unique_constraint(
        op.f("uq_webhook_deliveries_endpoint_id_notification_id"),
        "webhook_deliveries",
        ["endpoint_id", "notification_id"],
    )
    op.create_table_comment(
        "webhook_deliveries", "Each delivery of a notification to an endpoint, and its retries."
    )
    # An org admin's "send a test notification" queues a delivery to the org's endpoint.
    op.execute("GRANT INSERT ON webhook_deliveries TO aeos_tenant, aeos_staff")
    # The evaluation claim locks rules (FOR UPDATE needs an UPDATE privilege) and moves
    # their next evaluation time.
    op.execute("GRANT UPDATE (next_eval_at) ON alert_rules TO aeos_worker")


def upgrade() -> None:
    _rules()
    _states()
    _new_tables()
    _endpoints()
    _notifications()
    for index, serves in _INDEX_COMMENTS.items():
        op.execute(f"COMMENT ON INDEX {index} IS 'serves: {serves}'")


def downgrade() -> None:
    raise NotImplementedError("migrations are forward-only")
