"""Tenancy in the database: roles, row-level security, grants, index comments.

Roles (cluster-wide, created if missing):
- ``aeos_ingest``  the receiver: writes telemetry and entities of any org. BYPASSRLS,
  because PostgreSQL refuses COPY into a table with row-level security; it can see every
  org through its policies anyway, and its grants still bound what it touches.
- ``aeos_worker``  scheduled jobs (alerting, retention, partitions): any org.
- ``aeos_tenant``  an org's users: sees exactly one org, ``aeos_current_org()``.
- ``aeos_staff``   ALIAS admins: read all orgs, write configuration.
- ``aeos_support`` ALIAS support: read all orgs, write nothing.
- ``aeos_app``     the login the service uses: NOINHERIT, so it has no table privileges
  of its own and must ``SET LOCAL ROLE`` to one of the above in each transaction.

``aeos_current_org()`` is the org of the session: for a login role listed in
``db_role_orgs`` (a Grafana data source) it is that row's org, and the ``aeos.org_id``
setting cannot change it; for trusted sessions (the service) it is the transaction-local
``aeos.org_id`` setting; otherwise NULL, which matches no row.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 14:50:00
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_ROLES = ("aeos_ingest", "aeos_worker", "aeos_tenant", "aeos_staff", "aeos_support")

# Frozen table groups as of this revision.
_RAW = ("traces", "spans", "events", "metric_points", "cost_line_items")
_ROLLUPS = (
    "span_red_1m",
    "span_red_1h",
    "span_red_1d",
    "metric_rollup_1m",
    "metric_rollup_1h",
    "metric_rollup_1d",
    "cost_daily",
)
_ENTITIES = ("fleets", "agents", "tasks", "task_runs")
_ALERTING = (
    "alert_rules",
    "alert_states",
    "alert_evaluations",
    "notification_endpoints",
    "notifications",
    "webhook_deliveries",
)
_TENANT_TABLES = (*_RAW, *_ROLLUPS, *_ENTITIES, *_ALERTING, "users", "api_keys")
_VIEWED = ("spans", "events", "metric_points", "cost_line_items", "alert_evaluations")
_TENANT_WRITABLE = ("alert_rules", "notification_endpoints", "notifications", "users")
_STAFF_WRITABLE = (*_TENANT_WRITABLE, "orgs", "model_prices", "db_role_orgs")
_WORKER_WRITABLE = ("alert_states", "alert_evaluations", "notifications", "webhook_deliveries")
_KEY_COLUMNS = (
    "id, org_id, prefix, role, name, require_signature, created_at, last_used_at, revoked_at"
)

_INDEX_COMMENTS = {
    "ix_cost_line_items_org_task_run": "cost of a task run",
    "ix_cost_line_items_org_time": "cost breakdown of an org",
    "ix_events_org_agent_time": "event timeline of one agent",
    "ix_events_org_severity_time": "event timeline filtered by severity",
    "ix_events_org_time": "event timeline of an org",
    "ix_metric_points_org_time": "all metrics of an org in a window",
    "ix_metric_rollup_1d_org_bucket": "all metric rollups of an org in a window (1d)",
    "ix_metric_rollup_1h_org_bucket": "all metric rollups of an org in a window (1h)",
    "ix_metric_rollup_1m_org_bucket": "all metric rollups of an org in a window (1m)",
    "ix_model_prices_lookup": "price in force for (org override or global) provider/model at a date",
    "ix_spans_org_service_start": "span search by service (Tempo-style service filter)",
    "ix_spans_org_start": "span search by time range",
    "ix_spans_org_task_run": "spans of a task run (task run drill-down)",
    "ix_traces_org_start": "trace search by time range",
    "ix_agents_org_fleet": "agents of a fleet (fleet health grid)",
    "ix_agents_org_status": "agents by status (offline/degraded list)",
    "ix_alert_rules_org_enabled": "rules to evaluate for an org",
    "ix_api_keys_org_created": "list an org's keys, newest first",
    "ix_notification_endpoints_org_enabled": "endpoints to notify for an org",
    "ix_notifications_org_created": "in-app inbox, newest first",
    "ix_task_runs_org_created": "Task Runs view, newest first",
    "ix_task_runs_org_status_created": "Task Runs view filtered by status",
    "ix_task_runs_org_trace": "task run of a trace",
    "ix_tasks_org_created": "recent tasks of an org",
    "ix_users_org_email": "user lookup by email within an org",
    "ix_webhook_deliveries_due": "deliveries due for a (re)try, across orgs (delivery worker)",
    "ix_webhook_deliveries_org_created": "delivery log of an org",
    "pk_aeos_meta": "lookup of a schema fact by key",
    "pk_alert_evaluations": "evaluation history of a rule; dedupe per rule and time",
    "pk_cost_daily": "rollup upsert key; daily cost of an org by dimension",
    "pk_cost_line_items": "dedupe of retried exports (one cost item per LLM span)",
    "pk_events": "dedupe of retried exports (content hash per event)",
    "pk_metric_points": "dedupe of retried exports; one series over time",
    "pk_metric_rollup_1d": "rollup upsert key; one series over time (1d)",
    "pk_metric_rollup_1h": "rollup upsert key; one series over time (1h)",
    "pk_metric_rollup_1m": "rollup upsert key; one series over time (1m)",
    "pk_model_prices": "price row by id (cost_line_items.price_id)",
    "pk_orgs": "org by id",
    "uq_orgs_name": "org by name (CLI), unique names",
    "uq_orgs_workos_org_id": "org of a WorkOS organisation (login)",
    "pk_span_red_1d": "rollup upsert key; RED metrics of an org over time (1d)",
    "pk_span_red_1h": "rollup upsert key; RED metrics of an org over time (1h)",
    "pk_span_red_1m": "rollup upsert key; RED metrics of an org over time (1m)",
    "pk_spans": "dedupe of retried exports; all spans of a trace",
    "pk_traces": "trace summary by id (upsert as spans arrive)",
    "pk_agents": "agent by id within an org (upsert from resources)",
    "pk_alert_rules": "rule by id",
    "pk_api_keys": "key by id (revoke)",
    "uq_api_keys_prefix": "key lookup by prefix at authentication",
    "pk_db_role_orgs": "org of a pinned login role (aeos_current_org)",
    "pk_fleets": "fleet by id within an org (upsert from resources)",
    "pk_notification_endpoints": "endpoint by id",
    "pk_notifications": "notification by id (mark read)",
    "pk_task_runs": "task run by id within an org (upsert from spans)",
    "pk_tasks": "task by id within an org",
    "pk_users": "user by id",
    "uq_users_workos_user_id": "user of a WorkOS identity (login)",
    "pk_alert_states": "current state of a rule",
    "pk_webhook_deliveries": "delivery by id",
}

_FUNCTIONS = r"""
CREATE OR REPLACE FUNCTION aeos_current_org() RETURNS uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $fn$
  SELECT CASE
    WHEN EXISTS (SELECT 1 FROM db_role_orgs WHERE role_name = session_user)
      THEN (SELECT org_id FROM db_role_orgs WHERE role_name = session_user)
    ELSE NULLIF(current_setting('aeos.org_id', true), '')::uuid
  END
