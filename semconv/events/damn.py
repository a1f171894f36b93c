# generated from semconv/model by semconv/_generate.py, do not edit
"""Events of the `damn` namespace.

DAMN agent fleet: agent status and heartbeats, capacity, utilisation and queues.
"""

from __future__ import annotations

from typing import Final

DAMN_AGENT_HEARTBEAT: Final = "damn.agent.heartbeat"
"""The agent is alive and reports its status.

Emit it as an OpenTelemetry log record whose event name (LogRecord.event_name; the older
event.name attribute is accepted) is damn.agent.heartbeat, every damn.heartbeat.interval seconds.
The resource says which agent it is (aeos.agent.id); the receiver sets the agent's last heartbeat
time from the record's timestamp and its status from damn.agent.status (online when absent or
unknown). A span event with the same name and attributes is accepted too, but it reaches the
backend only when its span ends, so it suits short-lived workers only. semconv.helpers.heartbeat
emits either and can also count the beat on the damn.agent.heartbeats counter.

Stability: development. Attributes: `damn.agent.status` (required), `damn.agent.capacity`
(recommended), `damn.heartbeat.interval` (recommended).
"""
