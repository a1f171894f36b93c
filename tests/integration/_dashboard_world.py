"""Telemetry of two orgs for the dashboard query tests, written by the real ingest writer.

Every name of org A starts with ``orga`` and of org B with ``orgb``, so a leak shows up
as a string in a result. Three days of spans (all subsystems, UCE and MOSAIC attributes,
errors, task runs, LLM calls), heartbeats and queue-depth points; alert rules, instance
states, evaluations and notifications written by the alerting storage functions; and
receiver self-telemetry for the console.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, text

from alerting import states
from storage import admin
from storage.alerts import engine as store
from storage.alerts import rules as alert_config
from storage.alerts import spec as alert_spec
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

T0 = datetime(2026, 11, 18, tzinfo=UTC)  # data covers [T0, T0 + 3 days)
DAYS = 3
STATUSES = ("online", "degraded", "offline")


@dataclass(frozen=True)
class World:
    a: admin.CreatedOrg
    b: admin.CreatedOrg


def _ns(t: datetime) -> int:
    return int(t.timestamp()) * 10**9 + t.microsecond * 1000


def _id(*parts: object) -> bytes:
    return hashlib.sha256("/".join(map(str, parts)).encode()).digest()


def _attributes(rng: random.Random, tag: str, subsystem: str, agents: list[str]) -> dict[str, Any]:
    if subsystem == "UCE":
        return {
            "uce.operation.name": rng.choice(["read", "write", "evict", "retrieve"]),
            "uce.cache.hit": rng.random() < 0.6,
            "uce.context.size_tokens": rng.randrange(100, 9000),
            "uce.context.id": f"{tag}-ctx-{rng.randrange(5)}",
        }
    if subsystem == "MOSAIC":
        return {
            "mosaic.routing.route": rng.choice(["billing", "research"]),
            "mosaic.routing.outcome": rng.choice(["routed", "fallback"]),
            "mosaic.handoff.to_agent": rng.choice(agents),
        }
    return {}


def _spans(batch: Batch, rng: random.Random, tag: str, agents: list[str], n: int) -> None:
    for i in range(n):
        start = T0 + timedelta(
            seconds=rng.randrange(DAYS * 86400), microseconds=rng.randrange(10**6)
        )
        end = start + timedelta(microseconds=int(10 ** rng.uniform(2, 7)))
        agent = rng.choice([*agents, None])
        subsystem = rng.choice(["MOSAIC", "UCE", "DAMN", "SYSTEM"])
        trace_id, span_id = _id(tag, "t", i // 3)[:16], _id(tag, "s", i)[:8]
        run = f"{tag}-run-{i}" if i % 4 == 0 else None
        batch.spans.append(SpanRow(
            trace_id=trace_id, span_id=span_id, parent_span_id=None, trace_state=None,
            name=rng.choice(["plan", "call", "route"]), kind=1, start_ns=_ns(start),
            end_ns=_ns(end), status_code=2 if rng.random() < 0.12 else 1, status_message=None,
            subsystem=subsystem, service_name=f"{tag}-svc", agent_id=agent,
            fleet_id=f"{tag}-fleet" if agent else None, task_run_id=run, gen_ai_operation=None,
            gen_ai_provider=None, gen_ai_model=None, input_tokens=None, output_tokens=None,
            scope_name=None, attributes=_attributes(rng, tag, subsystem, agents),
            resource_attributes={},
        ))  # fmt: skip
        if run is not None:
            batch.task_runs.append(TaskRunSighting(
                run, f"{tag}-task-{i % 7}", agent, rng.choice(["succeeded", "failed"]),
                _ns(start), _ns(end), trace_id, True, span_id=span_id,
            ))  # fmt: skip
        if i % 3 == 0:
            batch.llm_calls.append(LlmCall(
                trace_id, span_id, _ns(start), run, agent, subsystem, "openai",
                rng.choice(["gpt-4o", "gpt-4o-mini"]), rng.randrange(5000), rng.randrange(2000),
                0, 0, round(rng.uniform(0.01, 2.0), 4),
            ))  # fmt: skip


def _fleet(batch: Batch, tag: str, agents: list[str]) -> None:
    for i, agent in enumerate(agents):
        status = STATUSES[i % 3]
        batch.agents.append(AgentSighting(
            agent, f"{tag}-fleet", f"{tag} agent {i}", "DAMN", f"{tag}-svc", f"1.{i % 2}.0",
            _ns(T0 + timedelta(days=DAYS)), {}, _ns(T0 + timedelta(days=DAYS)), status,
        ))  # fmt: skip
        for k in range(DAYS * 48):  # a heartbeat every 30 minutes
            t = T0 + timedelta(minutes=30 * k + i)
            batch.events.append(EventRow(
                event_id=_id(tag, "e", agent, k)[:16], time_ns=_ns(t), observed_ns=None,
                severity="info", severity_number=9, subsystem="DAMN",
                event_type="damn.agent.heartbeat", agent_id=agent, fleet_id=f"{tag}-fleet",
                task_run_id=None, trace_id=None, span_id=None, service_name=f"{tag}-svc",
                message=None, payload={"damn.agent.status": STATUSES[(i + k) % 3]},
                resource_attributes={},
            ))  # fmt: skip
        for k in range(DAYS * 24):  # queue depth every hour
            batch.metric_points.append(MetricPointRow(
                metric="damn.queue.depth", series_id=_id(tag, "q", agent)[:16],
                time_ns=_ns(T0 + timedelta(hours=k, minutes=7)), start_ns=None, kind="gauge",
                temporality=0, is_monotonic=False, unit="{item}", subsystem="DAMN",
                service_name=f"{tag}-svc", agent_id=agent, attributes={},
                resource_attributes={}, value=float((k * 7 + i) % 23),
            ))  # fmt: skip


def _batch(org_id: uuid.UUID, tag: str, seed: int) -> Batch:
    rng = random.Random(seed)
    agents = [f"{tag}-agent-{i}" for i in range(3)]
    batch = Batch(org_id)
    _fleet(batch, tag, agents)
    _spans(batch, rng, tag, agents, 300)
    return batch


def _rule(conn: Connection, org_id: uuid.UUID, name: str, kind: str,
          params: dict[str, Any]) -> store.RuleRow:  # fmt: skip
    stored = alert_config.create_rule(
        conn,
        org_id,
        alert_spec.RuleSpec.model_validate({"name": name, "type": kind, "params": params}),
    )
    fields = stored.spec.model_dump(exclude={"enabled"})
    return store.RuleRow(id=stored.id, org_id=org_id, next_eval_at=None, **fields)


def _instance(rule: store.RuleRow, agent: str | None, state: states.State,
              at: datetime, value: float) -> store.StateRow:  # fmt: skip
    labels = {"agent_id": agent} if agent else {}
    firing = state in (states.State.ALERTING, states.State.RECOVERING)
    return store.StateRow(
        rule_id=rule.id, fingerprint=states.fingerprint(labels), labels=labels,
        state=state.value, is_firing=firing, active_at=at if state != "normal" else None,
        fired_at=at if firing else None, breach_ended_at=None, resolved_at=None,
        last_value=value, missed=0, reason=None,
    )  # fmt: skip


def _alerting(conn: Connection, org_id: uuid.UUID, tag: str) -> None:
    """Rules, instance states, evaluations and notifications as the alerting engine writes
    them: a monthly budget (and a daily one, which is not the month's budget line), and an
    error-rate rule per agent with one instance firing, one pending and one normal."""
    at = T0 + timedelta(days=2)
    budget = _rule(conn, org_id, f"{tag}-budget", "budget", {"amount_usd": 120, "period": "month"})
    daily = _rule(conn, org_id, f"{tag}-daily", "budget", {"amount_usd": 500, "period": "day"})
    errors = _rule(conn, org_id, f"{tag}-threshold", "threshold",
                   {"measure": "error_rate", "value": 0.1, "group_by": ["agent_id"]})  # fmt: skip
    agents = [f"{tag}-agent-{i}" for i in range(3)]
    found = [states.State.ALERTING, states.State.PENDING, states.State.NORMAL]
    rows = [(org_id, _instance(errors, a, s, at, 0.2)) for a, s in zip(agents, found, strict=True)]
    rows += [(org_id, _instance(r, None, states.State.NORMAL, at, 10)) for r in (budget, daily)]
    store.save_states(conn, rows, at)
    store.record_evaluations(conn, [
        store.EvaluationRow(errors, T0 + timedelta(hours=k),
                            "alerting" if k % 5 == 0 else "normal", k / 10, {})
        for k in range(DAYS * 24)
    ])  # fmt: skip
    # History stored before migration 0014 keeps the old state names (never rewritten).
    conn.execute(
        text(
            "INSERT INTO alert_evaluations (org_id, rule_id, time, state, value) VALUES "
            "(:o, :r, :t, 'firing', 1), (:o, :r, :t + interval '1 minute', 'ok', 0)"
        ),
        {"o": org_id, "r": errors.id, "t": T0 + timedelta(minutes=30)},
    )
    for k in range(6):
        store.notify(conn, store.NewNotification(
            org_id=org_id, type="alert.firing", severity="critical", title=f"{tag} errors",
            body="", rule_id=errors.id, dedup_key=f"{tag}-firing-{k}",
            labels={"agent_id": agents[0]}, details={},
        ), T0 + timedelta(hours=9 * k))  # fmt: skip


def _platform(conn: Connection) -> None:
    for k in range(DAYS * 24 * 4):
        conn.execute(
            text(
                "INSERT INTO platform_health (time, instance, signal, accepted, rejected, "
                "refused, requests, queue_items, commits, commit_seconds_sum, "
                "commit_seconds_max) VALUES (:t, 'r1', 'traces', :a, 1, 0, 10, 5, 4, 0.2, 0.1)"
            ),
            {"t": T0 + timedelta(minutes=15 * k), "a": 100 + k},
        )
    conn.execute(
        text(
            "INSERT INTO scheduler_runs (job, started_at, instance, finished_at, status) "
            "VALUES ('partitions', :t, 'i1', :t, 'ok'), ('sampling', :t, 'i1', :t, 'failed')"
        ),
        {"t": T0 + timedelta(days=1)},
    )


async def _write(db: Database, batches: list[Batch]) -> None:
    writer = IngestWriter(db.app_conninfo(), flushers=2)
    await writer.start()
    try:
        for batch in batches:
            await writer.write(batch)
    finally:
        await writer.close()


def build(db: Database) -> World:
    """Two orgs with three days of telemetry each, and alerting and platform rows."""
    suffix = uuid.uuid4().hex[:6]
    with db.admin_engine().begin() as conn:
        a = admin.create_org(conn, f"orga-{suffix}", "pro")
        b = admin.create_org(conn, f"orgb-{suffix}", "free")
    asyncio.run(_write(db, [_batch(a.org_id, "orga", 1), _batch(b.org_id, "orgb", 2)]))
    with db.admin_engine().begin() as conn:
        _alerting(conn, a.org_id, "orga")
        _alerting(conn, b.org_id, "orgb")
        _platform(conn)
    return World(a, b)
