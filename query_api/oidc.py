"""People: OIDC access tokens (WorkOS AuthKit, or any issuer with a JWKS).

A token is accepted only if it is signed with RS256 or ES256 by a key of the configured
JWKS (never ``none``, never an HMAC algorithm: with HS256 the public key itself would be a
valid secret), comes from an accepted issuer, and is within ``exp`` / ``nbf`` / ``iat``
give or take a small leeway. Its ``org_id`` claim maps to ``orgs.workos_org_id``; the
user is created on first sight; staff rights come only from ``users.system_role``.

The key set is fetched with an async HTTP client (the event loop never blocks on it),
cached, and fetched again once when a token names a key id the cache does not have (the
issuer rotated its keys), at most once per cooldown so random key ids cannot make us
hammer the issuer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httpx
import jwt
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Engine

from query_api.deps import Principal, PrincipalRole
from query_api.errors import ApiError
from query_api.settings import ApiSettings
from storage import UserIdentity, authenticate_user

_log = logging.getLogger(__name__)

ALGORITHMS = {"RS256": "RSA", "ES256": "EC"}  # accepted alg -> the key type it needs
MAX_TOKEN_BYTES = 16 * 1024
JWKS_TIMEOUT_S = 5.0
REQUIRED_CLAIMS = ["exp", "iat", "iss", "sub"]


def _unauthorized(detail: str) -> ApiError:
    return ApiError(
        401,
        "unauthorized",
        "Unauthorized",
        detail,
        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


class JwksCache:
    """The issuer's signing keys by ``kid``, refreshed when stale or on an unknown kid."""

    def __init__(self, url: str, ttl_s: float, cooldown_s: float) -> None:
        self._url = url
        self._ttl = ttl_s
        self._cooldown = cooldown_s
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()

    async def key(self, kid: str) -> jwt.PyJWK | None:
        """The key ``kid``, or None if the issuer does not have it (after one refetch)."""
        if time.monotonic() - self._fetched_at > self._ttl:
            await self._refresh(force=False)
        if kid not in self._keys:
            await self._refresh(force=True)
        return self._keys.get(kid)

    async def _refresh(self, *, force: bool) -> None:
        async with self._lock:
            age = time.monotonic() - self._fetched_at
            if (force and age < self._cooldown) or (not force and age <= self._ttl):
                return  # another request just fetched it
            try:
                self._keys = await self._fetch()
            except ApiError:
                if not self._keys:
                    raise
                # The issuer is unreachable but we know its keys: keep them a while.
                self._fetched_at = time.monotonic() - self._ttl + self._cooldown
                return
            self._fetched_at = time.monotonic()

    async def _fetch(self) -> dict[str, jwt.PyJWK]:
        try:
            async with httpx.AsyncClient(timeout=JWKS_TIMEOUT_S) as client:
                response = await client.get(self._url, headers={"Accept": "application/json"})
            response.raise_for_status()
            document = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            _log.warning("cannot fetch the JWKS at %s: %s", self._url, exc)
            raise ApiError(
                503,
                "unavailable",
                "Temporarily unavailable",
                "the identity provider's key set cannot be fetched; retry shortly",
                headers={"Retry-After": "5"},
            ) from None
        return _parse_jwks(document)


def _parse_jwks(document: Any) -> dict[str, jwt.PyJWK]:
    keys: dict[str, jwt.PyJWK] = {}
    entries = document.get("keys", []) if isinstance(document, dict) else []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str):
            continue
        if entry.get("kty") not in ALGORITHMS.values() or entry.get("use", "sig") != "sig":
            continue  # symmetric (oct) or encryption keys never verify a token here
        try:
            keys[entry["kid"]] = jwt.PyJWK(entry)
        except jwt.PyJWTError as exc:
            _log.warning("skipping JWKS key %s: %s", entry["kid"], exc)
    return keys


def _header(token: str) -> tuple[str, str]:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise _unauthorized("the access token is not a well-formed JWT") from None
    alg, kid = header.get("alg"), header.get("kid")
    if alg not in ALGORITHMS:
        raise _unauthorized(f"access tokens must be signed with RS256 or ES256, not {alg!r}")
    if not isinstance(kid, str):
        raise _unauthorized("the access token names no signing key (kid)")
    return alg, kid


class OidcVerifier:
    """Verifies access tokens and maps them to principals."""

    def __init__(self, settings: ApiSettings) -> None:
        assert settings.oidc_jwks_url is not None
        self._settings = settings
        self._jwks = JwksCache(
            settings.oidc_jwks_url,
            settings.oidc_jwks_cache_seconds,
            settings.oidc_jwks_refresh_cooldown_seconds,
        )

    async def claims(self, token: str) -> dict[str, Any]:
        """The verified claims of ``token``.

        Raises:
            ApiError: 401 for any token that is not valid now; 503 if the JWKS is unreachable.
        """
        if len(token) > MAX_TOKEN_BYTES:
            raise _unauthorized("the access token is too large")
        alg, kid = _header(token)
        key = await self._jwks.key(kid)
        if key is None:
            raise _unauthorized(f"the access token is signed with an unknown key {kid!r}")
        if key.key_type != ALGORITHMS[alg] or (alg == "ES256" and key.algorithm_name != "ES256"):
            raise _unauthorized(f"key {kid!r} cannot verify {alg}")
        s = self._settings
        try:
            return jwt.decode(
                token,
                key.key,
                algorithms=[alg],
                issuer=s.oidc_issuers,
                audience=s.oidc_audience,
                leeway=s.oidc_leeway_seconds,
                options={"require": REQUIRED_CLAIMS, "verify_aud": s.oidc_audience is not None},
            )
        except jwt.ExpiredSignatureError:
            raise _unauthorized("the access token has expired") from None
        except jwt.ImmatureSignatureError:
            raise _unauthorized("the access token is not valid yet") from None
        except jwt.InvalidIssuerError:
            raise _unauthorized("the access token's issuer is not accepted") from None
        except jwt.PyJWTError as exc:
            raise _unauthorized(f"the access token is invalid: {exc}") from None

    async def principal(self, engine: Engine, token: str) -> Principal:
        """The principal of a valid token.

        Raises:
            ApiError: 401 invalid token; 403 an org nobody mapped, or no org and no staff role.
        """
        claims = await self.claims(token)
        subject = claims["sub"]
        org_claim = claims.get("org_id")
        identity = await run_in_threadpool(_sign_in, engine, claims)
        if identity is None or (identity.org_id is None and identity.system_role is None):
            where = f"organisation {org_claim!r}" if org_claim else "no organisation"
            raise ApiError(
                403,
                "forbidden",
                "Forbidden",
                f"the access token is valid, but {where} is mapped to no org here "
                "(aeos users map-org ORG WORKOS_ORG_ID)",
            )
        if identity.system_role is not None:
            role: PrincipalRole = identity.system_role  # type: ignore[assignment]  # CHECK
        else:
            role = "admin" if claims.get("role") == "admin" else "member"
        # The email when the token carries one (a JWT template), else the IdP subject.
        shown = identity.email if isinstance(claims.get("email"), str) else str(subject)
        return Principal("user", role, identity.org_id, None, identity.user_id, shown)


def _sign_in(engine: Engine, claims: dict[str, Any]) -> UserIdentity | None:
    email = claims.get("email")
    org = claims.get("org_id")
    role = claims.get("role")
    with engine.begin() as conn:  # aeos_authenticate_user is SECURITY DEFINER
        return authenticate_user(
            conn,
            str(claims["sub"]),
            email if isinstance(email, str) else None,
            org if isinstance(org, str) else None,
            role if isinstance(role, str) else None,
        )
