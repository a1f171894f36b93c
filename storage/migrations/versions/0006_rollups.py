"""Rollups at 1 minute, 1 hour and 1 day on either engine (work in progress).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 17:00:00
"""

from __future__ import annotations

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    raise NotImplementedError("migrations are forward-only")
