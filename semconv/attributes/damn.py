# generated from semconv/model by semconv/_generate.py, do not edit
"""Attributes of the `damn` namespace.

DAMN agent fleet: agent status and heartbeats, capacity, utilisation and queues.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

DAMN_AGENT_CAPACITY: Final = "damn.agent.capacity"
"""Maximum number of task runs the agent accepts at the same time.

Type: int. Stability: development. Examples: `4`, `16`.
"""

DAMN_AGENT_STATUS: Final = "damn.agent.status"
"""Status an agent reports in its heartbeat.

Carried by the damn.agent.heartbeat event, which sets the agent's status and last heartbeat time
in the backend. An agent that stops cleanly sends one last heartbeat with offline.

Type: enum. Stability: development. Examples: `"online"`. Values: DamnAgentStatusValues.
"""

DAMN_HEARTBEAT_INTERVAL: Final = "damn.heartbeat.interval"
"""Seconds between two heartbeats of the agent.

Lets the backend tell a late heartbeat from a stopped agent without a global setting.

Type: double. Stability: development. Examples: `15.0`, `60.0`.
"""

DAMN_QUEUE_NAME: Final = "damn.queue.name"
"""Name of a task queue; low cardinality.

Type: string. Stability: development. Examples: `"default"`, `"gpu"`.
"""


class DamnAgentStatusValues(StrEnum):
    """Values of `damn.agent.status`."""

    ONLINE = "online"
    """Alive and accepting work."""

    OFFLINE = "offline"
    """Not accepting work (shutting down or paused)."""

    DEGRADED = "degraded"
    """Alive but impaired (errors, throttled, reduced capacity)."""
