"""``aeos users``: people who sign in with OIDC, and ALIAS staff rights."""

from __future__ import annotations

from typing import Annotated

import typer

from storage.identities import map_workos_org, set_staff_role
from storage.schema._tenancy import SYSTEM_ROLES
from storage.tenancy import DbRole, Scope
from storage.transaction import scoped_transaction

users_app = typer.Typer(
    help="People signing in with OIDC (WorkOS): staff rights, org mapping.", no_args_is_help=True
)


@users_app.command("grant-staff")
def grant_staff(
    email: Annotated[str, typer.Argument(help="The person's email (as their token carries it).")],
    role: Annotated[str, typer.Option(help=f"Staff role: {', '.join(SYSTEM_ROLES)}.")],
    org: Annotated[
        str | None,
        typer.Option(help="Home org to create them in if they have never signed in."),
    ] = None,
) -> None:
    """Give a person ALIAS staff rights (alias_admin: all orgs, config; alias_support: read)."""
    from aeos.cli import _database, _fail, _print_json, _storage_errors

    if role not in SYSTEM_ROLES:
        _fail(f"unknown staff role {role!r}; expected one of {', '.join(SYSTEM_ROLES)}")
    with (
        _database() as db,
        _storage_errors(),
        scoped_transaction(db.admin_engine(), Scope(DbRole.STAFF)) as conn,
    ):
        changed = set_staff_role(conn, email, role, org)
    _print_json({"email": email.strip().lower(), "system_role": role, "users": changed})


@users_app.command("revoke-staff")
def revoke_staff(
    email: Annotated[str, typer.Argument(help="The person's email.")],
) -> None:
    """Remove a person's staff rights (they keep their org role)."""
    from aeos.cli import _database, _print_json, _storage_errors

    with (
        _database() as db,
        _storage_errors(),
        scoped_transaction(db.admin_engine(), Scope(DbRole.STAFF)) as conn,
    ):
        changed = set_staff_role(conn, email, None)
    _print_json({"email": email.strip().lower(), "system_role": None, "users": changed})


@users_app.command("map-org")
def map_org(
    org: Annotated[str, typer.Argument(help="Name of the org.")],
    workos_org_id: Annotated[
        str, typer.Argument(help="The WorkOS organisation id (org_01…); '-' to clear.")
    ],
) -> None:
    """Map a WorkOS organisation to an org: its members' tokens (org_id claim) sign in there."""
    from aeos.cli import _database, _print_json, _storage_errors

    value = None if workos_org_id == "-" else workos_org_id
    with (
        _database() as db,
        _storage_errors(),
        scoped_transaction(db.admin_engine(), Scope(DbRole.STAFF)) as conn,
    ):
        org_id = map_workos_org(conn, org, value)
    _print_json({"org_id": org_id, "name": org, "workos_org_id": value})
