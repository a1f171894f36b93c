"""Partition maintenance for the PostgreSQL engine: partitions are created ahead of time.

On TimescaleDB the extension creates chunks itself, so there is nothing to do. Rows whose
time has no partition yet are not refused: they land in the table's DEFAULT partition and
move to their own partition when it is created (``aeos_ensure_partitions``).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, text

from storage.jobs import _sql as q
from storage.migrate import StorageEngine, recorded_engine
from storage.schema import PARTITIONED
from storage.tenancy import DbRole, Scope, act_as

DEFAULT_BEHIND = timedelta(days=1)
DEFAULT_AHEAD = timedelta(days=3)


def ensure_partitions(
    conn: Connection,
    now: datetime,
    *,
    behind: timedelta = DEFAULT_BEHIND,
    ahead: timedelta = DEFAULT_AHEAD,
) -> dict[str, int]:
    """Creates the partitions covering ``[now - behind, now + ahead)`` of every raw table.

    ``conn`` is already scoped to ``aeos_worker`` (or is the owner's): this function never
    switches roles.

    Returns:
        The number of partitions created, per table (empty on TimescaleDB).
    """
    if recorded_engine(conn) is not StorageEngine.POSTGRES:
        return {}
    created: dict[str, int] = {}
    for table in PARTITIONED:
        created[table] = conn.execute(
            text(q.ENSURE_PARTITIONS),
            {"t": table, "lo": now - behind, "hi": now + ahead},
        ).scalar_one()
    return created


def maintain_partitions(engine: Engine, now: datetime) -> dict[str, int]:
    """The partition maintenance job: :func:`ensure_partitions` in a transaction of its own."""
    with engine.begin() as conn:
        act_as(conn, Scope(DbRole.WORKER))
        return ensure_partitions(conn, now)
