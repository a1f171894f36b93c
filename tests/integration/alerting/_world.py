"""Telemetry at chosen times, written through the real ingest writer, and rule helpers."""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, text

from storage import AgentSighting, Batch, EventRow, IngestWriter, LlmCall, SpanRow, admin
from storage.database import Database
from storage.tenancy import DbRole, Scope
from storage.transaction import scoped_transaction

_ids = itertools.count(1)


def ns(t: datetime) -> int:
    return int(t.timestamp() * 1e9)


def span(t: datetime, *, agent: str = "agent-1", error: bool = False, ms: float = 10.0) -> SpanRow:
    n = next(_ids)
    start = ns(t)
    return SpanRow(
        trace_id=n.to_bytes(16, "big"), span_id=n.to_bytes(8, "big"), parent_span_id=None,
        trace_state=None, name="call", kind=1, start_ns=start, end_ns=start + int(ms * 1e6),
        status_code=2 if error else 1, status_message=None, subsystem="MOSAIC",
        service_name="svc", agent_id=agent, fleet_id=None, task_run_id=None,
        gen_ai_operation=None, gen_ai_provider=None, gen_ai_model=None, input_tokens=None,
        output_tokens=None, scope_name=None, attributes={}, resource_attributes={},
    )  # fmt: skip


def heartbeat(t: datetime, agent: str, status: str = "online") -> EventRow:
    n = next(_ids)
    return EventRow(
        event_id=n.to_bytes(16, "big"), time_ns=ns(t), observed_ns=None, severity="info",
        severity_number=9, subsystem="DAMN", event_type="damn.agent.heartbeat", agent_id=agent,
        fleet_id=None, task_run_id=None, trace_id=None, span_id=None, service_name=None,
        message=None, payload={"damn.agent.status": status}, resource_attributes={},
    )  # fmt: skip


def agent(agent_id: str, fleet: str | None, t: datetime) -> AgentSighting:
    return AgentSighting(agent_id, fleet, agent_id, "DAMN", None, "1.0", ns(t), {})


def cost(
    t: datetime, usd: float, *, agent: str = "agent-1", model: str = "gpt-4o"
) -> tuple[SpanRow, LlmCall]:
    s = span(t, agent=agent)
    call = LlmCall(
        s.trace_id, s.span_id, s.start_ns, None, agent, "MOSAIC", "openai", model, 10, 10, 0, 0, usd
    )
    return s, call


def write(db: Database, batches: Iterable[Batch]) -> None:
    async def run() -> None:
        writer = IngestWriter(db.app_conninfo(), flushers=1)
        await writer.start()
        try:
            for b in batches:
                await writer.write(b)
        finally:
            await writer.close()

    asyncio.run(run())


def make_org(db: Database, name: str) -> uuid.UUID:
    with db.admin_engine().begin() as conn:
        return admin.create_org(conn, name).org_id


def add_rule(engine: Engine, org_id: uuid.UUID, **spec: Any) -> uuid.UUID:
    """Inserts a rule as the org's tenant (what the API does)."""
    from storage.alerts.rules import create_rule
    from storage.alerts.spec import RuleSpec

    with scoped_transaction(engine, Scope(DbRole.TENANT, org_id)) as conn:
        return create_rule(conn, org_id, RuleSpec.model_validate(spec)).id


def rows(engine: Engine, sql: str, **binds: Any) -> list[dict[str, Any]]:
    with scoped_transaction(engine, Scope(DbRole.STAFF)) as conn:
        return [dict(r) for r in conn.execute(text(sql), binds).mappings()]


def dumps(value: Any) -> str:
    return json.dumps(value, default=str)
