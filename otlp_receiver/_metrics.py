"""The receiver's own Prometheus metrics (``/metrics`` on the OTLP/HTTP port).

With several receiver processes, ``PROMETHEUS_MULTIPROC_DIR`` is set by ``aeos serve``
before they start, and ``/metrics`` of any process reports the sum over all of them.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

ITEMS = Counter(
    "aeos_receiver_items",
    "Telemetry items (spans, data points, log records) by what became of them.",
    [
        "signal",
        "transport",
        "outcome",
    ],  # outcome: accepted, rejected (bad item), refused (retry later)
)
REQUESTS = Counter(
    "aeos_receiver_requests", "Export requests by answer.", ["signal", "transport", "code"]
)
REFUSALS = Counter(
    "aeos_receiver_refusals",
    "Export requests not (fully) served, by reason: unauthenticated, malformed_key, "
    "forbidden, too_large, too_many_items, busy, key_busy, rate_limited, bodies_in_flight, "
    "queue_full, unavailable, refused_data, bad_request, bad_encoding, unsupported_media, "
    "timeout, client_disconnect, incomplete (gRPC: the message never arrived whole: over "
    "the size limit, or the client went away).",
    ["signal", "transport", "reason"],
)
RECEIVED_BYTES = Counter(
    "aeos_receiver_received_bytes",
    "Bytes of export request bodies read (before decompression): a refused request's "
    "body is not read, so it is not counted.",
    ["signal", "transport"],
)
BODY_BYTES_IN_FLIGHT = Gauge(
    "aeos_receiver_body_bytes_in_flight",
    "Bytes of request bodies being received or handled (the bound: "
    "AEOS_RECEIVER_MAX_BODY_BYTES_IN_FLIGHT per process).",
    multiprocess_mode="livesum",
)
BATCH_ITEMS = Histogram(
    "aeos_receiver_request_items",
    "Items per export request.",
    ["signal"],
    buckets=(1, 10, 100, 500, 1000, 5000, 10000, 50000),
)
COMMIT_SECONDS = Histogram(
    "aeos_writer_commit_seconds",
    "Duration of one group commit.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
COMMIT_ITEMS = Histogram(
    "aeos_writer_commit_items",
    "Items per group commit.",
    buckets=(10, 100, 1000, 5000, 10000, 25000, 50000),
)
COMMIT_REQUESTS = Histogram(
    "aeos_writer_commit_requests",
    "Export requests merged into one group commit.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128),
)
QUEUE_ITEMS = Gauge(
    "aeos_writer_queue_items",
    "Items accepted and waiting to be committed.",
    multiprocess_mode="livesum",
)


def exposition() -> tuple[bytes, str]:
    """The metrics in the Prometheus text format, and its content type."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
