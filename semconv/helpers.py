"""Helpers for agent authors: resource attributes, spans and heartbeats per the conventions.

They take the OpenTelemetry *API* objects an agent already has (a ``Tracer``, a ``Span``,
a logs ``Logger``, a ``Counter``) and import ``opentelemetry`` only inside the functions
that need it, so importing this module loads the standard library only. Example::

    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    from semconv.helpers import agent_resource, llm_call_span, record_llm_usage, task_run_span

    resource = Resource.create(agent_resource("agent-7", agent_name="planner", subsystem="MOSAIC"))
    tracer = TracerProvider(resource=resource).get_tracer("planner")
    with task_run_span(tracer, "run-1", task_id="task-9"):
        with llm_call_span(tracer, provider="openai", model="gpt-4o") as span:
            response = ...  # call the model
            record_llm_usage(span, input_tokens=1200, output_tokens=80, cache_read_tokens=1024)

Every span helper is a context manager yielding the span. When the body raises an
``Exception`` the span records it, gets ``error.type`` and status ERROR, and the exception
propagates. Arguments that break the conventions (an unknown enum value, a negative
count) raise ``ValueError`` (``TypeError`` for wrong types) at the call: they are
programming errors, better found in development than silently dropped by the backend.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Final, TypeAlias

from semconv import _args
from semconv.attributes import aeos, gen_ai, mosaic, uce
from semconv.attributes.damn import (
    DAMN_AGENT_CAPACITY,
    DAMN_AGENT_STATUS,
    DAMN_HEARTBEAT_INTERVAL,
    DamnAgentStatusValues,
)
from semconv.events.damn import DAMN_AGENT_HEARTBEAT

if TYPE_CHECKING:
    from opentelemetry._logs import Logger
    from opentelemetry.metrics import Counter
    from opentelemetry.trace import Span, Tracer
    from opentelemetry.util.types import AttributeValue

    _Attributes: TypeAlias = dict[str, AttributeValue]

__all__ = [
    "ERROR_TYPE",
    "SPAN_HANDOFF",
    "SPAN_ROUTING",
    "SPAN_TASK_RUN",
    "agent_resource",
    "context_operation_span",
    "error_type",
    "handoff_span",
    "heartbeat",
    "llm_call_span",
    "record_error",
    "record_llm_usage",
    "routing_decision_span",
    "task_run_span",
]

ERROR_TYPE: Final = "error.type"
"""OpenTelemetry's ``error.type`` attribute (general registry)."""
SERVICE_NAME: Final = "service.name"
SERVICE_VERSION: Final = "service.version"
SERVICE_INSTANCE_ID: Final = "service.instance.id"

SPAN_TASK_RUN: Final = "mosaic.task_run"
SPAN_ROUTING: Final = "mosaic.route"
SPAN_HANDOFF: Final = "mosaic.handoff"

_RunStatus = mosaic.MosaicTaskRunStatusValues
_TERMINAL: Final = frozenset(
    s.value for s in (_RunStatus.SUCCEEDED, _RunStatus.FAILED, _RunStatus.CANCELED)
)


