"""People with OIDC access tokens, against a JWKS served by the test on 127.0.0.1.

Tokens are minted here with keys generated here, the way WorkOS AuthKit shapes them
(``sub``, ``org_id``, ``role``, ``iss``, ``exp``, ``iat``; no ``aud``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from sqlalchemy import text

from query_api.settings import ApiSettings
from storage.database import Database
from storage.identities import map_workos_org, set_staff_role
from storage.tenancy import DbRole, Scope
from storage.transaction import scoped_transaction
from tests.api.conftest import RunningApi, start_api

ISSUER = "https://api.workos.com/user_management/client_123"
WORKOS_ORG = "org_01HTESTORG"


@dataclass
class Jwks:
    """A JWKS document served over HTTP; ``keys`` can be swapped (rotation)."""

    keys: list[dict[str, Any]] = field(default_factory=list)
    fetches: int = 0
    url: str = ""
    server: ThreadingHTTPServer | None = None

    def go_down(self) -> None:
        """The issuer's JWKS endpoint stops answering."""
        assert self.server is not None
        self.server.shutdown()
        self.server.server_close()


def _rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _jwk(private: Any, kid: str) -> dict[str, Any]:
    public = private.public_key()
    if isinstance(private, rsa.RSAPrivateKey):
        jwk: dict[str, Any] = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(public))
        jwk["alg"] = "RS256"
    else:
        jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(public))
    return {**jwk, "kid": kid, "use": "sig"}


