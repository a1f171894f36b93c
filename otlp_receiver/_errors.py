"""Every failure the receiver can answer with, classified once.

Each maps to a gRPC status code and an HTTP status in one place, following the OTLP
specification ("Failures", "Throttling"): retryable failures are UNAVAILABLE / 503 (or
429 when the client should slow down) with a retry delay; permanent ones are never
retryable (INVALID_ARGUMENT / 400, UNAUTHENTICATED / 401, PERMISSION_DENIED / 403,
RESOURCE_EXHAUSTED / 413 without RetryInfo). Each also names its ``reason``: the label
of ``aeos_receiver_refusals`` in ``/metrics``.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc


@dataclass(frozen=True, slots=True)
class ReceiverError(Exception):
    """A request-level failure: nothing of the request was stored."""

    grpc_code: grpc.StatusCode
    http_status: int
    message: str
    retry_after_s: int | None = None
    reason: str = "bad_request"

    def __str__(self) -> str:
        return self.message


def bad_request(message: str, reason: str = "bad_request") -> ReceiverError:
    """The body cannot be decoded, or its data is refused (not retryable)."""
    return ReceiverError(grpc.StatusCode.INVALID_ARGUMENT, 400, message, reason=reason)


def unauthenticated(message: str, reason: str = "unauthenticated") -> ReceiverError:
    """Missing, unknown or revoked credentials, or a bad signature (not retryable)."""
    return ReceiverError(grpc.StatusCode.UNAUTHENTICATED, 401, message, reason=reason)


def forbidden(message: str) -> ReceiverError:
    """Valid credentials that may not export (not retryable)."""
    return ReceiverError(grpc.StatusCode.PERMISSION_DENIED, 403, message, reason="forbidden")


def too_large(limit: int) -> ReceiverError:
    """The body is over the size limit, after decompression (not retryable)."""
    return ReceiverError(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        413,
        f"request body is larger than {limit} bytes",
        reason="too_large",
    )


def too_many_items(items: int, limit: int) -> ReceiverError:
    """More items than one request may carry (not retryable: split the request)."""
    return ReceiverError(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        413,
        f"the request has {items} items; at most {limit} spans, data points or log records "
        "are accepted per request (AEOS_RECEIVER_MAX_REQUEST_ITEMS): send smaller batches",
        reason="too_many_items",
    )


def overloaded(message: str, retry_after_s: int = 1, reason: str = "busy") -> ReceiverError:
    """Too much is waiting, or this key sends too fast: retry after a delay (429)."""
    return ReceiverError(grpc.StatusCode.UNAVAILABLE, 429, message, retry_after_s, reason)


def unavailable(message: str, retry_after_s: int = 5) -> ReceiverError:
    """The database cannot be reached: retry after a delay (503 over HTTP)."""
    return ReceiverError(grpc.StatusCode.UNAVAILABLE, 503, message, retry_after_s, "unavailable")


def timed_out(message: str) -> ReceiverError:
    """The request (its body) did not arrive in time (HTTP 408)."""
    return ReceiverError(grpc.StatusCode.DEADLINE_EXCEEDED, 408, message, reason="timeout")


def unsupported_media(content_type: str) -> ReceiverError:
    """Neither protobuf nor JSON."""
    return ReceiverError(
        grpc.StatusCode.INVALID_ARGUMENT,
        415,
        f"unsupported content type {content_type!r}; "
        "use application/x-protobuf or application/json",
        reason="unsupported_media",
    )
