"""Receiver settings (environment variables ``AEOS_RECEIVER_*``)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_GRPC_PORT = 4317  # OTLP/gRPC default port (OTLP specification)
DEFAULT_HTTP_PORT = 4318  # OTLP/HTTP default port (OTLP specification)
DEFAULT_MAX_REQUEST_BYTES = 64 * 1024 * 1024  # the OTLP specification's recommended limit


class ReceiverSettings(BaseSettings):
    """Where the OTLP receiver listens and what it accepts."""

    model_config = SettingsConfigDict(env_prefix="AEOS_RECEIVER_", extra="ignore")

    host: Annotated[str, Field(min_length=1)] = "127.0.0.1"
    grpc_port: Annotated[int, Field(ge=0, le=65535)] = DEFAULT_GRPC_PORT
    http_port: Annotated[int, Field(ge=0, le=65535)] = DEFAULT_HTTP_PORT
    max_request_bytes: Annotated[int, Field(ge=1024)] = DEFAULT_MAX_REQUEST_BYTES
