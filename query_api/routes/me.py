"""``/v1/me``: who the credential is (a first call to check a key or a token)."""

from __future__ import annotations

from fastapi import APIRouter

from query_api.deps import CurrentPrincipal
from query_api.models.me import Me

router = APIRouter(tags=["identity"])


@router.get("/me", response_model=Me, summary="The caller")
def me(principal: CurrentPrincipal) -> Me:
    """The authenticated caller: kind of credential, role, org, and what it may do."""
    return Me(
        kind=principal.kind,
        role=principal.role,
        org_id=principal.org_id,
        key_id=principal.key_id,
        user_id=principal.user_id,
        subject=principal.subject,
        is_staff=principal.is_staff,
        can_write_org=principal.can_write_org,
    )
