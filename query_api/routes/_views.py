"""What the view routes share: liveness settings, rollup availability, steps, cursors."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Annotated, Any

from fastapi import Depends, Query
from sqlalchemy import Connection

from query_api.errors import ApiError, validation_error
from query_api.paging import decode_cursor
from storage import Availability, Liveness, StorageSettings, default_step, rollup_availability

_STEP = re.compile(r"^(\d+)([smhd]?)$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}

StepQuery = Annotated[
    str | None,
    Query(
        description="Series step: `1m`, `5m`, `1h`, `1d` or seconds (default: ~100-200 points).",
        examples=["1h"],
    ),
]
CursorQuery = Annotated[
    str | None, Query(description="`next_cursor` of the previous page (opaque).")
]


@lru_cache(maxsize=1)
def _liveness() -> Liveness:
    s = StorageSettings()
    return Liveness(s.agent_offline_after_intervals, s.agent_heartbeat_interval_seconds)


def liveness() -> Liveness:
    """When agents count as offline (``AEOS_AGENT_*`` settings)."""
    return _liveness()


LivenessDep = Annotated[Liveness, Depends(liveness)]


def now() -> datetime:
    """The time a request is answered at."""
    return datetime.now(UTC)


def availability(conn: Connection, at: datetime) -> Availability:
    """What the org's retention still holds of each rollup level."""
    return rollup_availability(conn, at)


def parse_step(
    raw: str | None, start: datetime, end: datetime, available: Availability | None = None
) -> timedelta:
    """A step from ``1m`` / ``1h`` / ``1d`` / seconds, or a default for the range (one
    that the org's retention can still serve).

    Raises:
        ApiError: 422 naming ``step``.
    """
    if raw is None:
        return default_step(start, end, available)
    m = _STEP.match(raw.strip())
    if m is None or int(m.group(1)) == 0:
        raise validation_error("step", f"expected e.g. 1m, 5m, 1h, 1d or seconds: {raw!r}")
    return timedelta(seconds=int(m.group(1)) * _UNIT_SECONDS[m.group(2)])


def cursor_values(token: str | None, kinds: dict[str, type]) -> dict[str, Any] | None:
    """The values of a cursor this route issued (``kinds``: key -> type), or None.

    Raises:
        ApiError: 400 ``invalid-cursor`` for a cursor not issued here or by another route.
    """
    if token is None:
        return None
    values = decode_cursor(token)
    if set(values) != set(kinds) or not all(isinstance(values[k], t) for k, t in kinds.items()):
        raise ApiError(
            400,
            "invalid-cursor",
            "Invalid cursor",
            "cursor: issued for another list or another sort; start again without it",
        )
    return values
