"""Who sent a request: the ingest key (and, where a key requires it, the body signature).

The org comes only from the key. Lookups are cached for a few seconds
(``AEOS_RECEIVER_AUTH_CACHE_SECONDS``), so a revoked key stops working within that time.
"""

from __future__ import annotations

import hmac
import time
from collections import OrderedDict
from typing import Protocol

from otlp_receiver import _errors
from semconv import signing
from storage import DatabaseUnavailableError, KeyIdentity

INGEST_ROLES = frozenset({"ingest"})
MAX_CACHED_KEYS = 10_000


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
        self._cache: OrderedDict[str, tuple[float, KeyIdentity | None]] = OrderedDict()

    async def identify(
        self, authorization: str | None, *, body: bytes | None, signature: str | None
    ) -> KeyIdentity:
        """The identity behind a request, checking the signature when the key needs one.

        Args:
            authorization: the ``authorization`` header or metadata value.
            body: the raw body as received (HTTP), or None where no signature can be made
                (gRPC).
            signature: the ``x-aeos-signature`` header, if any.

        Raises:
            ReceiverError: UNAUTHENTICATED, PERMISSION_DENIED, or UNAVAILABLE when the
                database cannot be asked.
        """
        token = bearer_token(authorization)
        identity = await self._lookup(token)
        if identity is None:
            raise _errors.unauthenticated("unknown or revoked ingest key")
        if identity.role not in INGEST_ROLES:
            raise _errors.forbidden(f"a key with role {identity.role!r} cannot export telemetry")
        if identity.require_signature or signature is not None:
            await self._verify(token, body, signature)
        return identity

    async def _lookup(self, token: str) -> KeyIdentity | None:
        now = time.monotonic()
        cached = self._cache.get(token)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        try:
            identity = await self._keys.lookup(token)
        except DatabaseUnavailableError as exc:
            raise _errors.unavailable(str(exc)) from None
        self._cache[token] = (now, identity)
        self._cache.move_to_end(token)
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
