"""Query API settings (environment variables ``AEOS_API_*``)."""

from __future__ import annotations

import json
import os
from typing import Annotated

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_API_PORT = 8686
DEFAULT_WORKERS = max(os.cpu_count() or 1, 1)  # API processes sharing the port
DEFAULT_RATE_PER_MINUTE = 1200  # generous: a dashboard refreshing 20 panels every second
DEFAULT_RATE_BURST = 200
DEFAULT_MAX_RANGE_DAYS = 400  # a little over the longest plan window (1-day rollups)
DEFAULT_OIDC_LEEWAY_S = 30  # clock skew tolerated on exp / nbf / iat
DEFAULT_JWKS_CACHE_S = 300
DEFAULT_JWKS_COOLDOWN_S = 30


def _split(value: object) -> object:
    """Comma-separated lists in environment variables (``a,b``) as well as JSON."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


class ApiSettings(BaseSettings):
    """Where the query API listens, whom it trusts and how much it serves."""

    model_config = SettingsConfigDict(env_prefix="AEOS_API_", extra="ignore")

    host: Annotated[str, Field(min_length=1)] = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = DEFAULT_API_PORT
    workers: Annotated[
        int, Field(ge=1, le=64, description="API processes sharing the port (SO_REUSEPORT).")
    ] = DEFAULT_WORKERS
    cursor_secret: Annotated[
        SecretStr | None,
        Field(
            description="HMAC key of paging cursors; random per start when unset (cursors "
            "then do not survive a restart). Set the same value on every replica."
        ),
    ] = None
    max_range_days: Annotated[int, Field(ge=1, le=36_500)] = DEFAULT_MAX_RANGE_DAYS
    rate_per_minute: Annotated[
        int, Field(ge=0, description="Requests per minute per credential; 0 disables.")
    ] = DEFAULT_RATE_PER_MINUTE
    rate_burst: Annotated[int, Field(ge=1)] = DEFAULT_RATE_BURST
    oidc_jwks_url: Annotated[
        str | None,
        Field(description="JWKS of the OIDC issuer, e.g. https://api.workos.com/sso/jwks/<client>"),
    ] = None
    oidc_issuers: Annotated[
        list[str],
        NoDecode,
        Field(description="Accepted `iss` values (comma-separated); required with a JWKS URL."),
    ] = []
    oidc_audience: Annotated[
        str | None, Field(description="Required `aud`, when set (WorkOS AuthKit has none).")
    ] = None
    oidc_leeway_seconds: Annotated[int, Field(ge=0, le=300)] = DEFAULT_OIDC_LEEWAY_S
    oidc_jwks_cache_seconds: Annotated[int, Field(ge=0)] = DEFAULT_JWKS_CACHE_S
    oidc_jwks_refresh_cooldown_seconds: Annotated[
        float,
        Field(ge=0, description="Least time between refetches for an unknown key id."),
    ] = DEFAULT_JWKS_COOLDOWN_S

    _split_issuers = field_validator("oidc_issuers", mode="before")(_split)

    @model_validator(mode="after")
    def _issuers_with_jwks(self) -> ApiSettings:
        """Fails fast on an OIDC configuration that would accept any issuer."""
        if self.oidc_jwks_url and not self.oidc_issuers:
            raise ValueError("AEOS_API_OIDC_ISSUERS must list the accepted issuers")
        return self
