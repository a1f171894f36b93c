"""Query API identities: people signing in with OIDC, and what org admins may do to keys.

``aeos_authenticate_user`` (SECURITY DEFINER, like ``aeos_authenticate_key``) maps a
verified OIDC identity to a ``users`` row before any role switch: it finds the org of the
token's ``org_id`` claim (``orgs.workos_org_id``), finds the user by IdP subject (or an
unlinked row made for its email by ``aeos users grant-staff``), and creates it on first
sight in that org. It returns the user, the org of the token (NULL when the claim names
no org we know) and the user's ``system_role``; the API decides from these what the
caller may do. ``aeos_app`` may execute it without any privilege on ``users``.

Org admins create and revoke their org's keys as ``aeos_tenant``; a restrictive policy
keeps staff roles out of their reach (a tenant could otherwise mint an ``alias_admin``
key in its own org, or see or revoke the staff keys homed there).

Revision ID: 0012
Revises: 0009
Create Date: 2026-12-01 20:40:00
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0009"
branch_labels = None
depends_on = None

_AUTHENTICATE_USER = r"""
CREATE OR REPLACE FUNCTION aeos_authenticate_user(
  p_subject text, p_email text, p_workos_org_id text, p_org_role text)
RETURNS TABLE (user_id uuid, org_id uuid, system_role text, email text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $fn$
DECLARE
  v_org uuid;
  v_email text := lower(btrim(coalesce(nullif(btrim(p_email), ''), p_subject)));
  v_role text := CASE WHEN p_org_role = 'admin' THEN 'admin' ELSE 'member' END;
  v_user users%ROWTYPE;
BEGIN
  IF p_workos_org_id IS NOT NULL THEN
    SELECT o.id INTO v_org FROM orgs o WHERE o.workos_org_id = p_workos_org_id;
  END IF;
  SELECT * INTO v_user FROM users u WHERE u.workos_user_id = p_subject;
  IF NOT FOUND THEN
    -- A row made ahead for this email (aeos users grant-staff) is linked on first sight.
    UPDATE users u SET workos_user_id = p_subject
     WHERE u.id = (SELECT x.id FROM users x
                    WHERE x.workos_user_id IS NULL AND x.email = v_email
                    ORDER BY (x.org_id = v_org) DESC NULLS LAST, x.created_at LIMIT 1)
    RETURNING * INTO v_user;
  END IF;
  IF v_user.id IS NULL THEN
    IF v_org IS NULL THEN
      RETURN;  -- nobody we know, from no org we know
    END IF;
    INSERT INTO users AS u (org_id, workos_user_id, email, org_role)
      VALUES (v_org, p_subject, v_email, v_role)
      ON CONFLICT DO NOTHING
      RETURNING * INTO v_user;
    IF v_user.id IS NULL THEN
      RETURN;  -- the email is taken in that org by another identity
    END IF;
  ELSIF v_org IS NOT NULL AND v_user.org_id = v_org AND v_user.org_role <> v_role THEN
    UPDATE users u SET org_role = v_role WHERE u.id = v_user.id;
  END IF;
  RETURN QUERY SELECT v_user.id, v_org, v_user.system_role, v_user.email;
END
$fn$;
REVOKE ALL ON FUNCTION aeos_authenticate_user(text, text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION aeos_authenticate_user(text, text, text, text) TO aeos_app;
COMMENT ON FUNCTION aeos_authenticate_user(text, text, text, text) IS
  'OIDC sign-in: the user (created on first sight), the org of the token, the staff role';
"""

# Restrictive: AND-ed with tenant_own_org, so tenants keep their org and lose staff keys.
_TENANT_KEY_ROLES = """
CREATE POLICY tenant_org_key_roles ON api_keys AS RESTRICTIVE FOR ALL TO aeos_tenant
  USING (role IN ('ingest', 'admin', 'member'))
  WITH CHECK (role IN ('ingest', 'admin', 'member'))
"""


def upgrade() -> None:
    op.execute(_AUTHENTICATE_USER)
    op.execute(_TENANT_KEY_ROLES)


def downgrade() -> None:
    raise NotImplementedError("migrations are forward-only")
