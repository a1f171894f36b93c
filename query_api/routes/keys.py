"""``/v1/keys``: an org's admins list, create and revoke the org's API keys.

Org admins only (``alias_admin`` too, for any org, under ``/v1/staff/orgs/{org_id}/keys``);
members and ``alias_support`` get 403. Staff keys are never listed or made here.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response, status

from query_api.deps import AdminConn, TargetOrg
from query_api.errors import validation_error
from query_api.models.keys import ApiKey, CreatedApiKey, NewApiKey
from query_api.paging import DEFAULT_PAGE_SIZE, Page, PageSize, decode_cursor, encode_cursor
from query_api.tabular import CSV_RESPONSE, tabular
from storage import KeySummary, create_org_key, list_org_keys, revoke_org_key

router = APIRouter(tags=["keys"])


def _public(key: KeySummary) -> ApiKey:
    return ApiKey(
        key_id=key.key_id,
        org_id=key.org_id,
        prefix=key.prefix,
        role=key.role,
        name=key.name,
        require_signature=key.require_signature,
        created_at=key.created_at,
        last_used_at=key.last_used_at,
        revoked_at=key.revoked_at,
    )


def _after(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    if cursor is None:
        return None
    values = decode_cursor(cursor)
    created, key_id = values.get("created_at"), values.get("key_id")
    if not isinstance(created, datetime) or not isinstance(key_id, uuid.UUID):
        raise validation_error("cursor", "not a cursor of this list")
    return created, key_id


@router.get(
    "/keys", response_model=Page[ApiKey], responses=CSV_RESPONSE, summary="The org's API keys"
)
def list_keys(
    request: Request,
    conn: AdminConn,
    org_id: TargetOrg,
    limit: PageSize = DEFAULT_PAGE_SIZE,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page.")] = None,
    include_revoked: Annotated[bool, Query(description="Also list revoked keys.")] = True,
) -> Response:
    """The org's keys, newest first (never their secrets)."""
    rows = list_org_keys(
        conn, org_id, limit=limit + 1, after=_after(cursor), include_revoked=include_revoked
    )
    page = [_public(r) for r in rows[:limit]]
    more = len(rows) > limit
    next_cursor = (
        encode_cursor({"created_at": page[-1].created_at, "key_id": page[-1].key_id})
        if more
        else None
    )
    return tabular(request, page, ApiKey, next_cursor=next_cursor)


@router.post(
    "/keys",
    response_model=CreatedApiKey,
    status_code=status.HTTP_201_CREATED,
    summary="Create an API key",
)
def create_key(body: NewApiKey, conn: AdminConn, org_id: TargetOrg) -> CreatedApiKey:
    """Creates a key for the org; the answer holds the secret, shown this once."""
    key = create_org_key(conn, org_id, body.role, body.name)
    return CreatedApiKey(
        key_id=key.key_id,
        org_id=key.org_id,
        prefix=key.prefix,
        role=key.role,
        name=body.name.strip(),
        key=key.plaintext,
    )


@router.delete("/keys/{key_id}", response_model=ApiKey, summary="Revoke an API key")
def revoke_key(
    key_id: Annotated[uuid.UUID, Path(description="The key's id.")],
    conn: AdminConn,
    org_id: TargetOrg,
) -> ApiKey:
    """Revokes a key of the org at once (revoking a revoked key changes nothing)."""
    return _public(revoke_org_key(conn, org_id, key_id))
