"""Shared query parameters: instants and time ranges.

An instant is RFC 3339 (``2026-12-01T09:30:00Z``; an offset is required, so nothing is
read in the server's local time) or epoch milliseconds (``1764581400000``), what scripts
and Grafana send. A range is half-open, ``[start, end)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import Depends, Query, Request

from query_api.errors import validation_error

DEFAULT_RANGE = timedelta(hours=24)
_MIN_EPOCH_MS = 0
_MAX_EPOCH_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z

INSTANT_DOC = "RFC 3339 with an offset (2026-12-01T09:30:00Z) or epoch milliseconds."


@dataclass(frozen=True, slots=True)
class TimeRange:
    """A half-open time range ``[start, end)`` in UTC."""

    start: datetime
    end: datetime

    @property
    def span(self) -> timedelta:
        """``end - start``."""
        return self.end - self.start


def parse_instant(raw: str, param: str) -> datetime:
    """An aware UTC datetime from RFC 3339 or epoch milliseconds.

    Raises:
        ApiError: 422 ``validation`` naming ``param``, for anything else.
    """
    text = raw.strip()
    if text.lstrip("-").isdigit():
        ms = int(text)
        if not _MIN_EPOCH_MS <= ms <= _MAX_EPOCH_MS:
            raise validation_error(param, f"epoch milliseconds out of range: {text}")
        return datetime.fromtimestamp(ms / 1000, UTC)
    try:
        value = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise validation_error(param, f"not RFC 3339 or epoch milliseconds: {text!r}") from None
    if value.tzinfo is None:
        raise validation_error(param, f"an offset is required (e.g. {text}Z): {text!r}")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise validation_error(param, f"out of range: {text!r}") from None


InstantQuery = Annotated[
    str | None,
    Query(description=INSTANT_DOC, examples=["2026-12-01T09:30:00Z", "1764581400000"]),
]
"""A query parameter holding an instant; parse it with :func:`parse_instant`."""


def time_range(
    request: Request,
    start: Annotated[
        str | None,
        Query(
            description=f"Start of the range (inclusive; default end - 24 h). {INSTANT_DOC}",
            examples=["2026-11-30T00:00:00Z"],
        ),
    ] = None,
    end: Annotated[
        str | None,
        Query(
            description=f"End of the range (exclusive; default now). {INSTANT_DOC}",
            examples=["2026-12-01T00:00:00Z"],
        ),
    ] = None,
) -> TimeRange:
    """The ``start`` / ``end`` query parameters (default: the last 24 hours).

    Raises:
        ApiError: 422 naming the parameter: unparsable, ``end <= start``, or a span longer
            than ``AEOS_API_MAX_RANGE_DAYS``.
    """
    end_at = parse_instant(end, "end") if end is not None else datetime.now(UTC)
    start_at = parse_instant(start, "start") if start is not None else end_at - DEFAULT_RANGE
    if end_at <= start_at:
        raise validation_error("end", "must be after start")
    max_days: int = request.app.state.settings.max_range_days
    if end_at - start_at > timedelta(days=max_days):
        raise validation_error("start", f"the range may span at most {max_days} days")
    return TimeRange(start_at, end_at)


TimeRangeParam = Annotated[TimeRange, Depends(time_range)]
"""A route parameter ``rng: TimeRangeParam`` gives the request's :class:`TimeRange`."""
