"""The agent-status job writes ``offline`` back for silent agents, on both engines."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import text

from storage.database import Database
from storage.ingest.rows import AgentSighting, Batch
from storage.ingest.writer import IngestWriter
from storage.jobs.agent_status import mark_offline_agents
from storage.read.agents import Liveness
from tests.integration import _read_world as w


def _statuses(db: Database, org: object) -> dict[str, str]:
    rows = w.raw(db, "SELECT agent_id, status FROM agents WHERE org_id = :org", org=org)
    return {r["agent_id"]: r["status"] for r in rows}


def test_silent_agents_are_marked_offline_and_a_heartbeat_revives_them(database: Database) -> None:
    world = w.build(database)
    engine = database.app_engine()
    assert _statuses(database, world.org) == {
        "agent-1": "online",
        "agent-2": "online",
        "agent-3": "degraded",
        "agent-4": "online",
    }
    assert mark_offline_agents(engine, w.NOW, Liveness(3, 60)) == {"marked_offline": 4}  # 2 orgs
    assert _statuses(database, world.org) == {
        "agent-1": "online",
        "agent-2": "offline",
        "agent-3": "degraded",
        "agent-4": "offline",
    }
    assert mark_offline_agents(engine, w.NOW, Liveness(3, 60)) == {"marked_offline": 0}
    # A day later everyone is silent; a new heartbeat of agent-2 then brings it back.
    later = w.NOW + timedelta(days=1)
    assert mark_offline_agents(engine, later, Liveness(3, 60))["marked_offline"] == 4
    beat = int(later.timestamp()) * 10**9
    sighting = AgentSighting(
        "agent-2", "fleet-a", "agent-2", "DAMN", "svc-a", "1.1.0", beat, {}, beat, "online"
    )

    async def send() -> None:
        writer = IngestWriter(database.app_conninfo())
        await writer.start()
        try:
            await writer.write(Batch(world.org, agents=[sighting]))
        finally:
            await writer.close()

    asyncio.run(send())
    assert _statuses(database, world.org)["agent-2"] == "online"


def test_the_worker_may_change_only_the_status(database: Database) -> None:
    import pytest
    from sqlalchemy.exc import ProgrammingError

    world = w.build(database, spans=10)
    with database.app_engine().begin() as conn:
        conn.execute(text("SET LOCAL ROLE aeos_worker"))
        conn.execute(
            text("UPDATE agents SET status = 'offline' WHERE org_id = :o"), {"o": world.org}
        )
        with pytest.raises(ProgrammingError, match="permission denied"):
            conn.execute(
                text("UPDATE agents SET version = 'x' WHERE org_id = :o"), {"o": world.org}
            )
