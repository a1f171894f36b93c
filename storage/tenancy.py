"""Who a database transaction acts as: the per-transaction role and org.

The service logs in as ``aeos_app``, which has no table privileges of its own
(NOINHERIT). Each transaction first calls :func:`act_as`, which switches to exactly one
of the roles below with ``SET LOCAL`` so that the choice ends with the transaction and
can never leak into the next user of a pooled connection.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import Connection, text


class DbRole(StrEnum):
    """The database roles a transaction can act as."""

    INGEST = "aeos_ingest"
    WORKER = "aeos_worker"
    TENANT = "aeos_tenant"
    STAFF = "aeos_staff"
    SUPPORT = "aeos_support"


@dataclass(frozen=True, slots=True)
class Scope:
    """A role, and for ``TENANT`` the one org it may see."""

    role: DbRole
    org_id: uuid.UUID | None = None

    def __post_init__(self) -> None:
        if (self.role is DbRole.TENANT) != (self.org_id is not None):
            raise ValueError("an org id is required for the tenant role, and only for it")


def act_as(conn: Connection, scope: Scope) -> None:
    """Switches the current transaction to ``scope`` (``SET LOCAL``; ends with it)."""
    conn.execute(text(f"SET LOCAL ROLE {scope.role.value}"))
    # Tenants read raw time-split tables through same-named views in schema "tenant"
    # (migration 0003 explains why); everyone else reads the tables themselves.
    path = "tenant, public" if scope.role is DbRole.TENANT else "public"
    conn.execute(text(f"SET LOCAL search_path = {path}"))
    org = str(scope.org_id) if scope.org_id is not None else ""
    conn.execute(text("SELECT set_config('aeos.org_id', :org, true)"), {"org": org})
