"""Dashboard reads: views and functions that pick the rollup level, a read-only Grafana role.

Grafana panels never name a rollup relation of one level. They read ``<family>_levels``,
every level of a family told apart by a ``level`` column, and keep the level that
``aeos_rollup_level(from, to, interval_ms)`` picks for the panel's range and
``$__interval``, from ``aeos_rollup_start(...)`` (the range widened to whole buckets of
that level) to the range's end. The rule: 1 day when the interval is at least a day or the
range longer than 14 days; 1 hour when the interval is at least an hour or the range
longer than 2 days; 1 minute otherwise. So a 90-day panel reads about 90 rows per series.

The level functions are IMMUTABLE, so with Grafana's literal bounds the planner folds the
level test to a constant and drops the other levels' branches of the view before running
the query. Views, not set-returning functions: TimescaleDB checks the caller's privilege
on a continuous aggregate when a function reads it (the watermark), which tenants must not
have; through views it does not. ``public.<family>_levels`` reads the relations (staff,
support, worker); ``tenant.<family>_levels`` reads the ``tenant.*`` security-barrier views,
and a tenant's search path finds it first. ``platform_red`` has no tenant view.

The Task Runs dashboard lists the runs that started in its range: an index on
``(org_id, started_at)`` serves it.

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
down_revision = "0014"
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
_COST = (
    "bucket, org_id, provider, model, agent_id, subsystem, calls, cost_usd, tokens_in, "
    "tokens_out, cache_read_tokens, cache_creation_tokens"
)
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
    WHEN p_interval_ms >= 86400000 OR p_to - p_from > interval '14 days' THEN interval '1 day'
    WHEN p_interval_ms >= 3600000 OR p_to - p_from > interval '2 days' THEN interval '1 hour'
    ELSE interval '1 minute'
  END
$fn$;
COMMENT ON FUNCTION aeos_rollup_level(timestamptz, timestamptz, bigint) IS
  'Rollup bucket width (1 minute, 1 hour or 1 day) that dashboards read for a range and interval';

CREATE OR REPLACE FUNCTION aeos_rollup_start(
  p_from timestamptz, p_to timestamptz, p_interval_ms bigint
) RETURNS timestamptz LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
  SELECT date_bin(aeos_rollup_level(p_from, p_to, p_interval_ms), p_from,
                  timestamptz '2000-01-01 00:00:00+00')
$fn$;
COMMENT ON FUNCTION aeos_rollup_start(timestamptz, timestamptz, bigint) IS
  'Start of the bucket, at the level aeos_rollup_level picks, that holds p_from';

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

-- Histogram elements (storage.hist: bucket << 40 | count) for merging many histograms in
-- linear time: unnest them, sum the counts per bucket (a hash aggregate), rebuild with
-- array_agg(... ORDER BY bucket). aeos_hist_merge_agg concatenates its state on every row,
-- which costs quadratic time over thousands of rows.
CREATE OR REPLACE FUNCTION aeos_hist_bucket(e bigint) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$ SELECT e >> 40 $fn$;
CREATE OR REPLACE FUNCTION aeos_hist_weight(e bigint) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$ SELECT e & 1099511627775 $fn$;
CREATE OR REPLACE FUNCTION aeos_hist_element(bucket bigint, weight numeric) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$ SELECT (bucket * 1099511627776 + weight)::bigint $fn$;
COMMENT ON FUNCTION aeos_hist_element(bigint, numeric) IS
  'A histogram element from a bucket and its count (aeos_hist_bucket, aeos_hist_weight split one)';
"""


def _levels_view(schema: str, family: str, columns: str, levels: dict[str, str]) -> str:
    branches = [
        f"SELECT interval '{width}' AS level, {columns} FROM {schema}.{relation}"
        for relation, width in levels.items()
    ]
    return f"CREATE VIEW {schema}.{family}_levels AS " + " UNION ALL ".join(branches)


def _levels_views() -> None:
    readers = "aeos_staff, aeos_support, aeos_worker"
    families = {
        family: (columns, {f"{family}_{s}": w for s, w in _LEVELS.items()})
        for family, columns in _FAMILIES.items()
    }
    families["cost"] = (_COST, {"cost_daily": "1 day"})
    for family, (columns, levels) in families.items():
        op.execute(_levels_view("public", family, columns, levels))
        op.execute(f"GRANT SELECT ON public.{family}_levels TO {readers}")
        op.execute(
            f"COMMENT ON VIEW public.{family}_levels IS 'Every level of {family}; dashboards "
            "keep one: level = aeos_rollup_level(from, to, interval_ms)'"
        )
        if family != "platform_red":
            op.execute(_levels_view("tenant", family, columns, levels))
            op.execute(f"GRANT SELECT ON tenant.{family}_levels TO aeos_tenant")


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
    op.create_index("ix_task_runs_org_started", "task_runs", ["org_id", "started_at"])
    op.execute(
        "COMMENT ON INDEX ix_task_runs_org_started IS "
        "'serves: Task Runs dashboard: runs that started in a range, newest first'"
    )
    op.execute(_LEVEL_FUNCTIONS)
    _levels_views()  # before the reader: it is granted every tenant view there is
    _grafana_reader()


def downgrade() -> None:
    raise NotImplementedError("migrations are forward-only")
