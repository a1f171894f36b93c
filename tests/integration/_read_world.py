"""A small random world written through the real ingest writer, for the reader tests.

Two orgs (the second is the "other tenant" every reader must never show), spans over two
days before ``NOW`` with UCE / MOSAIC attributes, heartbeats (some with an interval),
agents, task runs, LLM calls and DAMN metric points. ``raw`` reads the raw rows back as
the admin, for recomputation in plain Python.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text

from storage import admin
from storage.database import Database
from storage.ingest.rows import (
    AgentSighting,
    Batch,
    EventRow,
    LlmCall,
    MetricPointRow,
    SpanRow,
    TaskRunSighting,
)
from storage.ingest.writer import IngestWriter

NOW_S = 1_795_000_000  # 2026-11-18T09:46:40Z
NOW = datetime.fromtimestamp(NOW_S, UTC)
NS = 10**9
AGENTS = ("agent-1", "agent-2", "agent-3", "agent-4")
FLEETS = {"agent-1": "fleet-a", "agent-2": "fleet-a", "agent-3": "fleet-b", "agent-4": None}


@dataclass(frozen=True)
class World:
    db: Database
    org: uuid.UUID
    other: uuid.UUID


def _span(rng: random.Random, n: int, start_ns: int, run: str | None) -> SpanRow:
    agent = rng.choice(AGENTS)
    attrs: dict[str, Any] = {}
    if rng.random() < 0.3:
        attrs["uce.operation.name"] = rng.choice(["read", "write"])
        attrs["uce.context.id"] = rng.choice(["ctx-1", "ctx-2", "ctx-3"])
        attrs["uce.cache.hit"] = rng.random() < 0.6
        attrs["uce.context.size_tokens"] = rng.randint(100, 9000)
    if rng.random() < 0.3:
        attrs["mosaic.routing.route"] = rng.choice(["billing", "research"])
        attrs["mosaic.routing.outcome"] = rng.choice(["routed", "fallback"])
    if rng.random() < 0.2:
        attrs["mosaic.handoff.to_agent"] = rng.choice(AGENTS)
    duration = int(rng.lognormvariate(3, 1.5) * 1e6)
    return SpanRow(
        trace_id=(n // 5).to_bytes(16, "big"),
        span_id=n.to_bytes(8, "big"),
        parent_span_id=None,
        trace_state=None,
        name=rng.choice(["plan", "call", "route"]),
        kind=1,
        start_ns=start_ns,
        end_ns=start_ns + duration,
        status_code=rng.choice([0, 0, 0, 1, 2]),
        status_message=None,
        subsystem=rng.choice(["MOSAIC", "UCE", "DAMN"]),
        service_name=rng.choice(["svc-a", None]),
        agent_id=agent,
        fleet_id=FLEETS[agent],
        task_run_id=run,
        gen_ai_operation=None,
        gen_ai_provider=None,
        gen_ai_model=None,
        input_tokens=None,
        output_tokens=None,
        scope_name=None,
        attributes=attrs,
        resource_attributes={},
    )


def _batches(org: uuid.UUID, rng: random.Random, spans: int, seq: int) -> list[Batch]:
    batches: list[Batch] = []
    for i in range(spans):
        if i % 25 == 0:
            batches.append(Batch(org))
        b = batches[-1]
        start = (NOW_S - rng.randint(0, 50 * 3600)) * NS + rng.randint(0, NS - 1)
        run = f"run-{rng.randint(0, 19)}" if rng.random() < 0.3 else None
        span = _span(rng, seq + i, start, run)
        b.spans.append(span)
        if run is not None:
            b.task_runs.append(
                TaskRunSighting(
                    run,
                    f"task-{run[-1]}",
                    span.agent_id,
                    rng.choice(["succeeded", "failed", None]),
                    span.start_ns,
                    span.end_ns,
                    span.trace_id,
                    rng.random() < 0.3,
                    f"Summarise report {run}",
                    span.span_id,
                )
            )
        if rng.random() < 0.3:
            b.llm_calls.append(
                LlmCall(
                    span.trace_id,
                    span.span_id,
                    span.start_ns,
                    run,
                    span.agent_id,
                    span.subsystem,
                    rng.choice(["openai", "anthropic"]),
                    rng.choice(["gpt-4o", "claude-sonnet-4"]),
                    rng.randint(0, 5000),
                    rng.randint(0, 2000),
                    rng.randint(0, 500),
                    0,
                    rng.choice([None, 0.0123, 1.5]),
                )
            )
    _agents_and_events(batches[0], rng, seq)
    return batches


def _agents_and_events(b: Batch, rng: random.Random, seq: int) -> None:
    beats = {  # seconds before NOW of the newest heartbeat, interval announced
        "agent-1": (20, 15.0),  # fresh
        "agent-2": (400, 60.0),  # silent for more than 3 x 60 s: offline
        "agent-3": (100, None),  # default interval 60 s: 100 s is within 3 x 60 s
        "agent-4": (50, 10.0),  # 50 s > 3 x 10 s: offline
    }
    for k, agent in enumerate(AGENTS):
        ago, interval = beats[agent]
        beat_ns = (NOW_S - ago) * NS
        status = "degraded" if agent == "agent-3" else "online"
        b.agents.append(
            AgentSighting(
                agent,
                FLEETS[agent],
                agent,
                "DAMN",
                "svc-a",
                rng.choice(["1.0.0", "1.1.0"]),
                beat_ns,
                {},
                beat_ns,
                status,
            )
        )
        for j in range(5):
            t = beat_ns - j * 3600 * NS
            payload: dict[str, Any] = {"damn.agent.status": status}
            if interval is not None:
                payload["damn.heartbeat.interval"] = interval
            b.events.append(
                EventRow(
                    (seq * 100 + k * 10 + j).to_bytes(16, "big"),
                    t,
                    None,
                    rng.choice(["info", "warn", "error"]),
                    9,
                    "DAMN",
                    "damn.agent.heartbeat",
                    agent,
                    FLEETS[agent],
                    None,
                    None,
                    None,
                    None,
                    f"heartbeat of {agent}",
                    payload,
                    {},
                )
            )
        for j in range(6):
            t = (NOW_S - j * 1800) * NS
            for metric, value in (
                ("damn.queue.depth", j * 2.0),
                ("damn.agent.utilization", 0.1 * j),
            ):
                b.metric_points.append(
                    MetricPointRow(
                        metric,
                        hashlib.sha256(f"{metric}:{agent}".encode()).digest()[:16],
                        t + k,
                        None,
                        "gauge",
                        0,
                        False,
                        "1",
                        "DAMN",
                        "svc-a",
                        agent,
                        {"agent": agent},
                        {},
                        value=value,
                    )
                )


async def _write(db: Database, batches: list[Batch]) -> None:
    writer = IngestWriter(db.app_conninfo(), flushers=2)
    await writer.start()
    try:
        for i in range(0, len(batches), 3):
            await asyncio.gather(*(writer.write(b) for b in batches[i : i + 3]))
    finally:
        await writer.close()


def build(
    db: Database,
    seed: int = 7,
    spans: int = 400,
    orgs: tuple[uuid.UUID, uuid.UUID] | None = None,
) -> World:
    """Writes the world (into new orgs, or the two ``orgs`` given); returns the orgs."""
    if orgs is None:
        with db.admin_engine().begin() as conn:
            orgs = (
                admin.create_org(conn, f"reader-{uuid.uuid4().hex[:6]}", "pro").org_id,
                admin.create_org(conn, f"other-{uuid.uuid4().hex[:6]}", "free").org_id,
            )
    org, other = orgs
    rng = random.Random(seed)
    batches = _batches(org, rng, spans, 0) + _batches(other, rng, spans // 2, 10**6)
    pause_policies(db)
    asyncio.run(_write(db, batches))
    return World(db, org, other)


def pause_policies(db: Database) -> None:
    """On TimescaleDB, stops this database's refresh and columnstore policies.

    A policy that runs while the world is being written materializes part of it, and the
    rest of those buckets then waits for the next refresh (README, Rollups): the rollups
    would lag the raw rows. Without policies every continuous aggregate answers in real
    time from the rows below, which is what the readers are compared against.
    """
    with db.admin_engine().begin() as conn:
        engine = conn.execute(
            text("SELECT value FROM aeos_meta WHERE key = 'storage_engine'")
        ).scalar_one()
        if engine == "timescale":
            conn.execute(
                text(
                    "SELECT alter_job(job_id, scheduled => false) FROM timescaledb_information.jobs"
                    " WHERE job_id >= 1000"
                )
            )


def raw(db: Database, sql: str, **params: Any) -> list[dict[str, Any]]:
    """Raw rows as the admin (no row security)."""
    with db.admin_engine().connect() as conn:
        return [dict(r._mapping) for r in conn.execute(text(sql), params)]
