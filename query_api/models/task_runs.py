"""Task runs."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from query_api.models._base import Hex, ViewModel


class TaskRunOut(ViewModel):
    """A task run."""

    task_run_id: str
    task_id: str | None
    title: str | None
    agent_id: str | None
    fleet_id: str | None
    status: str
    started_at: datetime | None
    ended_at: datetime | None
    duration_ms: float | None
    trace_id: Hex | None
    cost_usd: Decimal


class CostItemOut(ViewModel):
    """One LLM call of a run."""

    time: datetime
    provider: str
    model: str
    agent_id: str | None
    subsystem: str
    tokens_in: int
    tokens_out: int
    cache_read_tokens: int
    cache_creation_tokens: int
    cost_usd: Decimal
    cost_source: str
    trace_id: Hex
    span_id: Hex


class RunEventOut(ViewModel):
    """An event of a run."""

    time: datetime
    event_id: Hex
    severity: str
    subsystem: str
    event_type: str
    agent_id: str | None
    message: str | None
    payload: dict[str, Any]
    trace_id: Hex | None
    span_id: Hex | None


class TaskRunDetailOut(ViewModel):
    """A run with its cost line items (their sum is the run's cost) and events."""

    run: TaskRunOut
    attributes: dict[str, Any]
    cost_items: list[CostItemOut]
    events: list[RunEventOut]
