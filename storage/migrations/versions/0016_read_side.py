"""Read side: tenants read their plan's retention tiers; the worker writes agent status.

- ``retention_tiers`` (plan defaults, no org data) becomes readable by the tenant role, so
  the query API can tell an org which windows are in force and never read a rollup level
  past them.
- The agent-status job (``storage.jobs.agent_status.mark_offline_agents``) runs as
  ``aeos_worker`` and sets ``agents.status`` to ``offline`` for silent agents: it gets
  ``UPDATE (status)`` on ``agents`` and nothing more.

Revision ID: 0016
Revises: 0008
Create Date: 2026-12-01 21:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("GRANT SELECT ON retention_tiers TO aeos_tenant")
    op.execute("GRANT UPDATE (status) ON agents TO aeos_worker")


def downgrade() -> None:
    raise NotImplementedError("migrations are forward-only")
