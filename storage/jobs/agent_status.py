"""The agent-status job: writes ``offline`` back to agents silent past their deadline.

The rule is the readers' (``storage.read.agents``): silent for longer than
``multiple`` heartbeat intervals (announced with ``damn.heartbeat.interval``, else the
default). Readers apply it at read time anyway; this job makes ``agents.status`` agree
for everyone else who reads the table (dashboards, alert rules).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine

from storage.read._sql import agents as sql
from storage.read.agents import Liveness
from storage.tenancy import DbRole, Scope
from storage.transaction import scoped_transaction


def mark_offline_agents(engine: Engine, now: datetime, liveness: Liveness) -> dict[str, int]:
    """Sets ``agents.status = 'offline'`` for every agent silent past its deadline.

    Runs as the worker role, across orgs; returns how many agents it marked.
    """
    with scoped_transaction(engine, Scope(DbRole.WORKER)) as conn:
        marked = conn.execute(
            sql.mark_offline(now, liveness.multiple, liveness.default_interval_s)
        ).all()
    return {"marked_offline": len(marked)}
