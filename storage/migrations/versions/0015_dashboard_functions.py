"""Dashboard reads: functions that pick the rollup level, and a read-only Grafana role.

Grafana panels never name a rollup relation. They call ``aeos_<family>(from, to,
interval_ms)``, which returns the rows of ``<family>_1m``, ``_1h`` or ``_1d`` chosen by
``aeos_rollup_level`` for the panel's range and ``$__interval``, widened to whole buckets
of that level (a bucket is returned when it starts in ``[bin(from), to)``). The level
rule: 1 day when the interval is at least a day or the range longer than 31 days; 1 hour
when the interval is at least an hour or the range longer than 2 days; 1 minute
otherwise. So a 90-day panel reads about 90 rows per series.

The functions are plain SQL, SECURITY INVOKER and without a ``SET search_path``: the
planner inlines them into the panel's query (filters on org, agent or subsystem reach the
relation), the level test folds to a constant (only one branch runs), and the relation
names resolve on the caller's search path, so a pinned tenant login (``tenant, public``)
reads the ``tenant.*`` security-barrier views and staff read the relations themselves.

``aeos_grafana_reader``: what a Grafana data source login of one org inherits. Unlike
``aeos_tenant`` (the API's role, which also writes rules, endpoints, users and keys) it
can only read: the ``tenant.*`` views, and the tenant tables with row security through
SELECT policies of its own. Its logins are always listed in ``db_role_orgs`` (``aeos
grafana provision`` does both in one transaction), so ``aeos_current_org()`` is pinned.

Revision ID: 0015
Revises: 0008
Create Date: 2026-12-01 21:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0015"
down_revision = "0008"
branch_labels = None
depends_on = None

# Frozen column lists of the rollup families as of this revision (storage.schema._rollups).
_FAMILIES = {
    "span_red": "bucket, org_id, subsystem, service_name, operation, agent_id, span_count, "
    "error_count, duration_sum_ms, duration_min_ms, duration_max_ms, duration_hist, "
    "duration_p50_ms, duration_p95_ms, duration_p99_ms",
    "org_red": "bucket, org_id, span_count, error_count, duration_sum_ms, duration_min_ms, "
    "duration_max_ms, duration_hist, duration_p50_ms, duration_p95_ms, duration_p99_ms",
    "platform_red": "bucket, span_count, error_count, duration_sum_ms, duration_min_ms, "
    "duration_max_ms, duration_hist, duration_p50_ms, duration_p95_ms, duration_p99_ms",
    "uce_ops": "bucket, org_id, agent_id, operation, op_count, error_count, cache_hits, "
    "cache_lookups, context_size_count, context_size_sum, context_size_max, "
    "context_size_hist, context_size_p50, context_size_p95",
    "mosaic_routes": "bucket, org_id, route, outcome, decisions, successes, failures",
    "mosaic_handoffs": "bucket, org_id, from_agent, to_agent, handoffs, failures",
    "damn_heartbeats": "bucket, org_id, agent_id, status, heartbeats, active_minutes",
    "metric_rollup": "bucket, org_id, metric, series_id, kind, unit, service_name, agent_id, "
    "dimensions, count, observations, sum, min, max, last, last_time, explicit_bounds, "
    "bucket_counts",
}
_LEVELS = {"1m": "1 minute", "1h": "1 hour", "1d": "1 day"}
_ORIGIN = "timestamptz '2000-01-01 00:00:00+00'"
# Tables with row security that Grafana panels read (entities, alerting, shared).
_READ_TABLES = (
    "fleets",
    "agents",
    "tasks",
    "task_runs",
    "traces",
    "alert_rules",
    "alert_states",
    "notifications",
)

_LEVEL_FUNCTIONS = r"""
CREATE OR REPLACE FUNCTION aeos_rollup_level(
  p_from timestamptz, p_to timestamptz, p_interval_ms bigint
) RETURNS interval LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
  SELECT CASE
    WHEN p_interval_ms >= 86400000 OR p_to - p_from > interval '31 days' THEN interval '1 day'
    WHEN p_interval_ms >= 3600000 OR p_to - p_from > interval '2 days' THEN interval '1 hour'
    ELSE interval '1 minute'
  END
$fn$;
COMMENT ON FUNCTION aeos_rollup_level(timestamptz, timestamptz, bigint) IS
  'Rollup bucket width (1 minute, 1 hour or 1 day) that dashboards read for a range and interval';

