"""Receiver self-telemetry for the staff Platform Health view.

Not a tenant table (it has no org): only the service writes it, only staff and support
read it.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 15:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "platform_health",
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("instance", sa.Text(), nullable=False),
        sa.Column("signal", sa.Text(), nullable=False),
        sa.Column("accepted", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("rejected", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("refused", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("requests", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("queue_items", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("commits", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("commit_seconds_sum", sa.Double(), server_default=sa.text("0"), nullable=False),
        sa.Column("commit_seconds_max", sa.Double(), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint("time", "instance", "signal", name=op.f("pk_platform_health")),
        comment="Receiver self-telemetry per process and signal, one row a minute (Platform Health).",
    )
    op.execute("COMMENT ON INDEX pk_platform_health IS 'serves: platform health over time'")
    op.execute("GRANT SELECT, INSERT ON platform_health TO aeos_ingest")
    op.execute("GRANT SELECT ON platform_health TO aeos_staff, aeos_support")
    op.execute("GRANT DELETE ON platform_health TO aeos_worker")


def downgrade() -> None:
    raise NotImplementedError("migrations are forward-only")
