"""Platform-health rows: what one receiver process did in an interval (staff read them)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import astuple, dataclass
from datetime import datetime

from psycopg import AsyncConnection

from storage.ingest import _sql as q


@dataclass(frozen=True, slots=True)
class PlatformHealthRow:
    """One receiver process's counts for one signal over one interval."""

    time: datetime
    instance: str
    signal: str
    accepted: int
    rejected: int
    refused: int
    requests: int
    queue_items: int
    commits: int
    commit_seconds_sum: float
    commit_seconds_max: float


async def write_platform_health(conninfo: str, rows: Sequence[PlatformHealthRow]) -> None:
    """Inserts one report as ``aeos_ingest`` on a connection of its own (autocommit).

    A report already written (same time, instance and signal) is left as it is.

    Raises:
        psycopg.Error: the database cannot be reached or refuses the rows.
    """
    async with await AsyncConnection.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
        await conn.execute(q.SET_INGEST_ROLE)
        async with conn.cursor() as cur:
            await cur.executemany(q.INSERT_PLATFORM_HEALTH, [astuple(r) for r in rows])
