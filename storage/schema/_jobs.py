"""State of the service itself: the runs of its periodic jobs (``storage.jobs.scheduler``).

Not a tenant table (it has no org): the service writes it as ``aeos_worker``, staff and
support read it, tenants cannot see it.
"""

from __future__ import annotations

from sqlalchemy import CheckConstraint, Column, PrimaryKeyConstraint, Table, Text, text

from storage.schema._base import jsonb, metadata, one_of, ts

RUN_STATUSES = ("running", "ok", "failed")

scheduler_runs = Table(
    "scheduler_runs",
    metadata,
    Column("job", Text, nullable=False),
    ts("started_at"),
    Column("instance", Text, nullable=False),
    ts("finished_at", nullable=True),
    Column("status", Text, nullable=False, server_default=text("'running'")),
    jsonb("summary"),
    Column("error", Text, nullable=True),  # a failed run's traceback
    Column("failure", Text, nullable=True),  # ... and one line: what failed, on what, why
    # Runs of one job never overlap (an advisory lock), so their start times differ.
    PrimaryKeyConstraint("job", "started_at"),
    CheckConstraint(one_of("status", RUN_STATUSES), name="status"),
    comment="Each run of a periodic job: who ran it, when, how it ended, what it did.",
)
