"""What the view models share: built from the readers' dataclasses, ids as hex."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field


def _hex(value: Any) -> Any:
    return value.hex() if isinstance(value, bytes | bytearray | memoryview) else value


#: A binary id (trace, span, event) as lowercase hex.
Hex = Annotated[str, BeforeValidator(_hex), Field(pattern="^[0-9a-f]*$")]


class ViewModel(BaseModel):
    """A response model validated from a reader's frozen dataclass (attributes)."""

    model_config = ConfigDict(from_attributes=True)


class RedOut(ViewModel):
    """Requests, errors and latency quantiles (within 1 % of the exact value)."""

    requests: int
    errors: int
    error_rate: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None


class CoverageOut(ViewModel):
    """What a rollup answer read: the range (widened to whole buckets) and the levels."""

    start: Any
    end: Any
    levels: list[str]
