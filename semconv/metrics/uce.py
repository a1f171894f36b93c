# generated from semconv/model by semconv/_generate.py, do not edit
"""Metrics of the `uce` namespace.

UCE context engine: contexts, context operations, the context cache and retrieval.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from opentelemetry.metrics import Counter, Histogram, Meter

UCE_CACHE_REQUESTS: Final = "uce.cache.requests"
"""Number of context cache lookups, by hit or miss.

The hit ratio is the rate with uce.cache.hit=true over the total rate.

Instrument: counter. Unit: `{request}`. Stability: development. Attributes: `uce.cache.hit`
(required), `uce.operation.name` (recommended).
"""

UCE_CONTEXT_SIZE: Final = "uce.context.size"
"""Size of contexts in tokens after an operation.

Instrument: histogram. Unit: `{token}`. Stability: development. Attributes: `uce.operation.name`
(recommended).
"""

UCE_OPERATION_DURATION: Final = "uce.operation.duration"
"""Duration of context operations.

Instrument: histogram. Unit: `s`. Stability: development. Attributes: `uce.operation.name`
(required), `uce.cache.hit` (recommended), `error.type` (conditionally required: if the operation
failed).
"""


def create_uce_cache_requests(meter: Meter) -> Counter:
    """Creates the `uce.cache.requests` counter on ``meter``."""
    return meter.create_counter(
        name=UCE_CACHE_REQUESTS,
        unit="{request}",
        description="Number of context cache lookups, by hit or miss.",
    )


def create_uce_context_size(meter: Meter) -> Histogram:
    """Creates the `uce.context.size` histogram on ``meter``."""
    return meter.create_histogram(
        name=UCE_CONTEXT_SIZE,
        unit="{token}",
        description="Size of contexts in tokens after an operation.",
    )


def create_uce_operation_duration(meter: Meter) -> Histogram:
    """Creates the `uce.operation.duration` histogram on ``meter``."""
    return meter.create_histogram(
        name=UCE_OPERATION_DURATION,
        unit="s",
        description="Duration of context operations.",
    )
