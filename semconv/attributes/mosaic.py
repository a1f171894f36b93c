# generated from semconv/model by semconv/_generate.py, do not edit
"""Attributes of the `mosaic` namespace.

MOSAIC orchestration: tasks, task runs, routing decisions, handoffs between agents and plans.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

MOSAIC_HANDOFF_FROM_AGENT: Final = "mosaic.handoff.from_agent"
"""Agent id (aeos.agent.id value) handing the work over.

Type: string. Stability: development. Examples: `"agent-triage"`.
"""

MOSAIC_HANDOFF_REASON: Final = "mosaic.handoff.reason"
"""Short, low-cardinality code for why the work was handed over.

Type: string. Stability: development. Examples: `"needs_specialist"`, `"capacity"`.
"""

MOSAIC_HANDOFF_TO_AGENT: Final = "mosaic.handoff.to_agent"
"""Agent id (aeos.agent.id value) receiving the work.

Type: string. Stability: development. Examples: `"agent-billing"`.
"""

MOSAIC_PLAN_ID: Final = "mosaic.plan.id"
"""Identifier of the plan the work belongs to.

Type: string. Stability: development. Examples: `"plan-77a1"`.
"""

MOSAIC_PLAN_STEP: Final = "mosaic.plan.step"
"""Zero-based index of the step within its plan.

Type: int. Stability: development. Examples: `0`, `3`.
"""

MOSAIC_ROUTING_CANDIDATES: Final = "mosaic.routing.candidates"
"""Agent ids (aeos.agent.id values) the routing decision considered.

Type: string[]. Stability: development. Examples: `["agent-a", "agent-b", "agent-c"]`.
"""

MOSAIC_ROUTING_CHOSEN_AGENT: Final = "mosaic.routing.chosen_agent"
"""Agent id (aeos.agent.id value) the routing decision chose.

Type: string. Stability: development. Examples: `"agent-b"`.
"""

MOSAIC_ROUTING_DECISION_ID: Final = "mosaic.routing.decision.id"
"""Identifier of the routing decision, to correlate it with later outcomes.

Named decision.id rather than decision because OpenTelemetry names must not be both an attribute
and the namespace of other attributes.

Type: string. Stability: development. Examples: `"rd-5c2e91"`.
"""

MOSAIC_ROUTING_OUTCOME: Final = "mosaic.routing.outcome"
"""Outcome of the routing decision.

Type: enum. Stability: development. Examples: `"routed"`. Values: MosaicRoutingOutcomeValues.
"""

MOSAIC_ROUTING_REASON: Final = "mosaic.routing.reason"
"""Short, low-cardinality code for why the agent was chosen.

Type: string. Stability: development. Examples: `"least_loaded"`, `"affinity"`, `"fallback"`.
"""

MOSAIC_ROUTING_ROUTE: Final = "mosaic.routing.route"
"""Name of the route the task was submitted to; low cardinality.

Type: string. Stability: development. Examples: `"support.billing"`, `"research"`.
"""

MOSAIC_TASK_ID: Final = "mosaic.task.id"
"""Identifier of the task, the unit of work MOSAIC schedules.

Type: string. Stability: stable. Examples: `"task-2024-0042"`.
"""

MOSAIC_TASK_TITLE: Final = "mosaic.task.title"
"""Short human-readable title of the task.

For display; keep user content and secrets out of it.

Type: string. Stability: development. Examples: `"Summarise support ticket"`.
"""

MOSAIC_TASK_RUN_ID: Final = "mosaic.task_run.id"
"""Identifier of one execution of a task.

A task may run several times (retries, re-plans); each run has its own id. The receiver builds a
task run from the spans that carry it: the run's own span (the one semconv.helpers.task_run_span
creates) gives its start, end and final status.

Type: string. Stability: stable. Examples: `"run-01hzx3k9q8"`.
"""

MOSAIC_TASK_RUN_STATUS: Final = "mosaic.task_run.status"
"""Status of the task run.

succeeded, failed and canceled are terminal: once the run's own span reports one of them, a later
non-terminal value does not replace it.

Type: enum. Stability: stable. Examples: `"succeeded"`. Values: MosaicTaskRunStatusValues.
"""


class MosaicRoutingOutcomeValues(StrEnum):
    """Values of `mosaic.routing.outcome`."""

    ROUTED = "routed"
    """One of the candidates was chosen."""

    FALLBACK = "fallback"
    """No candidate fitted; the fallback agent was chosen."""

    NO_CANDIDATE = "no_candidate"
    """No agent could take the task; it stays queued."""


class MosaicTaskRunStatusValues(StrEnum):
    """Values of `mosaic.task_run.status`."""

    QUEUED = "queued"
    """Accepted, waiting for an agent."""

    RUNNING = "running"
    """An agent is working on it."""

    SUCCEEDED = "succeeded"
    """Finished successfully."""

    FAILED = "failed"
    """Finished with an error."""

    CANCELED = "canceled"
    """Stopped before it finished, by a user or the system."""
