"""Hostile input, class "authentication": missing, malformed, unknown, revoked keys.

Issue 9, finding 4 (every presented token cached, up to 10,000 entries of any size) is
reproduced here against the live receiver; ``tests/integration/test_auth_cache.py``
checks the cache's bounds directly.
"""

from __future__ import annotations

import secrets
import uuid

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from sqlalchemy import text

from storage import admin
from tests.e2e._hostile import (
    HostileService,
    alongside,
    assert_partial,
    assert_refused,
    hostile,
    post,
    spans_body,
)

__all__ = ["hostile"]  # the fixture


def _org_name(svc: HostileService, org: uuid.UUID) -> str:
    return str(svc.scalar("SELECT name FROM orgs WHERE id = :o", o=org))


def test_a_missing_key_is_401(hostile: HostileService) -> None:
    response = alongside(hostile, lambda: post(f"{hostile.url}/v1/traces", None, spans_body(3)))
    assert_refused(response, 401, "missing authorization header")


def test_malformed_tokens_are_refused_without_a_lookup(hostile: HostileService) -> None:
    before = hostile.refusals("malformed_key")
    huge = "aeos_ik_AAAAAAAA_" + "x" * 10_000
    response = alongside(hostile, lambda: post(f"{hostile.url}/v1/traces", huge, spans_body(1)))
    assert_refused(response, 401, "malformed ingest key")
    assert_refused(post(f"{hostile.url}/v1/traces", "not-a-key", spans_body(1)), 401, "malformed")
    assert hostile.refusals("malformed_key") == before + 2


def test_a_flood_of_distinct_bogus_keys_is_refused(hostile: HostileService) -> None:
    """Finding 4: 2,000 distinct bogus tokens stayed in the cache for good."""

    def attack() -> set[int]:
        statuses = set()
        for _ in range(300):
            token = f"aeos_ik_{secrets.token_hex(4)}_{secrets.token_urlsafe(32)}"
            statuses.add(post(f"{hostile.url}/v1/traces", token, b"").status_code)
        return statuses

    assert alongside(hostile, attack) == {401}


def test_a_revoked_key_is_401(hostile: HostileService) -> None:
    org, _ = hostile.new_org()
    with hostile.db.admin_engine().begin() as conn:
        extra = admin.create_key(conn, _org_name(hostile, org), "ingest")
        admin.revoke_key(conn, str(extra.key_id))
    response = alongside(
        hostile, lambda: post(f"{hostile.url}/v1/traces", extra.plaintext, spans_body(1))
    )
    assert_refused(response, 401, "unknown or revoked ingest key")


def test_a_key_of_another_role_is_403(hostile: HostileService) -> None:
    org, _ = hostile.new_org()
    with hostile.db.admin_engine().begin() as conn:
        member = admin.create_key(conn, _org_name(hostile, org), "member")
    response = alongside(
        hostile, lambda: post(f"{hostile.url}/v1/traces", member.plaintext, spans_body(1))
    )
    assert_refused(response, 403, "cannot export telemetry")


def test_a_key_that_requires_signatures_is_refused_unsigned(hostile: HostileService) -> None:
    org, key = hostile.new_org()
    with hostile.db.admin_engine().begin() as conn:
        conn.execute(text("UPDATE api_keys SET require_signature = true WHERE org_id = :o"),
                     {"o": org})  # fmt: skip

    def attack() -> grpc.StatusCode:
        with grpc.insecure_channel(hostile.grpc_endpoint) as channel:
            stub = trace_service_pb2_grpc.TraceServiceStub(channel)
            request = trace_service_pb2.ExportTraceServiceRequest.FromString(spans_body(2))
            try:
                stub.Export(request, metadata=[("authorization", f"Bearer {key}")], timeout=20)
            except grpc.RpcError as exc:
                return exc.code()
            return grpc.StatusCode.OK

    assert alongside(hostile, attack) == grpc.StatusCode.UNAUTHENTICATED
    unsigned = post(f"{hostile.url}/v1/traces", key, spans_body(1))
    assert_refused(unsigned, 401, "x-aeos-signature")


def test_attributes_claiming_another_org_are_stored_under_the_key_org(
    hostile: HostileService,
) -> None:
    org, key = hostile.new_org()
    victim, _ = hostile.new_org()
    body = spans_body(2, {"org_id": str(victim), "aeos.org.id": str(victim)},
                      resource={"service.name": "x", "aeos.org.id": str(victim)})  # fmt: skip
    response = alongside(hostile, lambda: post(f"{hostile.url}/v1/traces", key, body))
    assert_partial(response, 0, "")
    assert hostile.scalar("SELECT count(*) FROM spans WHERE org_id = :o", o=org) == 2
    assert hostile.scalar("SELECT count(*) FROM spans WHERE org_id = :o", o=victim) == 0