CREATE OR REPLACE FUNCTION aeos_rollup_seconds(
  p_from timestamptz, p_to timestamptz, p_interval_ms bigint
) RETURNS double precision LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
  SELECT greatest(
    extract(epoch FROM aeos_rollup_level(p_from, p_to, p_interval_ms))::double precision,
    coalesce(p_interval_ms, 0) / 1000.0
  )
$fn$;
COMMENT ON FUNCTION aeos_rollup_seconds(timestamptz, timestamptz, bigint) IS
  'Seconds one point of a panel covers: the rollup level or the interval, whichever is longer';
"""


def _family_function(family: str, columns: str) -> str:
    branches = []
    for suffix, width in _LEVELS.items():
        branches.append(
            f"  SELECT {columns} FROM {family}_{suffix}\n"
            f"   WHERE aeos_rollup_level(p_from, p_to, p_interval_ms) = interval '{width}'\n"
            f"     AND bucket >= date_bin(interval '{width}', p_from, {_ORIGIN}) AND bucket < p_to"
        )
    body = "\n  UNION ALL\n".join(branches)
    return (
        f"CREATE OR REPLACE FUNCTION aeos_{family}(\n"
        "  p_from timestamptz, p_to timestamptz, p_interval_ms bigint\n"
        f") RETURNS SETOF public.{family}_1m LANGUAGE sql STABLE AS $fn$\n{body}\n$fn$;\n"
        f"COMMENT ON FUNCTION aeos_{family}(timestamptz, timestamptz, bigint) IS "
        f"'Rows of {family}_1m, _1h or _1d at the level aeos_rollup_level picks';\n"
    )


_COST_FUNCTION = f"""
CREATE OR REPLACE FUNCTION aeos_cost_daily(p_from timestamptz, p_to timestamptz)
RETURNS SETOF public.cost_daily LANGUAGE sql STABLE AS $fn$
  SELECT bucket, org_id, provider, model, agent_id, subsystem, calls, cost_usd, tokens_in,
         tokens_out, cache_read_tokens, cache_creation_tokens
    FROM cost_daily
   WHERE bucket >= date_bin(interval '1 day', p_from, {_ORIGIN}) AND bucket < p_to
$fn$;
COMMENT ON FUNCTION aeos_cost_daily(timestamptz, timestamptz) IS
  'Daily cost rows whose UTC day starts in [day of from, to)';
"""


def _grafana_reader() -> None:
    op.execute(
        "DO $$ BEGIN CREATE ROLE aeos_grafana_reader NOLOGIN; "
        "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
    )
    op.execute("GRANT USAGE ON SCHEMA public, tenant TO aeos_grafana_reader")
    op.execute(
        """
        DO $$ DECLARE v record; BEGIN
          FOR v IN SELECT viewname FROM pg_views WHERE schemaname = 'tenant' LOOP
            EXECUTE format('GRANT SELECT ON tenant.%I TO aeos_grafana_reader', v.viewname);
          END LOOP;
        END $$
        """
    )
    own = "org_id = (SELECT aeos_current_org())"
    for table in _READ_TABLES:
        op.execute(f"GRANT SELECT ON {table} TO aeos_grafana_reader")
        op.execute(
            f"CREATE POLICY grafana_read_own_org ON {table} FOR SELECT "
            f"TO aeos_grafana_reader USING ({own})"
        )
    op.execute("GRANT SELECT ON orgs, model_prices TO aeos_grafana_reader")
    op.execute(
        "CREATE POLICY grafana_read_own_org ON orgs FOR SELECT TO aeos_grafana_reader "
        "USING (id = (SELECT aeos_current_org()))"
    )
    op.execute(
        "CREATE POLICY grafana_read_global_or_own ON model_prices FOR SELECT "
        f"TO aeos_grafana_reader USING (org_id IS NULL OR {own})"
    )


def upgrade() -> None:
    op.execute(_LEVEL_FUNCTIONS)
    for family, columns in _FAMILIES.items():
        op.execute(_family_function(family, columns))
    op.execute(_COST_FUNCTION)
    # Staff-only data stays staff-only: a tenant calling aeos_platform_red gets an error.
    op.execute(
        "REVOKE ALL ON FUNCTION aeos_platform_red(timestamptz, timestamptz, bigint) FROM PUBLIC"
    )
    op.execute(
        "GRANT EXECUTE ON FUNCTION aeos_platform_red(timestamptz, timestamptz, bigint) "
        "TO aeos_staff, aeos_support, aeos_worker"
    )
    _grafana_reader()


def downgrade() -> None:
    raise NotImplementedError("migrations are forward-only")
