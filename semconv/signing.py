"""HMAC signing of OTLP/HTTP request bodies (stdlib only; used by agents and the receiver).

Header: ``x-aeos-signature: t=<unix seconds>,v1=<hex HMAC-SHA256>``. The HMAC key is the
SHA-256 of the ingest key; the signed message is ``b"<t>." + body``, where ``body`` is
exactly what is sent (after compression). The receiver accepts a signature within a
replay window around its clock and refuses a signature it has already seen.

With the OpenTelemetry SDK's HTTP exporters::

    session = requests.Session()
    session.auth = SigningAuth(ingest_key)
    OTLPSpanExporter(endpoint=..., headers={"authorization": f"Bearer {ingest_key}"},
                     session=session)
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any, Final

SIGNATURE_HEADER: Final = "x-aeos-signature"
SIGNATURE_VERSION: Final = "v1"


def signing_key(ingest_key: str) -> bytes:
    """The HMAC key derived from an ingest key."""
    return hashlib.sha256(ingest_key.encode()).digest()


def signature(ingest_key: str, body: bytes, timestamp: int) -> str:
    """The hex HMAC of ``body`` at ``timestamp`` (Unix seconds)."""
    message = str(timestamp).encode() + b"." + body
    return hmac.new(signing_key(ingest_key), message, hashlib.sha256).hexdigest()


def sign(ingest_key: str, body: bytes, now: float | None = None) -> str:
    """The value of the ``x-aeos-signature`` header for ``body``."""
    timestamp = int(time.time() if now is None else now)
    return f"t={timestamp},{SIGNATURE_VERSION}={signature(ingest_key, body, timestamp)}"


def parse(header: str) -> tuple[int, str] | None:
    """``(timestamp, hex signature)`` from a header value, or None if malformed."""
    fields = dict(part.strip().split("=", 1) for part in header.split(",") if "=" in part)
    try:
        return int(fields["t"]), fields[SIGNATURE_VERSION]
    except (KeyError, ValueError):
        return None


class SigningAuth:
    """A ``requests`` auth hook that signs each request body as it is sent."""

    def __init__(self, ingest_key: str) -> None:
        self._key = ingest_key

    def __call__(self, request: Any) -> Any:
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        request.headers[SIGNATURE_HEADER] = sign(self._key, body)
        return request
