"""Events."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from query_api.models._base import Hex, ViewModel


class EventOut(ViewModel):
    """An event (OTLP log record or span event)."""

    time: datetime
    event_id: Hex
    observed_time: datetime | None
    severity: str
    subsystem: str
    event_type: str
    agent_id: str | None
    fleet_id: str | None
    task_run_id: str | None
    trace_id: Hex | None
    span_id: Hex | None
    service_name: str | None
    message: str | None
    payload: dict[str, Any]
