"""Continuous aggregates refresh their window in one pass, not in batches (TimescaleDB).

TimescaleDB 2.19 to 2.28 split a policy's refresh into batches of ``buckets_per_batch``
buckets (10 by default) and drop an invalidation whose greatest modified time equals the
start of the next batch: a row written exactly on that boundary (a whole minute, as
agents often stamp spans) into a bucket already materialized stayed missing from the
aggregate until some later refresh happened to cover it (timescale/timescaledb#10221,
fixed in 2.29.0; 2.28.3 is the last release for PostgreSQL 15). Found by
``tests/integration/test_rollups.py`` with the policies run to completion, at the times
of day that put a batch boundary on a late row's minute.

``buckets_per_batch => 0`` makes every refresh one pass over its window, as before 2.19;
the windows here are at most 30 days of 1 h or coarser buckets, or 20 h of 1 min ones.
Every continuous-aggregate refresh policy gets it; the declarations (frozen beside this
file) create new policies with it. Nothing on the PostgreSQL engine.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-02 04:30:00
"""

from __future__ import annotations

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

_UNBATCH = """
SELECT alter_job(j.job_id, config => j.config || '{"buckets_per_batch": 0}'::jsonb)
  FROM timescaledb_information.jobs AS j
 WHERE j.proc_name = 'policy_refresh_continuous_aggregate'
"""


def upgrade() -> None:
    engine = op.get_context().config.attributes.get("storage_engine")  # type: ignore[union-attr]
    if engine == "timescale":
        op.execute(_UNBATCH)


def downgrade() -> None:
    raise NotImplementedError("migrations are forward-only")
