"""Indexes for the trace-query core (``storage.read.traces``).

- ``ix_events_org_trace_time``: the span events and logs of one trace (trace by id); without
  it the trace view scans every event of the org in the trace's time window.
- ``ix_traces_trace_id``: a trace by id for staff and support, who read every org and so
  cannot use the primary key's leading ``org_id`` (Jaeger API with a staff key).
- ``ix_traces_start``: trace search across orgs for staff, newest first.

Revision ID: 0013
Revises: 0008
Create Date: 2026-12-01 21:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0009"
branch_labels = None
depends_on = None

_INDEXES = {
    "ix_events_org_trace_time": (
        "events",
        ["org_id", "trace_id", "time"],
        "trace_id IS NOT NULL",
        "span events and logs of a trace (trace view)",
    ),
    "ix_traces_trace_id": ("traces", ["trace_id"], None, "trace by id across orgs (staff)"),
    "ix_traces_start": ("traces", ["start_time"], None, "trace search across orgs (staff)"),
}


def upgrade() -> None:
    for name, (table, columns, where, serves) in _INDEXES.items():
        op.create_index(
            name,
            table,
            columns,
            unique=False,
            postgresql_where=sa.text(where) if where else None,
        )
        op.execute(f"COMMENT ON INDEX {name} IS 'serves: {serves}'")


def downgrade() -> None:
    raise NotImplementedError("migrations are forward-only")