@pytest.fixture
def jwks() -> Iterator[Jwks]:
    """A JWKS endpoint on 127.0.0.1 that counts its fetches."""
    doc = Jwks()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            doc.fetches += 1
            body = json.dumps({"keys": doc.keys}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    doc.url = f"http://127.0.0.1:{server.server_address[1]}/sso/jwks/client_123"
    doc.server = server
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield doc
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def oidc_api(database: Database, jwks: Jwks) -> Iterator[RunningApi]:
    settings = ApiSettings(
        oidc_jwks_url=jwks.url,
        oidc_issuers=[ISSUER],
        oidc_leeway_seconds=30,
        oidc_jwks_refresh_cooldown_seconds=0,
    )
    running = start_api(database, settings)
    try:
        yield running
    finally:
        running.stop()


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "user_01HALICE",
        "org_id": WORKOS_ORG,
        "role": "member",
        "sid": "session_01",
        "jti": "jti_01",
        "iat": now,
        "exp": now + 300,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _token(private: Any, kid: str, alg: str = "RS256", **claims: Any) -> str:
    return jwt.encode(_claims(**claims), private, alg, headers={"kid": kid})


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unsigned(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    return f"{signing_input}.{_b64(signature)}"


def _map_org(api: RunningApi, name: str) -> None:
    with scoped_transaction(api.db.admin_engine(), Scope(DbRole.STAFF)) as conn:
        map_workos_org(conn, name, WORKOS_ORG)


def _users(api: RunningApi) -> list[Any]:
    with api.db.admin_engine().connect() as conn:
        return list(conn.execute(text("SELECT workos_user_id, email, org_id, org_role FROM users")))


def test_valid_tokens_sign_in_and_create_the_user_once(oidc_api: RunningApi, jwks: Jwks) -> None:
    org = oidc_api.make_org()
    _map_org(oidc_api, org.name)
    rsa_key, ec_key = _rsa(), ec.generate_private_key(ec.SECP256R1())
    jwks.keys = [_jwk(rsa_key, "k1"), _jwk(ec_key, "k-ec")]
    first = oidc_api.get("/v1/me", _token(rsa_key, "k1", email="Alice@Example.com"))
    assert first.status_code == 200, first.text
    me = first.json()
    assert (me["kind"], me["role"], me["org_id"], me["subject"]) == (
        "user",
        "member",
        str(org.org_id),
        "alice@example.com",
    )
    again = oidc_api.get("/v1/me", _token(ec_key, "k-ec", "ES256", role="admin")).json()
    assert again["user_id"] == me["user_id"]
    assert again["role"] == "admin"
    assert _users(oidc_api) == [("user_01HALICE", "alice@example.com", org.org_id, "admin")]
    assert jwks.fetches == 1  # cached
    # A token without email: the subject stands in for it.
    bob = oidc_api.get("/v1/me", _token(rsa_key, "k1", sub="user_01HBOB")).json()
    assert bob["subject"] == "user_01HBOB"


def test_tokens_refused(oidc_api: RunningApi, jwks: Jwks) -> None:
    org = oidc_api.make_org()
    _map_org(oidc_api, org.name)
    key = _rsa()
    jwks.keys = [_jwk(key, "k1")]
    now = int(time.time())
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header_hs = {"alg": "HS256", "typ": "JWT", "kid": "k1"}
    hs_input = _unsigned(header_hs, _claims()).rsplit(".", 1)[0]
    hs_signature = hmac.new(public_pem, hs_input.encode(), hashlib.sha256).digest()
    refused = {
        "expired": _token(key, "k1", iat=now - 900, exp=now - 120),
        "not yet valid (nbf)": _token(key, "k1", nbf=now + 300),
        "issued in the future": _token(key, "k1", iat=now + 300, exp=now + 600),
        "wrong issuer": _token(key, "k1", iss="https://evil.example.com"),
        "no exp": _token(key, "k1", exp=None),
        "alg none": _unsigned({"alg": "none", "typ": "JWT", "kid": "k1"}, _claims()),
        "HS256 with the public key": f"{hs_input}.{_b64(hs_signature)}",
        "signed by another key": _token(_rsa(), "k1"),
        "garbage": "a.b.c",
    }
    for case, token in refused.items():
        response = oidc_api.get("/v1/me", token)
        assert response.status_code == 401, (case, response.text)
        assert response.json()["type"].endswith("/unauthorized"), case
    # Within the leeway is still fine.
    assert oidc_api.get("/v1/me", _token(key, "k1", iat=now - 400, exp=now - 10)).status_code == 200
    assert _users(oidc_api)[0][0] == "user_01HALICE"


def test_unknown_kid_then_rotated_key_set(oidc_api: RunningApi, jwks: Jwks) -> None:
    org = oidc_api.make_org()
    _map_org(oidc_api, org.name)
    old, new = _rsa(), _rsa()
    jwks.keys = [_jwk(old, "k1")]
    assert oidc_api.get("/v1/me", _token(old, "k1")).status_code == 200
    assert jwks.fetches == 1
    unknown = oidc_api.get("/v1/me", _token(new, "k2"))
    assert unknown.status_code == 401
    assert "unknown key" in unknown.json()["detail"]
    assert jwks.fetches == 2  # fetched again once for the unknown kid
    jwks.keys = [_jwk(new, "k2")]  # the issuer rotates
    assert oidc_api.get("/v1/me", _token(new, "k2")).status_code == 200
    assert jwks.fetches == 3
    assert oidc_api.get("/v1/me", _token(new, "k2")).status_code == 200
    assert jwks.fetches == 3
    assert oidc_api.get("/v1/me", _token(old, "k1")).status_code == 401  # retired key


def test_an_org_nobody_mapped_is_forbidden(oidc_api: RunningApi, jwks: Jwks) -> None:
    key = _rsa()
    jwks.keys = [_jwk(key, "k1")]
    oidc_api.make_org()  # exists, but not mapped to the token's WorkOS organisation
    for token in (_token(key, "k1"), _token(key, "k1", org_id=None)):
        response = oidc_api.get("/v1/me", token)
        assert response.status_code == 403, response.text
        assert response.json()["type"].endswith("/forbidden")
    assert _users(oidc_api) == []  # nobody is created for an org we do not know


def test_staff_rights_come_from_the_users_table(oidc_api: RunningApi, jwks: Jwks) -> None:
    org, other = oidc_api.make_org(), oidc_api.make_org()
    _map_org(oidc_api, org.name)
    key = _rsa()
    jwks.keys = [_jwk(key, "k1")]
    token = _token(key, "k1", email="ops@alias.example", role="admin")
    assert oidc_api.get("/v1/me", token).json()["is_staff"] is False
    staff_path = f"/v1/staff/orgs/{other.org_id}/me"
    assert oidc_api.get(staff_path, token).status_code == 404  # /me is not a view route
    with scoped_transaction(oidc_api.db.admin_engine(), Scope(DbRole.STAFF)) as conn:
        assert set_staff_role(conn, "OPS@alias.example", "alias_support") == 1
    me = oidc_api.get("/v1/me", token).json()
    assert (me["role"], me["is_staff"], me["can_write_org"]) == ("alias_support", True, False)
    # Staff sign in even from a session with no org at all.
    no_org = oidc_api.get("/v1/me", _token(key, "k1", org_id=None)).json()
    assert (no_org["role"], no_org["org_id"]) == ("alias_support", None)


def test_cached_keys_outlive_an_unreachable_issuer(database: Database, jwks: Jwks) -> None:
    settings = ApiSettings(
        oidc_jwks_url=jwks.url, oidc_issuers=[ISSUER], oidc_jwks_cache_seconds=0
    )  # every request would refresh the key set
    running = start_api(database, settings)
    try:
        org = running.make_org()
        _map_org(running, org.name)
        key = _rsa()
        jwks.keys = [_jwk(key, "k1")]
        assert running.get("/v1/me", _token(key, "k1")).status_code == 200
        jwks.go_down()
        assert running.get("/v1/me", _token(key, "k1")).status_code == 200
        assert running.get("/v1/me", _token(_rsa(), "k9")).status_code == 401
    finally:
        running.stop()


def test_jwks_unreachable_is_unavailable(database: Database) -> None:
    settings = ApiSettings(oidc_jwks_url="http://127.0.0.1:9/jwks", oidc_issuers=[ISSUER])
    running = start_api(database, settings)
    try:
        response = running.get("/v1/me", _token(_rsa(), "k1"))
        assert response.status_code == 503
        assert response.headers["retry-after"]
    finally:
        running.stop()


def test_cli_maps_orgs_and_grants_staff(oidc_api: RunningApi, jwks: Jwks) -> None:
    from tests.integration.test_cli import aeos

    url = oidc_api.db.admin_url.render_as_string(hide_password=False)
    org = oidc_api.make_org()
    key = _rsa()
    jwks.keys = [_jwk(key, "k1")]
    mapped = aeos("users", "map-org", org.name, "org_01HCLI", url=url)
    assert mapped.returncode == 0, mapped.stderr
    me = oidc_api.get("/v1/me", _token(key, "k1", org_id="org_01HCLI")).json()
    assert me["org_id"] == str(org.org_id)

    unknown = aeos("users", "grant-staff", "nobody@alias.example", "--role", "alias_admin", url=url)
    assert unknown.returncode == 1
    assert "signed in yet" in unknown.stderr
    bad_role = aeos("users", "grant-staff", "x@alias.example", "--role", "root", url=url)
    assert bad_role.returncode == 1
    assert "alias_admin" in bad_role.stderr

    # Made ahead in a home org, linked at the first sign-in that carries the email.
    ahead = aeos(
        "users",
        "grant-staff",
        "Ops@Alias.example",
        "--role",
        "alias_admin",
        "--org",
        org.name,
        url=url,
    )
    assert ahead.returncode == 0, ahead.stderr
    assert json.loads(ahead.stdout)["users"] == 1
    token = _token(key, "k1", sub="user_01HOPS", email="ops@alias.example", org_id=None)
    staff = oidc_api.get("/v1/me", token).json()
    assert (staff["role"], staff["can_write_org"]) == ("alias_admin", True)
    revoked = aeos("users", "revoke-staff", "ops@alias.example", url=url)
    assert revoked.returncode == 0, revoked.stderr
    assert oidc_api.get("/v1/me", token).status_code == 403  # no org, no staff role
