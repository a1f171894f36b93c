"""Replay protection for signed requests, shared by every receiver process.

``aeos_register_signature(signature, window_s)`` records a signature and says whether it
is new; rows older than twice the window are pruned now and then by the same function.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 15:25:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_FUNCTION = r"""
CREATE OR REPLACE FUNCTION aeos_register_signature(p_signature text, p_window_s integer)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $fn$
BEGIN
  IF random() < 0.01 THEN
    DELETE FROM signature_nonces WHERE seen_at < now() - make_interval(secs => 2 * p_window_s);
  END IF;
  INSERT INTO signature_nonces (signature, seen_at) VALUES (p_signature, now())
  ON CONFLICT DO NOTHING;
  RETURN FOUND;
END
$fn$;
REVOKE ALL ON FUNCTION aeos_register_signature(text, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION aeos_register_signature(text, integer) TO aeos_app, aeos_ingest;
"""


def upgrade() -> None:
    op.create_table(
        "signature_nonces",
        sa.Column("signature", sa.Text(), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("signature", name=op.f("pk_signature_nonces")),
        comment="Signed requests already received (replay protection across receiver processes).",
    )
    op.execute("COMMENT ON INDEX pk_signature_nonces IS 'serves: replay check of a signature'")
    op.execute(_FUNCTION)


def downgrade() -> None:
    raise NotImplementedError("migrations are forward-only")
