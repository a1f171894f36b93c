# generated from semconv/model by semconv/_generate.py, do not edit
"""Attributes of the `aeos` namespace.

Identity of the AEOS component that emits the telemetry (subsystem, agent, fleet), set on the
OpenTelemetry resource, and the explicit cost override.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

AEOS_AGENT_ID: Final = "aeos.agent.id"
"""Identifier of the agent, unique within its organisation and stable across restarts.

Set it on the resource (semconv.helpers.agent_resource also sets service.instance.id to it). The
receiver upserts the agent from it and marks its last sighting.

Type: string. Stability: stable. Examples: `"agent-planner-01"`,
`"3f1c2a7e-9d1b-4c55-8a0e-1b2c3d4e5f60"`.
"""

AEOS_AGENT_NAME: Final = "aeos.agent.name"
"""Human-readable name of the agent, for display.

Type: string. Stability: development. Examples: `"planner"`, `"billing-support"`.
"""

AEOS_COST_USD: Final = "aeos.cost.usd"
"""Explicit cost of the operation in US dollars; overrides the price table.

Set it on an LLM call span when the provider reports the billed amount. The receiver then records
this cost for the span instead of pricing its gen_ai.usage.* token counts with the price table.
Must be a finite, non-negative number; anything else is ignored.

Type: double. Stability: development. Examples: `0.0042`, `1.25`.
"""

AEOS_FLEET_ID: Final = "aeos.fleet.id"
"""Identifier of the DAMN fleet the agent belongs to.

Type: string. Stability: development. Examples: `"fleet-eu-west-1"`.
"""

AEOS_FLEET_NAME: Final = "aeos.fleet.name"
"""Human-readable name of the fleet, for display.

Type: string. Stability: development. Examples: `"EU support agents"`.
"""

AEOS_ORG_HINT: Final = "aeos.org.hint"
"""The organisation the sender believes it belongs to; informational only.

The receiver never trusts it: the organisation of every row comes from the ingest key that
authenticated the request. The hint is kept with the other attributes, which helps to spot an
agent configured with another organisation's key.

Type: string. Stability: development. Examples: `"acme-corp"`.
"""

AEOS_SUBSYSTEM: Final = "aeos.subsystem"
"""The AEOS subsystem the emitting agent or service belongs to.

Set it on the resource. The receiver files every span, event and metric point under exactly one
subsystem: this attribute when present (on the span first, then on the resource), else the
subsystem whose namespace (uce.*, damn.*, mosaic.*) the attributes use, else SYSTEM. Values are
upper-case, as the product displays them; the receiver also accepts them in lower case.

Type: enum. Stability: stable. Examples: `"MOSAIC"`, `"UCE"`. Values: AeosSubsystemValues.
"""


class AeosSubsystemValues(StrEnum):
    """Values of `aeos.subsystem`."""

    MOSAIC = "MOSAIC"
    """Orchestration - tasks, task runs, routing decisions, handoffs and plans."""

    DAMN = "DAMN"
    """Agent fleet - agent status, heartbeats, capacity, utilisation and queues."""

    UCE = "UCE"
    """Context engine - contexts, context operations, cache and retrieval."""

    SYSTEM = "SYSTEM"
    """Anything else (platform services, unclassified telemetry)."""