def agent_resource(
    agent_id: str,
    *,
    subsystem: str,
    agent_name: str | None = None,
    fleet_id: str | None = None,
    fleet_name: str | None = None,
    service_name: str | None = None,
    service_version: str | None = None,
    org_hint: str | None = None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Resource attributes of an agent, for ``Resource.create(agent_resource(...))``.

    Args:
        agent_id: ``aeos.agent.id``; also ``service.instance.id``.
        subsystem: ``aeos.subsystem``: MOSAIC, DAMN, UCE or SYSTEM (any case).
        agent_name: ``aeos.agent.name``.
        fleet_id: ``aeos.fleet.id``.
        fleet_name: ``aeos.fleet.name``.
        service_name: ``service.name``; defaults to ``agent_name``, else ``agent_id``.
        service_version: ``service.version`` (the backend reports version skew from it).
        org_hint: ``aeos.org.hint``; informational, the backend never trusts it.
        extra: More resource attributes; they may not replace the ones above.

    Raises:
        ValueError: an empty ``agent_id``, an unknown subsystem, or ``extra`` replacing
            an attribute set by a parameter.
    """
    attrs = {
        aeos.AEOS_AGENT_ID: _args.text("agent_id", agent_id),
        aeos.AEOS_SUBSYSTEM: _args.member(
            aeos.AeosSubsystemValues, _args.text("subsystem", subsystem).strip().upper()
        ),
        SERVICE_NAME: service_name or agent_name or agent_id,
        SERVICE_INSTANCE_ID: agent_id,
    }
    optional = {
        aeos.AEOS_AGENT_NAME: agent_name,
        aeos.AEOS_FLEET_ID: fleet_id,
        aeos.AEOS_FLEET_NAME: fleet_name,
        SERVICE_VERSION: service_version,
        aeos.AEOS_ORG_HINT: org_hint,
    }
    attrs.update({key: value for key, value in optional.items() if value is not None})
    for key, value in (extra or {}).items():
        if key in attrs:
            raise ValueError(f"extra must not replace {key!r}; use the parameter")
        attrs[key] = value
    return attrs


def error_type(exc: BaseException) -> str:
    """``error.type`` of an exception: its class's qualified name, with module unless builtin."""
    cls = type(exc)
    return (
        cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    )


def record_error(span: Span, exc: BaseException) -> None:
    """Marks ``span`` failed: an exception event, ``error.type`` and status ERROR."""
    from opentelemetry.trace import Status, StatusCode

    span.record_exception(exc)
    span.set_attribute(ERROR_TYPE, error_type(exc))
    span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))


