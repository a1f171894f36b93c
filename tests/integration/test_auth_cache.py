"""The receiver's key cache against the real key store (issue 9, finding 4).

Before: every presented token was a cache key (up to 10,000 of any size, never
released), malformed ones included.
"""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid

import pytest

from otlp_receiver._auth import MAX_CACHED_KEYS, NEGATIVE_CACHE_S, Authenticator
from otlp_receiver._errors import ReceiverError
from storage import AsyncKeyStore, admin
from storage.database import Database


def _authenticator(database: Database) -> tuple[Authenticator, AsyncKeyStore]:
    keys = AsyncKeyStore(database.app_conninfo())
    return Authenticator(keys, cache_seconds=60, replay_window_s=300), keys


async def _refused(auth: Authenticator, token: str) -> str:
    with pytest.raises(ReceiverError) as caught:
        await auth.identify(f"Bearer {token}")
    return caught.value.message


def test_malformed_tokens_are_never_looked_up_or_cached(database: Database) -> None:
    auth, keys = _authenticator(database)

    async def body() -> list[str]:
        try:
            return [await _refused(auth, "x" * 60_000 + str(i)) for i in range(500)]
        finally:
            await keys.close()

    messages = asyncio.run(body())
    assert set(messages) == {"malformed ingest key"}
    assert auth.cached == 0


def test_unknown_well_formed_keys_are_cached_briefly_and_by_digest(database: Database) -> None:
    auth, keys = _authenticator(database)
    token = f"aeos_ik_{secrets.token_hex(4)}_{secrets.token_urlsafe(32)}"

    async def body() -> tuple[str, int, int]:
        try:
            message = await _refused(auth, token)
            cached = auth.cached
            await asyncio.sleep(NEGATIVE_CACHE_S + 0.2)
            await _refused(auth, token)  # expired: looked up again, cached again
            return message, cached, auth.cached
        finally:
            await keys.close()

    message, cached, again = asyncio.run(body())
    assert message == "unknown or revoked ingest key"
    assert cached == 1
    assert again == 1
    assert all(len(k) == 32 for k in auth._cache)  # a digest, not the token


def test_the_cache_is_bounded_in_entries(database: Database) -> None:
    auth, keys = _authenticator(database)
    with database.admin_engine().begin() as conn:
        key = admin.create_org(conn, f"org-{uuid.uuid4().hex[:6]}", "pro").ingest_key.plaintext

    async def body() -> tuple[int, uuid.UUID]:
        try:
            started = time.monotonic()
            for _ in range(MAX_CACHED_KEYS + 50):
                auth._cache[secrets.token_bytes(32)] = (started + 60, None)
            identity = (await auth.identify(f"Bearer {key}")).identity
            return auth.cached, identity.org_id
        finally:
            await keys.close()

    cached, org = asyncio.run(body())
    assert cached == MAX_CACHED_KEYS
    assert isinstance(org, uuid.UUID)
