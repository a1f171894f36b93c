"""Authentication of API keys: one statement, for the async receiver and for sync callers.

Looks keys up with ``aeos_authenticate_key`` (SECURITY DEFINER), which the ``aeos_app``
login may execute without any privilege on ``api_keys`` itself. :class:`AsyncKeyStore`
(the receiver) and :func:`authenticate` (a SQLAlchemy connection: the CLI, the query API)
share :data:`AUTHENTICATE_KEY`, :func:`_key_params` and :func:`_identity`.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import AsyncConnection
from sqlalchemy import Connection

from storage.errors import DatabaseUnavailableError
from storage.keys import hash_key, parse_prefix


@dataclass(frozen=True, slots=True)
class KeyIdentity:
    """Who a presented key belongs to."""

    key_id: uuid.UUID
    org_id: uuid.UUID
    role: str
    require_signature: bool


#: psycopg parameters (``%(name)s``): run as is by psycopg and by ``exec_driver_sql``.
AUTHENTICATE_KEY = (
    "SELECT key_id, org_id, role, require_signature "
    "FROM aeos_authenticate_key(%(prefix)s, %(hash)s)"
)


def _key_params(plaintext: str) -> dict[str, object] | None:
    """The statement's parameters for a presented key, or None if it is malformed."""
    key = plaintext.strip()
    prefix = parse_prefix(key)
    return None if prefix is None else {"prefix": prefix, "hash": hash_key(key)}


def _identity(row: Any) -> KeyIdentity | None:
    if row is None:
        return None
    key_id, org_id, role, require_signature = row
    return KeyIdentity(uuid.UUID(str(key_id)), uuid.UUID(str(org_id)), role, require_signature)


def authenticate(conn: Connection, plaintext: str) -> KeyIdentity | None:
    """The identity of a presented key, or None if it is unknown, malformed or revoked.

    Any role may call it (the function is SECURITY DEFINER); it reads nothing else.
    """
    params = _key_params(plaintext)
    if params is None:
        return None
    return _identity(conn.exec_driver_sql(AUTHENTICATE_KEY, params).first())


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
        params = _key_params(plaintext)
        if params is None:
            return None
        async with self._lock:
            try:
                conn = await self._connection()
                cur = await conn.execute(AUTHENTICATE_KEY, params)
                row = await cur.fetchone()
            except psycopg.OperationalError as exc:
                await self.close()
                raise DatabaseUnavailableError(f"database unavailable: {exc}") from None
        return _identity(row)

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
