"""Trace sampling and scheduler runs.

Sampling (``storage.sampling``): ``orgs.trace_sample_percent`` (default 10) is the share
of error-free traces whose spans are kept past the full-fidelity window; the ingest merge
sets ``traces.sampled`` with ``aeos_trace_keep`` (the SQL twin of
``storage.sampling.trace_keep``), and the sampling sweep deletes the spans of unsampled
traces once they are older than the window, marking the trace ``spans_pruned_at``.
Traces recorded before this revision keep ``sampled = true``: nothing already stored is
ever pruned by sampling.

Scheduler (``storage.scheduler``): ``scheduler_runs`` records every run of a periodic
job; it is the cadence shared by every service process. It has no org: the service writes
it as ``aeos_worker``, staff and support read it, tenants have no access.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28 17:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# Keep a trace iff the first 4 bytes of sha256(trace_id), read as an unsigned big-endian
# integer, modulo 10000 are below the percentage in hundredths (basis points).
_TRACE_KEEP = r"""
CREATE OR REPLACE FUNCTION aeos_trace_keep(p_trace_id bytea, p_percent numeric)
RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $fn$
  SELECT ('x' || encode(substr(sha256(p_trace_id), 1, 4), 'hex'))::bit(32)::bigint % 10000
         < round(p_percent * 100)
$fn$;
COMMENT ON FUNCTION aeos_trace_keep(bytea, numeric) IS
  'Sampling decision on the trace id alone; the same as storage.sampling.trace_keep';
"""

_INDEX_COMMENTS = {
    "ix_traces_unsampled_end": "sampling sweep: unsampled traces not yet pruned, oldest end first (all orgs)",
    "pk_scheduler_runs": "runs of a job, newest first (cadence check, aeos jobs list)",
}


def _sampling() -> None:
    op.add_column(
        "orgs",
        sa.Column(
            "trace_sample_percent",
            sa.Numeric(precision=5, scale=2),
            server_default=sa.text("10"),
            nullable=False,
        ),
    )
    op.create_check_constraint(
        op.f("ck_orgs_trace_sample_percent"),
        "orgs",
        "trace_sample_percent >= 0 AND trace_sample_percent <= 100",
    )
    op.add_column("traces", sa.Column("spans_pruned_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_traces_unsampled_end",
        "traces",
        ["end_time"],
        unique=False,
        postgresql_where=sa.text("NOT sampled AND spans_pruned_at IS NULL"),
    )
    op.execute(_TRACE_KEEP)
    # The sweep locks the traces it prunes (FOR UPDATE needs an UPDATE privilege) and marks them.
    op.execute("GRANT UPDATE (spans_pruned_at) ON traces TO aeos_worker")


def _scheduler_runs() -> None:
    op.create_table(
        "scheduler_runs",
        sa.Column("job", sa.Text(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("instance", sa.Text(), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.Text(), server_default=sa.text("'running'"), nullable=False),
        sa.Column(
            "summary",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('running', 'ok', 'failed')", name=op.f("ck_scheduler_runs_status")
        ),
        sa.PrimaryKeyConstraint("job", "started_at", name=op.f("pk_scheduler_runs")),
        comment="Each run of a periodic job: who ran it, when, how it ended, what it did.",
    )
    op.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON scheduler_runs TO aeos_worker")
    op.execute("GRANT SELECT ON scheduler_runs TO aeos_staff, aeos_support")


def upgrade() -> None:
    _sampling()
    _scheduler_runs()
    for index, serves in _INDEX_COMMENTS.items():
        op.execute(f"COMMENT ON INDEX {index} IS 'serves: {serves}'")


def downgrade() -> None:
    raise NotImplementedError("migrations are forward-only")
