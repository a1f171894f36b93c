"""Failures of periodic jobs, ours and TimescaleDB's, said in one line.

``scheduler_runs.failure``: one line saying what failed, on which relation, and why (the
traceback stays in ``error``), for ``aeos jobs list`` and staff.

``aeos_timescale_jobs()`` and the view ``platform_timescale_jobs``: every TimescaleDB job
of this database (refresh and columnstore policies, ...) with its last run, its failure
count and its latest error, from ``timescaledb_information.job_stats`` and ``job_errors``.
Those views show a role only the jobs it owns (the migration's role owns them), so the
function runs as its owner (``SECURITY DEFINER``, fixed ``search_path``) and returns no
rows on the PostgreSQL engine. The service's ``timescale-jobs`` job reads it into
self-metrics; staff and support read the view (Platform Health).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 21:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_TIMESCALE_JOBS = r"""
CREATE OR REPLACE FUNCTION aeos_timescale_jobs()
RETURNS TABLE (
  job_id integer, proc_name text, relation text, scheduled boolean,
  last_run_status text, last_run_started_at timestamptz, last_successful_finish timestamptz,
  total_runs bigint, total_failures bigint, last_error text, last_error_at timestamptz
)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
  IF to_regclass('timescaledb_information.job_stats') IS NULL THEN
    RETURN;  -- the PostgreSQL engine: no TimescaleDB jobs
  END IF;
  RETURN QUERY EXECUTE $q$
    SELECT j.job_id, j.proc_name::text,
           coalesce(j.hypertable_schema || '.' || j.hypertable_name, '')::text,
           j.scheduled, s.last_run_status::text,
           -- TimescaleDB says -infinity for "never"
           CASE WHEN isfinite(s.last_run_started_at) THEN s.last_run_started_at END,
           CASE WHEN isfinite(s.last_successful_finish) THEN s.last_successful_finish END,
           coalesce(s.total_runs, 0)::bigint,
           coalesce(s.total_failures, 0)::bigint, e.err_message::text, e.finish_time
      FROM timescaledb_information.jobs j
      LEFT JOIN timescaledb_information.job_stats s ON s.job_id = j.job_id
      LEFT JOIN LATERAL (
        SELECT x.err_message, x.finish_time FROM timescaledb_information.job_errors x
         WHERE x.job_id = j.job_id ORDER BY x.finish_time DESC NULLS LAST LIMIT 1
      ) e ON true
     ORDER BY j.job_id
  $q$;
END
$fn$;
REVOKE ALL ON FUNCTION aeos_timescale_jobs() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION aeos_timescale_jobs() TO aeos_worker, aeos_staff, aeos_support;
COMMENT ON FUNCTION aeos_timescale_jobs() IS
  'TimescaleDB jobs of this database with their last run and latest error (none on PostgreSQL)';

CREATE VIEW platform_timescale_jobs AS SELECT * FROM aeos_timescale_jobs();
COMMENT ON VIEW platform_timescale_jobs IS
  'Platform Health: TimescaleDB background jobs, their failures and latest error';
GRANT SELECT ON platform_timescale_jobs TO aeos_staff, aeos_support, aeos_worker;
"""


def upgrade() -> None:
    op.add_column("scheduler_runs", sa.Column("failure", sa.Text(), nullable=True))
    op.execute(_TIMESCALE_JOBS)


def downgrade() -> None:
    raise NotImplementedError("migrations are forward-only")