$fn$;

CREATE OR REPLACE FUNCTION aeos_authenticate_key(p_prefix text, p_hash bytea)
RETURNS TABLE (key_id uuid, org_id uuid, role text, require_signature boolean)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $fn$
BEGIN
  RETURN QUERY
    SELECT k.id, k.org_id, k.role, k.require_signature FROM api_keys k
     WHERE k.prefix = p_prefix AND k.key_hash = p_hash AND k.revoked_at IS NULL;
  IF FOUND THEN
    -- At most one write a minute per key: authentication runs on every export.
    UPDATE api_keys SET last_used_at = now()
     WHERE prefix = p_prefix AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute');
  END IF;
END
$fn$;
REVOKE ALL ON FUNCTION aeos_authenticate_key(text, bytea) FROM PUBLIC;
"""


def _create_roles() -> None:
    # Roles are cluster-wide; other databases on the same server may race us.
    for role in (*_ROLES, "aeos_app"):
        login = "LOGIN NOINHERIT" if role == "aeos_app" else "NOLOGIN"
        op.execute(
            f"DO $$ BEGIN CREATE ROLE {role} {login}; "
            "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
        )
    op.execute("ALTER ROLE aeos_ingest BYPASSRLS")
    op.execute(f"GRANT {', '.join(_ROLES)} TO aeos_app")
    op.execute("GRANT USAGE ON SCHEMA public TO " + ", ".join(_ROLES))


def _policy(table: str, name: str, roles: str, using: str, *, command: str = "ALL") -> None:
    check = f" WITH CHECK ({using})" if command == "ALL" else ""
    op.execute(f"CREATE POLICY {name} ON {table} FOR {command} TO {roles} USING ({using}){check}")


def _tenant_table(table: str) -> None:
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    _policy(table, "tenant_own_org", "aeos_tenant", "org_id = (SELECT aeos_current_org())")
    _policy(table, "service_all_orgs", "aeos_ingest, aeos_worker, aeos_staff", "true")
    _policy(table, "support_read", "aeos_support", "true", command="SELECT")


def _grants() -> None:
    readers = "aeos_tenant, aeos_staff, aeos_support, aeos_worker"
    for table in _TENANT_TABLES:
        if table == "api_keys":
            op.execute(f"GRANT SELECT ({_KEY_COLUMNS}) ON api_keys TO {readers}")
        else:
            op.execute(f"GRANT SELECT ON {table} TO {readers}")
    for table in (*_RAW, *_ROLLUPS, *_ENTITIES):
        op.execute(f"GRANT SELECT, INSERT, UPDATE ON {table} TO aeos_ingest")
        op.execute(f"GRANT DELETE ON {table} TO aeos_worker")
    for table in _TENANT_WRITABLE:
        op.execute(f"GRANT INSERT, UPDATE, DELETE ON {table} TO aeos_tenant")
    op.execute("GRANT INSERT ON api_keys TO aeos_tenant, aeos_staff")
    op.execute(
        "GRANT UPDATE (name, revoked_at, require_signature) ON api_keys TO aeos_tenant, aeos_staff"
    )
    for table in _STAFF_WRITABLE:
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO aeos_staff")
    for table in _WORKER_WRITABLE:
        op.execute(f"GRANT INSERT, UPDATE, DELETE ON {table} TO aeos_worker")
    op.execute(f"GRANT SELECT ON orgs, model_prices, aeos_meta TO {readers}, aeos_ingest")
    op.execute("GRANT USAGE ON SEQUENCE model_prices_id_seq TO aeos_staff")
    op.execute(
        "GRANT EXECUTE ON FUNCTION aeos_authenticate_key(text, bytea) TO aeos_app, aeos_ingest"
    )
    engine = op.get_context().config.attributes.get("storage_engine")  # type: ignore[union-attr]
    if engine == "postgres":
        op.execute(
            "GRANT EXECUTE ON FUNCTION aeos_ensure_partitions(text, timestamptz, timestamptz) "
            "TO aeos_ingest, aeos_worker"
        )


def _tenant_views() -> None:
    """Tenants read raw time-split tables only through security-barrier views.

    TimescaleDB copies a hypertable's grants to its chunks but not its row-level security,
    so a tenant allowed to read ``spans`` could read a chunk of it directly and see every
    org. Instead the tenant role has no privilege on these tables (so neither on their
    chunks or partitions) and reads ``tenant.<table>``, a view that filters by
    ``aeos_current_org()``; ``act_as`` puts the ``tenant`` schema first on the search path,
    so queries name the same relations on both engines.
    """
    op.execute("CREATE SCHEMA IF NOT EXISTS tenant")
    op.execute("GRANT USAGE ON SCHEMA tenant TO aeos_tenant")
    for table in _VIEWED:
        op.execute(f"REVOKE ALL ON {table} FROM aeos_tenant")
        op.execute(
            f"CREATE VIEW tenant.{table} WITH (security_barrier) AS "
            f"SELECT * FROM public.{table} WHERE org_id = (SELECT aeos_current_org())"
        )
        op.execute(f"GRANT SELECT ON tenant.{table} TO aeos_tenant")


def _shared_tables() -> None:
    op.execute("ALTER TABLE orgs ENABLE ROW LEVEL SECURITY")
    _policy("orgs", "tenant_own_org", "aeos_tenant", "id = (SELECT aeos_current_org())")
    _policy("orgs", "service_all_orgs", "aeos_ingest, aeos_worker, aeos_staff", "true")
    _policy("orgs", "support_read", "aeos_support", "true", command="SELECT")
    op.execute("ALTER TABLE model_prices ENABLE ROW LEVEL SECURITY")
    _policy(
        "model_prices",
        "tenant_global_or_own",
        "aeos_tenant",
        "org_id IS NULL OR org_id = (SELECT aeos_current_org())",
        command="SELECT",
    )
    _policy("model_prices", "service_all_orgs", "aeos_ingest, aeos_worker, aeos_staff", "true")
    _policy("model_prices", "support_read", "aeos_support", "true", command="SELECT")
    op.execute("ALTER TABLE db_role_orgs ENABLE ROW LEVEL SECURITY")
    _policy("db_role_orgs", "staff_all", "aeos_staff", "true")


def upgrade() -> None:
    _create_roles()
    op.execute(_FUNCTIONS)
    for table in _TENANT_TABLES:
        _tenant_table(table)
    _shared_tables()
    _grants()
    _tenant_views()
    for index, serves in _INDEX_COMMENTS.items():
        quoted = serves.replace("'", "''")
        op.execute(f"COMMENT ON INDEX {index} IS 'serves: {quoted}'")


def downgrade() -> None:
    raise NotImplementedError("migrations are forward-only")
