"""Keyset paging: opaque, signed cursors and the page envelope.

A cursor carries the sort key of the last row a client saw (``{"t": ..., "id": ...}``),
encoded as URL-safe base64 JSON and signed with an HMAC key of this deployment. A client
cannot forge one (so it cannot steer a query with values it chose), and a tampered or
truncated cursor is refused with a clear error rather than silently restarting the list.
Row security still decides what any query sees; the signature only keeps cursors honest.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel, Field

from query_api.errors import ApiError

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
_MAC_BYTES = 16  # 128-bit tag: forging one is out of reach, and cursors stay short

PageSize = Annotated[
    int,
    Query(ge=1, le=MAX_PAGE_SIZE, description="Rows per page (1-500).", examples=[50]),
]
"""The ``limit`` of a list route; give it the default ``= DEFAULT_PAGE_SIZE``."""

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a list; pass ``next_cursor`` back as ``cursor`` for the next one."""

    data: list[T]
    next_cursor: str | None = Field(
        default=None, description="Opaque; absent or null on the last page."
    )


_key: bytes = secrets.token_bytes(32)


def configure(secret: str | None) -> None:
    """Sets the HMAC key (the same on every replica); a random one when ``secret`` is None."""
    global _key
    _key = hashlib.sha256(secret.encode()).digest() if secret else secrets.token_bytes(32)


def _tag(value: Any) -> Any:
    # JSON keeps str/int/float/bool/None; the types keyset sort keys also need are tagged
    # so that decode_cursor gives back exactly what was encoded.
    if isinstance(value, datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, uuid.UUID):
        return {"$uuid": str(value)}
    if isinstance(value, Decimal):
        return {"$dec": str(value)}
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    raise TypeError(f"a cursor cannot hold a {type(value).__name__}")


def _untag(value: Any) -> Any:
    if isinstance(value, dict) and len(value) == 1:
        ((kind, raw),) = value.items()
        if kind == "$dt":
            return datetime.fromisoformat(raw)
        if kind == "$uuid":
            return uuid.UUID(raw)
        if kind == "$dec":
            return Decimal(raw)
    return value


def _mac(payload: bytes) -> bytes:
    return hmac.new(_key, payload, hashlib.sha256).digest()[:_MAC_BYTES]


def encode_cursor(values: dict[str, Any]) -> str:
    """An opaque cursor holding ``values``.

    Values may be str, int, float, bool, None, datetime, UUID or Decimal; decoding gives
    back the same types.
    """
    payload = json.dumps(
        {k: _tag(v) for k, v in values.items()}, separators=(",", ":"), sort_keys=True
    ).encode()
    token = base64.urlsafe_b64encode(_mac(payload) + payload).decode()
    return token.rstrip("=")


def _invalid() -> ApiError:
    return ApiError(
        400,
        "invalid-cursor",
        "Invalid cursor",
        "cursor: not a cursor this API issued (changed, truncated or from another "
        "deployment); start again without it",
    )


def decode_cursor(token: str) -> dict[str, Any]:
    """The values of a cursor made by :func:`encode_cursor`.

    Raises:
        ApiError: 400 ``invalid-cursor`` for anything not issued here, unchanged.
    """
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise _invalid() from None
    if base64.urlsafe_b64encode(raw).decode().rstrip("=") != token:
        raise _invalid()  # another spelling of the same bytes: not what we issued
    mac, payload = raw[:_MAC_BYTES], raw[_MAC_BYTES:]
    if len(mac) != _MAC_BYTES or not hmac.compare_digest(mac, _mac(payload)):
        raise _invalid()
    try:
        values = json.loads(payload)
        return {str(k): _untag(v) for k, v in values.items()}
    except (ValueError, AttributeError, TypeError):
        raise _invalid() from None
