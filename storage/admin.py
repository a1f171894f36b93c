"""Administration of orgs and API keys (the CLI and, later, the admin API).

Every function takes a connection inside a transaction that the caller owns, so that a
multi-step operation (an org plus its first two keys) commits whole or not at all. The
caller scopes that transaction, once, to ``aeos_staff``
(``storage.transaction.scoped_transaction(engine, Scope(DbRole.STAFF))``): these
functions never switch roles themselves, so exactly one place decides who a transaction
acts as. Administration needs no more than staff; a narrower role gets
``AccessDeniedError`` (or, through row-level security, sees fewer orgs).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy import tuple_ as sa_tuple
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement

from storage.errors import ConflictError, InvalidInputError, NotFoundError
from storage.jobs.sampling import keep_threshold
from storage.keys import NewKey, generate_key, parse_prefix
from storage.retention.run import OrgWindows, load_windows, merge_overrides
from storage.schema import KEY_ROLES, PLANS, api_keys, orgs

MAX_ORG_NAME = 200


@dataclass(frozen=True, slots=True)
class CreatedKey:
    """A new key; ``plaintext`` is shown once."""

    key_id: uuid.UUID
    org_id: uuid.UUID
    prefix: str
    role: str
    plaintext: str


@dataclass(frozen=True, slots=True)
class CreatedOrg:
    """A new org with its first ingest and admin keys."""

    org_id: uuid.UUID
    name: str
    plan: str
    ingest_key: CreatedKey
    admin_key: CreatedKey


@dataclass(frozen=True, slots=True)
class OrgSummary:
    """One row of ``aeos orgs list``."""

    org_id: uuid.UUID
    name: str
    plan: str
    workos_org_id: str | None
    created_at: datetime
    active_keys: int
    trace_sample_percent: Decimal


def _validate_org(name: str, plan: str) -> str:
    clean = name.strip()
    if not clean:
        raise InvalidInputError("the org name must not be blank")
    if len(clean) > MAX_ORG_NAME:
        raise InvalidInputError(f"the org name is longer than {MAX_ORG_NAME} characters")
    if plan not in PLANS:
        raise InvalidInputError(f"unknown plan {plan!r}; expected one of {', '.join(PLANS)}")
    return clean


def create_org(conn: Connection, name: str, plan: str = "free") -> CreatedOrg:
    """Creates an org and its first ingest and admin keys.

    Raises:
        InvalidInputError: blank or over-long name, unknown plan.
        ConflictError: an org with this name exists.
    """
    clean = _validate_org(name, plan)
    try:
        with conn.begin_nested():
            org_id = conn.execute(
                insert(orgs).values(name=clean, plan=plan).returning(orgs.c.id)
            ).scalar_one()
    except IntegrityError:
        raise ConflictError(f"an org named {clean!r} already exists") from None
    ingest = _insert_key(conn, org_id, generate_key("ingest"), "ingest (created with org)")
    admin = _insert_key(conn, org_id, generate_key("admin"), "admin (created with org)")
    return CreatedOrg(org_id, clean, plan, ingest, admin)


def list_orgs(conn: Connection) -> list[OrgSummary]:
    """All orgs, by name, with their number of unrevoked keys."""
    active = (
        select(func.count())
        .where(api_keys.c.org_id == orgs.c.id, api_keys.c.revoked_at.is_(None))
        .scalar_subquery()
    )
    rows = conn.execute(
        select(
            orgs.c.id,
            orgs.c.name,
            orgs.c.plan,
            orgs.c.workos_org_id,
            orgs.c.created_at,
            active,
            orgs.c.trace_sample_percent,
        ).order_by(orgs.c.name)
    ).all()
    return [OrgSummary(*row) for row in rows]


def set_trace_sample_percent(conn: Connection, org_name: str, percent: str) -> Decimal:
    """Sets the share of error-free traces the org keeps past the full-fidelity window.

    It applies to traces first seen from now on (see :mod:`storage.jobs.sampling`).

    Returns:
        The percentage stored.

    Raises:
        InvalidInputError: not a number from 0 to 100 with at most two decimals.
        NotFoundError: no such org.
    """
    try:
        value = Decimal(keep_threshold(percent)) / 100
    except ValueError as exc:
        raise InvalidInputError(str(exc)) from None
    if value != Decimal(percent.strip()):
        raise InvalidInputError(f"a sampling percentage has at most two decimals, not {percent}")
    org_id = org_id_by_name(conn, org_name)
    stored: Decimal = conn.execute(
        update(orgs)
        .where(orgs.c.id == org_id)
        .values(trace_sample_percent=value)
        .returning(orgs.c.trace_sample_percent)
    ).scalar_one()
    return stored


def org_id_by_name(conn: Connection, name: str) -> uuid.UUID:
    """The id of the org named ``name``.

    Raises:
        NotFoundError: no such org.
    """
    org_id: uuid.UUID | None = conn.execute(
        select(orgs.c.id).where(orgs.c.name == name.strip())
    ).scalar()
    if org_id is None:
        raise NotFoundError(f"no org named {name!r}")
    return org_id


def set_retention(conn: Connection, org_name: str, changes: Mapping[str, int | None]) -> OrgWindows:
    """Sets (days) or removes (None) per-org overrides of retention windows.

    Returns:
        The org's windows afterwards.

    Raises:
        NotFoundError: no such org.
        InvalidInputError: an unknown data class, or days not a whole number in range.
    """
    org_id = org_id_by_name(conn, org_name)
    current = conn.execute(
        select(orgs.c.retention_overrides).where(orgs.c.id == org_id).with_for_update()
    ).scalar_one()
    overrides = merge_overrides(current, changes)
    conn.execute(update(orgs).where(orgs.c.id == org_id).values(retention_overrides=overrides))
    return next(w for w in load_windows(conn) if w.org_id == org_id)


def create_key(conn: Connection, org_name: str, role: str, name: str = "") -> CreatedKey:
    """Creates a key with ``role`` for the org named ``org_name``.

    Raises:
        InvalidInputError: unknown role.
        NotFoundError: no such org.
    """
    if role not in KEY_ROLES:
        raise InvalidInputError(f"unknown role {role!r}; expected one of {', '.join(KEY_ROLES)}")
    org_id = org_id_by_name(conn, org_name)
    return _insert_key(conn, org_id, generate_key(role), name)


def revoke_key(conn: Connection, key_ref: str) -> tuple[uuid.UUID, datetime, bool]:
    """Revokes a key given its id or its prefix (``aeos_ik_XXXXXXXX``).

    Returns:
        The key id, when it was revoked, and whether this call revoked it (False if it
        already was).

    Raises:
        NotFoundError: no such key.
    """
    where = _key_filter(key_ref)
    row = conn.execute(select(api_keys.c.id, api_keys.c.revoked_at).where(where)).first()
    if row is None:
        raise NotFoundError(f"no API key {key_ref!r}")
    if row.revoked_at is not None:
        return row.id, row.revoked_at, False
    revoked_at = conn.execute(
        update(api_keys)
        .where(api_keys.c.id == row.id)
        .values(revoked_at=func.now())
        .returning(api_keys.c.revoked_at)
    ).scalar_one()
    return row.id, revoked_at, True


def _key_filter(key_ref: str) -> ColumnElement[bool]:
    ref = key_ref.strip()
    try:
        return api_keys.c.id == uuid.UUID(ref)
    except ValueError:
        pass
    prefix = parse_prefix(ref) or (ref if parse_prefix(ref + "_x") else None)
    if prefix is None:
        raise InvalidInputError(f"{key_ref!r} is neither a key id (UUID) nor a key prefix")
    return api_keys.c.prefix == prefix


def _insert_key(conn: Connection, org_id: uuid.UUID, key: NewKey, name: str) -> CreatedKey:
    key_id = conn.execute(
        insert(api_keys)
        .values(org_id=org_id, prefix=key.prefix, key_hash=key.key_hash, role=key.role, name=name)
        .returning(api_keys.c.id)
    ).scalar_one()
    return CreatedKey(key_id, org_id, key.prefix, key.role, key.plaintext)


# --- On a connection the caller already scoped (the query API: tenant of the org, or
# staff); these never switch roles, so row security decides which org they touch.

ORG_KEY_ROLES = ("ingest", "admin", "member")  # what an org admin may create


@dataclass(frozen=True, slots=True)
class KeySummary:
    """An API key as listed to its org (never its secret or hash)."""

    key_id: uuid.UUID
    org_id: uuid.UUID
    prefix: str
    role: str
    name: str
    require_signature: bool
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


_KEY_SUMMARY_COLUMNS = (
    api_keys.c.id,
    api_keys.c.org_id,
    api_keys.c.prefix,
    api_keys.c.role,
    api_keys.c.name,
    api_keys.c.require_signature,
    api_keys.c.created_at,
    api_keys.c.last_used_at,
    api_keys.c.revoked_at,
)


def list_org_keys(
    conn: Connection,
    org_id: uuid.UUID,
    *,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None = None,
    include_revoked: bool = True,
) -> list[KeySummary]:
    """The org's keys, newest first, ``limit`` of them after the keyset ``after``."""
    query = select(*_KEY_SUMMARY_COLUMNS).where(api_keys.c.org_id == org_id)
    if not include_revoked:
        query = query.where(api_keys.c.revoked_at.is_(None))
    if after is not None:
        query = query.where(
            sa_tuple(api_keys.c.created_at, api_keys.c.id) < sa_tuple(after[0], after[1])
        )
    rows = conn.execute(
        query.order_by(api_keys.c.created_at.desc(), api_keys.c.id.desc()).limit(limit)
    ).all()
    return [KeySummary(*row) for row in rows]


def create_org_key(conn: Connection, org_id: uuid.UUID, role: str, name: str = "") -> CreatedKey:
    """Creates an ``ingest``, ``admin`` or ``member`` key for ``org_id``.

    Raises:
        InvalidInputError: another role (staff keys are made with ``aeos keys create``).
    """
    if role not in ORG_KEY_ROLES:
        raise InvalidInputError(
            f"unknown role {role!r}; expected one of {', '.join(ORG_KEY_ROLES)}"
        )
    return _insert_key(conn, org_id, generate_key(role), name.strip())


def revoke_org_key(conn: Connection, org_id: uuid.UUID, key_id: uuid.UUID) -> KeySummary:
    """Revokes a key of ``org_id`` (a key already revoked stays as it was).

    Raises:
        NotFoundError: no such key in what the connection may see of that org.
    """
    where = (api_keys.c.id == key_id) & (api_keys.c.org_id == org_id)
    conn.execute(
        update(api_keys).where(where, api_keys.c.revoked_at.is_(None)).values(revoked_at=func.now())
    )
    row = conn.execute(select(*_KEY_SUMMARY_COLUMNS).where(where)).first()
    if row is None:
        raise NotFoundError(f"no API key {key_id} in this org")
    return KeySummary(*row)
