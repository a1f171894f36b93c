"""Receiver settings (environment variables ``AEOS_RECEIVER_*``)."""

from __future__ import annotations

import os
from typing import Annotated

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_GRPC_PORT = 4317  # OTLP/gRPC default port (OTLP specification)
DEFAULT_HTTP_PORT = 4318  # OTLP/HTTP default port (OTLP specification)
DEFAULT_MAX_REQUEST_BYTES = 64 * 1024 * 1024  # the OTLP specification's recommended limit
DEFAULT_WORKERS = max(os.cpu_count() or 1, 1)  # receiver processes sharing the ports


class ReceiverSettings(BaseSettings):
    """Where the OTLP receiver listens and what it accepts."""

    model_config = SettingsConfigDict(env_prefix="AEOS_RECEIVER_", extra="ignore")

    host: Annotated[str, Field(min_length=1)] = "127.0.0.1"
    grpc_port: Annotated[int, Field(ge=0, le=65535)] = DEFAULT_GRPC_PORT
    http_port: Annotated[int, Field(ge=0, le=65535)] = DEFAULT_HTTP_PORT
    max_request_bytes: Annotated[int, Field(ge=1024)] = DEFAULT_MAX_REQUEST_BYTES
    workers: Annotated[int, Field(ge=1, le=64)] = DEFAULT_WORKERS
    max_pending_items: Annotated[int, Field(ge=100)] = 200_000
    writer_connections: Annotated[int, Field(ge=1, le=16)] = 2
    max_concurrent_requests: Annotated[int, Field(ge=1, le=10_000)] = 32
    health_report_seconds: Annotated[float, Field(gt=0)] = 60.0
    auth_cache_seconds: Annotated[float, Field(ge=0)] = 10.0
    signature_window_seconds: Annotated[int, Field(ge=1)] = 300
    max_attributes: Annotated[int, Field(ge=1)] = 256
    max_attribute_value_bytes: Annotated[int, Field(ge=16)] = 65_536
    rollups_at_ingest: Annotated[
        bool,
        Field(
            description="PostgreSQL engine: maintain the rollup tables in the ingest "
            "transaction. Off only to measure what that costs (bench/rollups.py): rollups "
            "then miss what is ingested."
        ),
    ] = True
