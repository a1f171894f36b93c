"""What ``aeos serve`` prints once it is ready: endpoints, keys, and calls to try.

A newcomer should be able to copy a line and see data: so with ``--demo`` the banner
gives, besides the ingest key, a read (member) key of the demo org and a read-only staff
key, each shown once, and ``curl`` calls that use them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from fastapi.routing import APIRoute

from query_api.deps import STAFF_ORG_PREFIX
from query_api.routes import ROUTERS, TENANT_PREFIX
from storage import DbRole, Scope, admin, scoped_transaction
from storage.database import Database
from storage.errors import NotFoundError

DEMO_ORG = "demo"
# The first of these the API has is the example call (other issues add the views).
TENANT_EXAMPLES = ("/overview", "/agents", "/task-runs", "/me")
STAFF_EXAMPLES = ("/staff/overview", "/staff/orgs")


@dataclass(frozen=True, slots=True)
class DemoKeys:
    """Fresh keys for the demo org (shown once)."""

    org_id: uuid.UUID
    ingest: str
    member: str
    staff: str  # alias_support: reads every org, writes nothing


def demo_keys(db: Database) -> DemoKeys:
    """Creates the demo org if missing, and fresh ingest, member and staff keys for it."""
    with scoped_transaction(db.admin_engine(), Scope(DbRole.STAFF)) as conn:
        try:
            org_id = admin.org_id_by_name(conn, DEMO_ORG)
            ingest = admin.create_key(conn, DEMO_ORG, "ingest", "make run demo").plaintext
        except NotFoundError:
            org = admin.create_org(conn, DEMO_ORG, "pro")
            org_id, ingest = org.org_id, org.ingest_key.plaintext
        member = admin.create_key(conn, DEMO_ORG, "member", "make run demo (read)").plaintext
        staff = admin.create_key(conn, DEMO_ORG, "alias_support", "make run demo (staff)")
    return DemoKeys(org_id, ingest, member, staff.plaintext)


def _api_paths() -> set[str]:
    paths: set[str] = set()
    for router, prefix in ROUTERS:
        for route in router.routes:
            if isinstance(route, APIRoute) and "GET" in (route.methods or set()):
                paths.add(prefix + route.path)
    return paths


def _example(prefix: str, candidates: tuple[str, ...], paths: set[str]) -> str | None:
    return next((prefix + c for c in candidates if prefix + c in paths), None)


def demo_lines(base: str, keys: DemoKeys) -> list[str]:
    """The banner lines for the demo keys, with example calls."""
    paths = _api_paths()
    tenant = _example(TENANT_PREFIX, TENANT_EXAMPLES, paths) or "/v1/me"
    org_views = STAFF_ORG_PREFIX.replace("{org_id}", str(keys.org_id))
    staff = (
        _example(TENANT_PREFIX, STAFF_EXAMPLES, paths)
        or _example(
            org_views,
            TENANT_EXAMPLES[:-1],
            {p.replace("{org_id}", str(keys.org_id)) for p in paths},
        )
        or "/v1/me"
    )
    return [
        f"  Demo org       '{DEMO_ORG}', ingest key (shown once): {keys.ingest}",
        f"                 read key (member, shown once): {keys.member}",
        f"  Staff key      alias_support, reads every org (shown once): {keys.staff}",
        f"  Try            curl -H 'Authorization: Bearer {keys.member}' {base}{tenant}",
        f"                 curl -H 'Authorization: Bearer {keys.staff}' {base}{staff}",
    ]
