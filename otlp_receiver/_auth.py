"""Who sent a request: the ingest key (and, where a key requires it, the body signature).

The org comes only from the key, and the key is checked before anything else of the
request is read or decoded (the signature, which covers the body, afterwards).

Lookups are cached for a few seconds (``AEOS_RECEIVER_AUTH_CACHE_SECONDS``), so a revoked
key stops working within that time. The cache is bounded: at most ``MAX_CACHED_KEYS``
entries, each of a fixed size (the 32-byte SHA-256 of the token, never the token itself,
and an identity or None), so a few megabytes at most whatever tokens are presented. A
token that is not a well-formed key (``storage.keys.parse_prefix``; longer than
``MAX_TOKEN_CHARS``) is refused without a lookup and never cached; an unknown or revoked
well-formed key is cached for ``NEGATIVE_CACHE_S`` only.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

from otlp_receiver import _errors
from semconv import signing
from storage import DatabaseUnavailableError, KeyIdentity, parse_prefix

INGEST_ROLES = frozenset({"ingest"})
MAX_CACHED_KEYS = 10_000
MAX_TOKEN_CHARS = 128  # a key is 61 characters (storage.keys)
NEGATIVE_CACHE_S = 2.0


@dataclass(frozen=True, slots=True)
class Credential:
    """An authenticated key: who it is, and the token (to check a signature with)."""

    identity: KeyIdentity
    token: str


class KeyLookup(Protocol):
    """Resolves a presented key (``storage.auth.AsyncKeyStore``)."""

    async def lookup(self, plaintext: str) -> KeyIdentity | None: ...

    async def register_signature(self, signature: str, window_s: int) -> bool: ...


def bearer_token(header: str | None) -> str:
    """The token of an ``authorization: Bearer <token>`` header.

    Raises:
        ReceiverError: missing or not a bearer token.
    """
    if not header:
        raise _errors.unauthenticated("missing authorization header (Bearer <ingest key>)")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _errors.unauthenticated("the authorization header must be 'Bearer <ingest key>'")
    return token.strip()


class Authenticator:
    """Authenticates requests, with a small time-bounded cache of key lookups."""

    def __init__(self, keys: KeyLookup, *, cache_seconds: float, replay_window_s: int) -> None:
        self._keys = keys
        self._ttl = cache_seconds
        self._window = replay_window_s
        # sha256(token) -> (expires at, identity or None)
        self._cache: OrderedDict[bytes, tuple[float, KeyIdentity | None]] = OrderedDict()

    @property
    def cached(self) -> int:
        """Entries in the lookup cache."""
        return len(self._cache)

    async def identify(self, authorization: str | None) -> Credential:
        """The key behind a request (before its body is read or decoded).

        Raises:
            ReceiverError: UNAUTHENTICATED, PERMISSION_DENIED, or UNAVAILABLE when the
                database cannot be asked.
        """
        token = bearer_token(authorization)
        if len(token) > MAX_TOKEN_CHARS or parse_prefix(token) is None:
            raise _errors.unauthenticated("malformed ingest key", reason="malformed_key")
        identity = await self._lookup(token)
        if identity is None:
            raise _errors.unauthenticated("unknown or revoked ingest key")
        if identity.role not in INGEST_ROLES:
            raise _errors.forbidden(f"a key with role {identity.role!r} cannot export telemetry")
        return Credential(identity, token)

    async def check_signature(
        self, credential: Credential, body: bytes | None, signature: str | None
    ) -> None:
        """Checks the body signature when the key requires one (or one is sent).

        Args:
            credential: what :meth:`identify` returned.
            body: the raw body as received (HTTP), or None where no signature can be made
                (gRPC).
            signature: the ``x-aeos-signature`` header, if any.

        Raises:
            ReceiverError: UNAUTHENTICATED, or UNAVAILABLE when the database cannot be asked.
        """
        if credential.identity.require_signature or signature is not None:
            await self._verify(credential.token, body, signature)

    async def _lookup(self, token: str) -> KeyIdentity | None:
        now = time.monotonic()
        digest = hashlib.sha256(token.encode()).digest()
        cached = self._cache.get(digest)
        if cached is not None and now < cached[0]:
            return cached[1]
        try:
            identity = await self._keys.lookup(token)
        except DatabaseUnavailableError as exc:
            raise _errors.unavailable(str(exc)) from None
        ttl = self._ttl if identity is not None else min(self._ttl, NEGATIVE_CACHE_S)
        if ttl > 0:
            self._cache[digest] = (now + ttl, identity)
            self._cache.move_to_end(digest)
            while len(self._cache) > MAX_CACHED_KEYS:
                self._cache.popitem(last=False)
        return identity

    async def _verify(self, token: str, body: bytes | None, header: str | None) -> None:
        if body is None:
            raise _errors.unauthenticated(
                "this key requires signed requests: use OTLP/HTTP with the x-aeos-signature header"
            )
        parsed = signing.parse(header or "")
        if parsed is None:
            raise _errors.unauthenticated("missing or malformed x-aeos-signature header")
        timestamp, given = parsed
        if abs(time.time() - timestamp) > self._window:
            raise _errors.unauthenticated(
                f"signature timestamp outside the {self._window}s replay window"
            )
        expected = signing.signature(token, body, timestamp)
        if not hmac.compare_digest(expected, given):
            raise _errors.unauthenticated("the request signature does not match its body")
        try:
            fresh = await self._keys.register_signature(given, self._window)
        except DatabaseUnavailableError as exc:
            raise _errors.unavailable(str(exc)) from None
        if not fresh:
            raise _errors.unauthenticated("this signed request was already received (replay)")
