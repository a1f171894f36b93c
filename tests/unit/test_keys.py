"""API keys: format, parsing and hashing."""

from __future__ import annotations

import pytest

from storage.keys import ROLE_TAGS, generate_key, hash_key, parse_prefix


@pytest.mark.parametrize("role", list(ROLE_TAGS))
def test_generated_key_parses_back_to_its_prefix(role: str) -> None:
    key = generate_key(role)
    assert key.plaintext.startswith(f"aeos_{ROLE_TAGS[role]}_")
    assert parse_prefix(key.plaintext) == key.prefix
    assert key.key_hash == hash_key(key.plaintext)
    assert len(key.key_hash) == 32
    assert key.prefix not in key.plaintext[len(key.prefix) + 1 :]


def test_keys_are_unique_and_secret_part_is_long() -> None:
    keys = {generate_key("ingest").plaintext for _ in range(200)}
    assert len(keys) == 200
    secret = next(iter(keys)).split("_", 3)[3]
    assert len(secret) >= 43  # 256 bits, url-safe base64


@pytest.mark.parametrize(
    "text",
    [
        "",
        "aeos",
        "aeos_ik",
        "aeos_ik_short_x",
        "aeos_zz_ABCDEFGH_secret",
        "xeos_ik_ABCDEFGH_s",
        "aeos_ik_ABCDEFGH_",
    ],
)
def test_malformed_keys_have_no_prefix(text: str) -> None:
    assert parse_prefix(text) is None


def test_unknown_role_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown key role 'root'"):
        generate_key("root")
