"""Who may call what, for EVERY route of the app (routes added later are covered too).

For each operation: no credential, a malformed one and a revoked key get 401; an ingest
key gets 403; a tenant gets 403 on any staff route, whatever org id it puts in the path;
and on every route that can write (it takes ``AdminConn`` or ``StaffWriteConn``), a member
and ``alias_support`` get 403.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from query_api.deps import admin_connection, staff_write_connection
from query_api.routes import ROUTERS
from storage import admin
from storage.keys import parse_prefix
from tests.api.conftest import RunningApi

_WRITERS = {admin_connection, staff_write_connection}


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # with the path parameters filled in
    writes: bool

    def call(self, api: RunningApi, key: str | None) -> httpx.Response:
        headers = api.headers(key) if key is not None else {}
        return api.client.request(self.method, self.path, headers=headers)


def _calls(dependant: Dependant) -> Iterator[object]:
    for sub in dependant.dependencies:
        yield sub.call
        yield from _calls(sub)


def _operations(org_id: uuid.UUID) -> list[Operation]:
    def fill(match: re.Match[str]) -> str:
        return str(org_id) if match.group(1) == "org_id" else str(uuid.uuid4())

    found: list[Operation] = []
    for router, prefix in ROUTERS:  # what create_app mounts
        for route in router.routes:
            assert isinstance(route, APIRoute), f"{prefix}: a nested router is not walked here"
            writes = any(call in _WRITERS for call in _calls(route.dependant))
            path = re.sub(r"\{(\w+)(?::\w+)?\}", fill, prefix + route.path)
            found.extend(Operation(m, path, writes) for m in sorted(route.methods or ()))
    return found


def test_every_route_refuses_who_may_not_call_it(api: RunningApi) -> None:
    org, other = api.make_org(), api.make_org()
    revoked = api.make_org().member_key
    with api.db.admin_engine().begin() as conn:
        admin.revoke_key(conn, str(parse_prefix(revoked)))
    support = api.staff_key("alias_support")
    operations = _operations(other.org_id)
    assert any(op.writes for op in operations)  # /v1/keys at least
    for op in operations:
        where = f"{op.method} {op.path}"
        for key in (None, "garbage", "aeos_mk_AAAAAAAA_unknown", revoked):
            response = op.call(api, key)
            assert response.status_code == 401, (where, key, response.text)
            assert response.headers["content-type"] == "application/problem+json"
        assert op.call(api, org.ingest_key).status_code == 403, where
        if op.path.startswith("/v1/staff/"):
            for key in (org.admin_key, org.member_key):
                assert op.call(api, key).status_code == 403, (where, response.text)
        if op.writes:
            assert op.call(api, org.member_key).status_code == 403, where
            assert op.call(api, support).status_code == 403, where
