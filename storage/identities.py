"""People: OIDC sign-in (users created on first sight) and ALIAS staff rights.

Sign-in goes through ``aeos_authenticate_user`` (SECURITY DEFINER, migration 0012) on a
connection that has not switched roles, like key authentication. Staff rights are
granted by an operator (``aeos users grant-staff``) on a connection scoped to the staff
role; they live in ``users.system_role``, never in a token.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import Connection, insert, select, text, update

from storage.errors import ConflictError, InvalidInputError, NotFoundError
from storage.schema import orgs, users
from storage.schema._tenancy import SYSTEM_ROLES


@dataclass(frozen=True, slots=True)
class UserIdentity:
    """A person who signed in: the user row, the org of the token, any staff role."""

    user_id: uuid.UUID
    org_id: uuid.UUID | None  # the org the token's org_id claim maps to; None if unmapped
    system_role: str | None
    email: str


def authenticate_user(
    conn: Connection,
    subject: str,
    email: str | None,
    workos_org_id: str | None,
    org_role: str | None,
) -> UserIdentity | None:
    """The user of a verified token, created on first sight in the token's org.

    Returns:
        None when the subject is unknown and the token names no org we know (or its email
        is taken in that org by another identity).
    """
    row = conn.execute(
        text("SELECT * FROM aeos_authenticate_user(:sub, :email, :org, :role)"),
        {"sub": subject, "email": email, "org": workos_org_id, "role": org_role},
    ).first()
    if row is None:
        return None
    return UserIdentity(row.user_id, row.org_id, row.system_role, row.email)


def _check_role(role: str | None) -> None:
    if role is not None and role not in SYSTEM_ROLES:
        raise InvalidInputError(
            f"unknown staff role {role!r}; expected one of {', '.join(SYSTEM_ROLES)}"
        )


def set_staff_role(
    conn: Connection, email: str, role: str | None, home_org: str | None = None
) -> int:
    """Sets (or, with None, removes) the staff role of every user with ``email``.

    The connection must be scoped to the staff role. With ``home_org``, a user not seen
    yet is created there, unlinked; the first sign-in whose token carries that email
    links it.

    Returns:
        How many users changed.

    Raises:
        InvalidInputError: an unknown role, or a blank email.
        NotFoundError: nobody with that email (and no ``home_org``), or no such org.
    """
    _check_role(role)
    clean = email.strip().lower()
    if not clean:
        raise InvalidInputError("the email must not be blank")
    changed = conn.execute(
        update(users).where(users.c.email == clean).values(system_role=role).returning(users.c.id)
    ).all()
    if changed or role is None:
        return len(changed)
    if home_org is None:
        raise NotFoundError(
            f"nobody with email {clean!r} has signed in yet; ask them to sign in once, "
            "or give --org to create them"
        )
    org_id = conn.execute(select(orgs.c.id).where(orgs.c.name == home_org.strip())).scalar()
    if org_id is None:
        raise NotFoundError(f"no org named {home_org!r}")
    conn.execute(
        insert(users).values(org_id=org_id, email=clean, org_role="member", system_role=role)
    )
    return 1


def map_workos_org(conn: Connection, org_name: str, workos_org_id: str | None) -> uuid.UUID:
    """Sets (or clears) the WorkOS organisation whose members sign in to ``org_name``.

    The connection must be scoped to the staff role.

    Raises:
        NotFoundError: no such org.
        ConflictError: that WorkOS organisation is mapped to another org.
    """
    value = workos_org_id.strip() if workos_org_id else None
    if value == "":
        raise InvalidInputError("the WorkOS organisation id must not be blank")
    taken = conn.execute(
        select(orgs.c.name).where(orgs.c.workos_org_id == value, orgs.c.name != org_name.strip())
    ).scalar()
    if value is not None and taken is not None:
        raise ConflictError(f"{value!r} is already mapped to org {taken!r}")
    org_id: uuid.UUID | None = conn.execute(
        update(orgs)
        .where(orgs.c.name == org_name.strip())
        .values(workos_org_id=value)
        .returning(orgs.c.id)
    ).scalar()
    if org_id is None:
        raise NotFoundError(f"no org named {org_name!r}")
    return org_id
