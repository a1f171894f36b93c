"""API keys: generation, parsing and hashing. Pure functions, no I/O.

A key looks like ``aeos_ik_3Fh9kQ2x_<43 url-safe characters>``: a fixed tag, a role tag,
an 8-character public id and a 256-bit secret. The database stores the public part
(``prefix``, for lookup and for display) and the SHA-256 of the whole key. A fast hash is
the right choice here: the secret is 256 random bits, so there is nothing to brute-force,
and authentication runs on every export.
"""

from __future__ import annotations

import hashlib
import secrets
import string
from dataclasses import dataclass

KEY_TAG = "aeos"
ROLE_TAGS = {
    "ingest": "ik",
    "admin": "ak",
    "member": "mk",
    "alias_admin": "sa",
    "alias_support": "ss",
}
_ID_ALPHABET = string.ascii_letters + string.digits
_ID_LENGTH = 8
_SECRET_BYTES = 32


@dataclass(frozen=True, slots=True)
class NewKey:
    """A freshly generated key: ``plaintext`` is shown once and never stored."""

    plaintext: str
    prefix: str
    key_hash: bytes
    role: str


def generate_key(role: str) -> NewKey:
    """Generates a key for ``role``.

    Raises:
        ValueError: ``role`` is not a key role.
    """
    tag = ROLE_TAGS.get(role)
    if tag is None:
        raise ValueError(f"unknown key role {role!r}; expected one of {', '.join(ROLE_TAGS)}")
    public_id = "".join(secrets.choice(_ID_ALPHABET) for _ in range(_ID_LENGTH))
    prefix = f"{KEY_TAG}_{tag}_{public_id}"
    plaintext = f"{prefix}_{secrets.token_urlsafe(_SECRET_BYTES)}"
    return NewKey(plaintext, prefix, hash_key(plaintext), role)


def hash_key(plaintext: str) -> bytes:
    """The SHA-256 digest stored for a key."""
    return hashlib.sha256(plaintext.encode()).digest()


def parse_prefix(plaintext: str) -> str | None:
    """The public prefix of a well-formed key, or None if it is not one of ours."""
    parts = plaintext.split("_", 3)
    if len(parts) != 4 or parts[0] != KEY_TAG or parts[1] not in ROLE_TAGS.values():
        return None
    if len(parts[2]) != _ID_LENGTH or not parts[3]:
        return None
    return "_".join(parts[:3])
