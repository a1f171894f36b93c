"""Authentication of API keys for the async ingest path (the receiver).

Looks keys up with ``aeos_authenticate_key`` (SECURITY DEFINER), which the ``aeos_app``
login may execute without any privilege on ``api_keys`` itself.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import AsyncConnection

from storage.errors import DatabaseUnavailableError
from storage.keys import hash_key, parse_prefix


@dataclass(frozen=True, slots=True)
class KeyIdentity:
    """Who a presented key belongs to."""

    key_id: uuid.UUID
    org_id: uuid.UUID
    role: str
    require_signature: bool


class AsyncKeyStore:
    """Looks up presented keys on one dedicated connection (reconnects when needed)."""

    def __init__(self, conninfo: str) -> None:
        self._conninfo = conninfo
        self._conn: AsyncConnection[Any] | None = None
        self._lock = asyncio.Lock()

    async def lookup(self, plaintext: str) -> KeyIdentity | None:
        """The identity of a key, or None if it is malformed, unknown or revoked.

        Raises:
            DatabaseUnavailableError: the database cannot be reached.
        """
        prefix = parse_prefix(plaintext)
        if prefix is None:
            return None
        async with self._lock:
            try:
                conn = await self._connection()
                cur = await conn.execute(
                    "SELECT key_id, org_id, role, require_signature "
                    "FROM aeos_authenticate_key(%s, %s)",
                    [prefix, hash_key(plaintext)],
                )
                row = await cur.fetchone()
            except psycopg.OperationalError as exc:
                await self.close()
                raise DatabaseUnavailableError(f"database unavailable: {exc}") from None
        if row is None:
            return None
        key_id, org_id, role, require_signature = row
        return KeyIdentity(uuid.UUID(str(key_id)), uuid.UUID(str(org_id)), role, require_signature)

    async def register_signature(self, signature: str, window_s: int) -> bool:
        """Records a request signature; False if it was seen before (a replay).

        Raises:
            DatabaseUnavailableError: the database cannot be reached.
        """
        async with self._lock:
            try:
                conn = await self._connection()
                cur = await conn.execute(
                    "SELECT aeos_register_signature(%s, %s)", [signature, window_s]
                )
                row = await cur.fetchone()
            except psycopg.OperationalError as exc:
                await self.close()
                raise DatabaseUnavailableError(f"database unavailable: {exc}") from None
        return bool(row and row[0])

    async def _connection(self) -> AsyncConnection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = await AsyncConnection.connect(
                self._conninfo, autocommit=True, connect_timeout=5
            )
        return self._conn

    async def close(self) -> None:
        """Closes the connection."""
        if self._conn is not None:
            await self._conn.close()
            self._conn = None
