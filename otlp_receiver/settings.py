"""Receiver settings (environment variables ``AEOS_RECEIVER_*``)."""

from __future__ import annotations

import os
from typing import Annotated

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_GRPC_PORT = 4317  # OTLP/gRPC default port (OTLP specification)
DEFAULT_HTTP_PORT = 4318  # OTLP/HTTP default port (OTLP specification)
DEFAULT_MAX_REQUEST_BYTES = 64 * 1024 * 1024  # the OTLP specification's recommended limit
DEFAULT_WORKERS = max(os.cpu_count() or 1, 1)  # receiver processes sharing the ports
DEFAULT_MAX_REQUEST_ITEMS = 30_000  # spans, data points or log records in one request
DEFAULT_MAX_BODY_BYTES_IN_FLIGHT = 128 * 1024 * 1024  # per worker process


class ReceiverSettings(BaseSettings):
    """Where the OTLP receiver listens and what it accepts."""

    model_config = SettingsConfigDict(env_prefix="AEOS_RECEIVER_", extra="ignore")

    host: Annotated[str, Field(min_length=1)] = "127.0.0.1"
    grpc_port: Annotated[int, Field(ge=0, le=65535)] = DEFAULT_GRPC_PORT
    http_port: Annotated[int, Field(ge=0, le=65535)] = DEFAULT_HTTP_PORT
    max_request_bytes: Annotated[int, Field(ge=1024)] = DEFAULT_MAX_REQUEST_BYTES
    workers: Annotated[int, Field(ge=1, le=64)] = DEFAULT_WORKERS
    max_pending_items: Annotated[int, Field(ge=100)] = 200_000
    max_pending_items_per_org: Annotated[
        int, Field(ge=100, description="Items one org may have waiting in a worker's queue.")
    ] = 100_000
    max_request_items: Annotated[
        int, Field(ge=1, description="Items (spans, points, records) in one export request.")
    ] = DEFAULT_MAX_REQUEST_ITEMS
    writer_connections: Annotated[int, Field(ge=1, le=16)] = 2
    max_concurrent_requests: Annotated[int, Field(ge=1, le=10_000)] = 32
    max_concurrent_requests_per_key: Annotated[
        int,
        Field(
            ge=1,
            le=10_000,
            description="Requests of one ingest key in progress, in full requests of 512 items "
            "(a decoded smaller one counts its items, at least 128).",
        ),
    ] = 8
    rate_limit_items_per_second: Annotated[
        float, Field(ge=0, description="Items per second per ingest key and worker (0: off).")
    ] = 50_000.0
    rate_limit_burst_items: Annotated[
        int, Field(ge=1, description="Items a key may send at once after being idle.")
    ] = 2 * DEFAULT_MAX_REQUEST_ITEMS
    max_body_bytes_in_flight: Annotated[
        int, Field(ge=1024, description="Request bodies being received, per worker.")
    ] = DEFAULT_MAX_BODY_BYTES_IN_FLIGHT
    header_timeout_seconds: Annotated[float, Field(gt=0)] = 10.0
    body_timeout_seconds: Annotated[float, Field(gt=0)] = 30.0
    idle_timeout_seconds: Annotated[float, Field(gt=0)] = 30.0
    grpc_max_concurrent_streams: Annotated[
        int, Field(ge=1, le=1000, description="Calls one gRPC connection may have open.")
    ] = 100  # RFC 9113 6.5.2 recommends no fewer; fewer queued calls client-side, unbounded
    grpc_max_connection_age_seconds: Annotated[
        float, Field(gt=0, description="A gRPC connection is asked to reconnect after this.")
    ] = 300.0
    grpc_keepalive_seconds: Annotated[
        float, Field(gt=0, description="A quiet gRPC connection with calls is pinged.")
    ] = 60.0
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

    @model_validator(mode="after")
    def _consistent(self) -> ReceiverSettings:
        """Limits that could never all be met are a configuration error."""
        if self.max_request_items > self.max_pending_items_per_org:
            raise ValueError("max_request_items must not exceed max_pending_items_per_org")
        if self.max_pending_items_per_org > self.max_pending_items:
            raise ValueError("max_pending_items_per_org must not exceed max_pending_items")
        if self.rate_limit_burst_items < self.max_request_items:
            raise ValueError("rate_limit_burst_items must be at least max_request_items")
        if self.max_body_bytes_in_flight < self.max_request_bytes:
            raise ValueError("max_body_bytes_in_flight must be at least max_request_bytes")
        return self
