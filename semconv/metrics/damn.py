# generated from semconv/model by semconv/_generate.py, do not edit
"""Metrics of the `damn` namespace.

DAMN agent fleet: agent status and heartbeats, capacity, utilisation and queues.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from opentelemetry.metrics import Counter, Meter, _Gauge

DAMN_AGENT_HEARTBEATS: Final = "damn.agent.heartbeats"
"""Number of heartbeats the agent has sent.

A rate signal for dashboards. Liveness (last seen, status) comes from the damn.agent.heartbeat
event: a cumulative counter is re-exported on every collection even when the agent's heartbeat
loop is stuck.

Instrument: counter. Unit: `{heartbeat}`. Stability: development. Attributes: `damn.agent.status`
(required).
"""

DAMN_AGENT_UTILIZATION: Final = "damn.agent.utilization"
"""Fraction of the agent's capacity in use, from 0 to 1.

Running task runs divided by damn.agent.capacity. The agent is identified by its resource
(aeos.agent.id), so no attribute is needed.

Instrument: gauge. Unit: `1`. Stability: development.
"""

DAMN_QUEUE_DEPTH: Final = "damn.queue.depth"
"""Number of tasks waiting in the queue.

Instrument: gauge. Unit: `{task}`. Stability: development. Attributes: `damn.queue.name`
(recommended).
"""


def create_damn_agent_heartbeats(meter: Meter) -> Counter:
    """Creates the `damn.agent.heartbeats` counter on ``meter``."""
    return meter.create_counter(
        name=DAMN_AGENT_HEARTBEATS,
        unit="{heartbeat}",
        description="Number of heartbeats the agent has sent.",
    )


def create_damn_agent_utilization(meter: Meter) -> _Gauge:
    """Creates the `damn.agent.utilization` gauge on ``meter``."""
    return meter.create_gauge(
        name=DAMN_AGENT_UTILIZATION,
        unit="1",
        description="Fraction of the agent's capacity in use, from 0 to 1.",
    )


def create_damn_queue_depth(meter: Meter) -> _Gauge:
    """Creates the `damn.queue.depth` gauge on ``meter``."""
    return meter.create_gauge(
        name=DAMN_QUEUE_DEPTH,
        unit="{task}",
        description="Number of tasks waiting in the queue.",
    )
