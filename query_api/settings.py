"""Query API settings (environment variables ``AEOS_API_*``)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_API_PORT = 8686


class ApiSettings(BaseSettings):
    """Where the query API listens."""

    model_config = SettingsConfigDict(env_prefix="AEOS_API_", extra="ignore")

    host: Annotated[str, Field(min_length=1)] = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = DEFAULT_API_PORT