@contextmanager
def _operation_span(
    tracer: Tracer, name: str, attributes: _Attributes, *, client: bool = False
) -> Iterator[Span]:
    """A current span that records an ``Exception`` escaping the body (see module doc)."""
    from opentelemetry.trace import SpanKind

    kind = SpanKind.CLIENT if client else SpanKind.INTERNAL
    with tracer.start_as_current_span(
        name,
        kind=kind,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            yield span
        except Exception as exc:
            record_error(span, exc)
            raise


@contextmanager
def task_run_span(
    tracer: Tracer,
    task_run_id: str,
    *,
    task_id: str,
    agent_id: str | None = None,
    name: str | None = None,
) -> Iterator[Span]:
    """The task run's own span (``mosaic.task_run.*``), named ``name`` or ``mosaic.task_run``.

    ``mosaic.task_run.status`` starts as ``running`` and ends as ``succeeded`` when the
    body returns, ``failed`` when it raises an ``Exception`` (the span then has status
    ERROR), ``canceled`` when it is interrupted by a ``BaseException`` such as
    ``asyncio.CancelledError`` (status left unset: a cancellation is not an error). To
    record a handled outcome, set the status attribute to a terminal value in the body;
    it is then kept.
    """
    attributes: _Attributes = {
        mosaic.MOSAIC_TASK_RUN_ID: _args.text("task_run_id", task_run_id),
        mosaic.MOSAIC_TASK_ID: _args.text("task_id", task_id),
        mosaic.MOSAIC_TASK_RUN_STATUS: _RunStatus.RUNNING.value,
    }
    _put(attributes, aeos.AEOS_AGENT_ID, agent_id)
    with _operation_span(tracer, name or SPAN_TASK_RUN, attributes) as span:
        try:
            yield span
        except Exception:
            span.set_attribute(mosaic.MOSAIC_TASK_RUN_STATUS, _RunStatus.FAILED.value)
            raise
        except BaseException:
            span.set_attribute(mosaic.MOSAIC_TASK_RUN_STATUS, _RunStatus.CANCELED.value)
            raise
        if _attribute(span, mosaic.MOSAIC_TASK_RUN_STATUS) not in _TERMINAL:
            span.set_attribute(mosaic.MOSAIC_TASK_RUN_STATUS, _RunStatus.SUCCEEDED.value)


@contextmanager
def routing_decision_span(
    tracer: Tracer,
    route: str,
    *,
    candidates: Sequence[str],
    chosen_agent: str | None,
    reason: str | None = None,
    decision_id: str | None = None,
) -> Iterator[Span]:
    """A routing decision (``mosaic.routing.*``), named ``mosaic.route``.

    ``mosaic.routing.outcome`` is ``routed`` when ``chosen_agent`` is among
    ``candidates``, ``fallback`` when it is not, ``no_candidate`` when it is None; set the
    attribute in the body to record something else.
    """
    if isinstance(candidates, str):
        raise TypeError("candidates must be a sequence of agent ids, not one string")
    outcome = mosaic.MosaicRoutingOutcomeValues
    if chosen_agent is None:
        result = outcome.NO_CANDIDATE
    else:
        result = outcome.ROUTED if chosen_agent in candidates else outcome.FALLBACK
    attributes: _Attributes = {
        mosaic.MOSAIC_ROUTING_ROUTE: _args.text("route", route),
        mosaic.MOSAIC_ROUTING_CANDIDATES: [str(c) for c in candidates],
        mosaic.MOSAIC_ROUTING_OUTCOME: result.value,
    }
    _put(attributes, mosaic.MOSAIC_ROUTING_CHOSEN_AGENT, chosen_agent)
    _put(attributes, mosaic.MOSAIC_ROUTING_REASON, reason)
    _put(attributes, mosaic.MOSAIC_ROUTING_DECISION_ID, decision_id)
    with _operation_span(tracer, SPAN_ROUTING, attributes) as span:
        yield span


@contextmanager
def handoff_span(
    tracer: Tracer, from_agent: str, to_agent: str, *, reason: str | None = None
) -> Iterator[Span]:
    """A handoff of work between two agents (``mosaic.handoff.*``), named ``mosaic.handoff``."""
    attributes: _Attributes = {
        mosaic.MOSAIC_HANDOFF_FROM_AGENT: _args.text("from_agent", from_agent),
        mosaic.MOSAIC_HANDOFF_TO_AGENT: _args.text("to_agent", to_agent),
    }
    _put(attributes, mosaic.MOSAIC_HANDOFF_REASON, reason)
    with _operation_span(tracer, SPAN_HANDOFF, attributes) as span:
        yield span


@contextmanager
def context_operation_span(
    tracer: Tracer,
    op: str,
    *,
    context_id: str,
    cache_hit: bool | None = None,
    size_tokens: int | None = None,
) -> Iterator[Span]:
    """A context-engine operation (``uce.*``), a CLIENT span named ``uce.<op>``.

    Args:
        tracer: The tracer.
        op: ``uce.operation.name``: read, write, evict, retrieve or summarize.
        context_id: ``uce.context.id``.
        cache_hit: ``uce.cache.hit``, if known now (else set it in the body).
        size_tokens: ``uce.context.size_tokens``, if known now.
    """
    operation = _args.member(uce.UceOperationNameValues, op)
    attributes: _Attributes = {
        uce.UCE_OPERATION_NAME: operation,
        uce.UCE_CONTEXT_ID: _args.text("context_id", context_id),
    }
    if cache_hit is not None:
        if not isinstance(cache_hit, bool):
            raise TypeError(f"cache_hit must be a bool, not {type(cache_hit).__name__}")
        attributes[uce.UCE_CACHE_HIT] = cache_hit
    _put(attributes, uce.UCE_CONTEXT_SIZE_TOKENS, _args.count("size_tokens", size_tokens))
    with _operation_span(tracer, f"uce.{operation}", attributes, client=True) as span:
        yield span


@contextmanager
def llm_call_span(
    tracer: Tracer, *, provider: str, model: str, operation: str = "chat"
) -> Iterator[Span]:
    """An LLM call per the GenAI conventions: a CLIENT span named ``{operation} {model}``.

    Sets ``gen_ai.operation.name``, ``gen_ai.provider.name`` and ``gen_ai.request.model``
    (current names only; the backend needs no deprecated duplicates). Record the usage
    with ``record_llm_usage`` before the block ends.
    """
    attributes: _Attributes = {
        gen_ai.GEN_AI_OPERATION_NAME: _args.text("operation", operation),
        gen_ai.GEN_AI_PROVIDER_NAME: _args.text("provider", provider),
        gen_ai.GEN_AI_REQUEST_MODEL: _args.text("model", model),
    }
    with _operation_span(tracer, f"{operation} {model}", attributes, client=True) as span:
        yield span


def record_llm_usage(
    span: Span,
    *,
    input_tokens: int,
    output_tokens: int,
    cache_read_tokens: int | None = None,
    cache_creation_tokens: int | None = None,
    reasoning_tokens: int | None = None,
    response_model: str | None = None,
    cost_usd: float | None = None,
) -> None:
    """Sets the ``gen_ai.usage.*`` token counts (and optionally the cost) on an LLM span.

    Args:
        span: The LLM call's span.
        input_tokens: All input tokens, cached ones *included* (GenAI conventions). If the
            provider reports cache reads and creations separately (Anthropic's API does),
            pass their sum with the uncached input tokens.
        output_tokens: All output tokens, reasoning tokens included.
        cache_read_tokens: Input tokens read from the provider's cache.
        cache_creation_tokens: Input tokens written to the provider's cache.
        reasoning_tokens: Output tokens spent on reasoning.
        response_model: ``gen_ai.response.model``: the exact model that answered.
        cost_usd: ``aeos.cost.usd``: the billed cost, which overrides the price table.

    Raises:
        TypeError: a count that is not an int (booleans included).
        ValueError: a negative count, cached tokens exceeding ``input_tokens``, reasoning
            tokens exceeding ``output_tokens``, or a negative or non-finite cost.
    """
    counts = {
        gen_ai.GEN_AI_USAGE_INPUT_TOKENS: _args.count("input_tokens", input_tokens),
        gen_ai.GEN_AI_USAGE_OUTPUT_TOKENS: _args.count("output_tokens", output_tokens),
        gen_ai.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: _args.count(
            "cache_read_tokens", cache_read_tokens
        ),
        gen_ai.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: _args.count(
            "cache_creation_tokens", cache_creation_tokens
        ),
        gen_ai.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: _args.count(
            "reasoning_tokens", reasoning_tokens
        ),
    }
    cached = (cache_read_tokens, cache_creation_tokens)
    _args.usage_totals(input_tokens, output_tokens, cached, reasoning_tokens)
    attributes: _Attributes = {k: v for k, v in counts.items() if v is not None}
    _put(attributes, gen_ai.GEN_AI_RESPONSE_MODEL, response_model)
    _put(attributes, aeos.AEOS_COST_USD, _args.number("cost_usd", cost_usd))
    span.set_attributes(attributes)


def heartbeat(
    target: Logger | Span,
    *,
    status: str = DamnAgentStatusValues.ONLINE,
    capacity: int | None = None,
    interval_s: float | None = None,
    counter: Counter | None = None,
) -> None:
    """Emits a ``damn.agent.heartbeat`` event; call it every ``interval_s`` seconds.

    The preferred ``target`` is a logs-API ``Logger`` (from a ``LoggerProvider`` with the
    agent's resource): the heartbeat is a log record with that event name, exported
    promptly by the batch processor. A ``Span`` target adds a span event instead, which
    reaches the backend only when the span ends (fine for short-lived workers). See the
    event's definition in ``semconv/model/damn/events.yaml`` for why not a metric.

    Args:
        target: A logs ``Logger`` (preferred) or a ``Span``.
        status: ``damn.agent.status``: online, offline or degraded.
        capacity: ``damn.agent.capacity``.
        interval_s: ``damn.heartbeat.interval``, seconds until the next heartbeat.
        counter: A ``damn.agent.heartbeats`` counter (``create_damn_agent_heartbeats``)
            to add 1 to, for heartbeat-rate dashboards.
    """
    from opentelemetry.trace import Span

    state = _args.member(DamnAgentStatusValues, status)
    attributes: _Attributes = {DAMN_AGENT_STATUS: state}
    _put(attributes, DAMN_AGENT_CAPACITY, _args.count("capacity", capacity))
    interval = _args.number("interval_s", interval_s, positive=True)
    _put(attributes, DAMN_HEARTBEAT_INTERVAL, interval)
    if isinstance(target, Span):
        target.add_event(DAMN_AGENT_HEARTBEAT, attributes)
    else:
        target.emit(
            event_name=DAMN_AGENT_HEARTBEAT, attributes=attributes, timestamp=time.time_ns()
        )
    if counter is not None:
        counter.add(1, {DAMN_AGENT_STATUS: state})


def _put(attributes: _Attributes, key: str, value: AttributeValue | None) -> None:
    if value is not None:
        attributes[key] = value


def _attribute(span: Span, key: str) -> object:
    """An attribute already set on ``span`` (SDK spans expose them), else None."""
    attributes = getattr(span, "attributes", None)
    return attributes.get(key) if isinstance(attributes, Mapping) else None
