"""Turns plans into telemetry: spans through the ``semconv.helpers``, logs, metrics.

A run's spans are stamped with simulated time (``SimClock``): the run is laid out so
that it ends at the given instant. Child spans carry ``mosaic.task_run.id`` as well as
the run's own span, so that the receiver files their costs under the run; UCE spans say
``aeos.subsystem=UCE`` because the (DAMN or MOSAIC) agent that calls the context engine
emits them. Failures are recorded the way ``semconv.helpers.record_error`` does it, but
with the simulated timestamp on the exception event.

Costs: every LLM call with usage is priced here exactly as the receiver prices it
(``storage.ingest.pricing``, the shipped price table, the UTC day of the span's start); an
explicit ``aeos.cost.usd`` counts as ``Decimal(repr(value))``, as the receiver stores it.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Final, cast

from opentelemetry._logs import SeverityNumber
from opentelemetry.metrics import Counter, Histogram, _Gauge
from opentelemetry.semconv.attributes.exception_attributes import (
    EXCEPTION_MESSAGE,
    EXCEPTION_TYPE,
)
from opentelemetry.trace import Span, Status, StatusCode, set_span_in_context

from aeos._demo_otel import AgentTelemetry, OrgPipeline, SimClock
from aeos._demo_plan import ContextStep, Failure, Handoff, LlmStep, RunPlan, ToolStep
from aeos._demo_world import Agent, Role
from semconv.attributes.aeos import AEOS_COST_USD, AEOS_SUBSYSTEM, AeosSubsystemValues
from semconv.attributes.damn import (
    DAMN_AGENT_CAPACITY,
    DAMN_AGENT_STATUS,
    DAMN_HEARTBEAT_INTERVAL,
    DAMN_QUEUE_NAME,
    DamnAgentStatusValues,
)
from semconv.attributes.gen_ai import GEN_AI_OPERATION_NAME, GEN_AI_TOOL_NAME
from semconv.attributes.mosaic import (
    MOSAIC_TASK_RUN_ID,
    MOSAIC_TASK_RUN_STATUS,
    MOSAIC_TASK_TITLE,
    MosaicTaskRunStatusValues,
)
from semconv.attributes.uce import UCE_CACHE_HIT, UCE_OPERATION_NAME, UCE_RETRIEVAL_DOCUMENTS
from semconv.events.damn import DAMN_AGENT_HEARTBEAT
from semconv.helpers import (
    ERROR_TYPE,
    SPAN_TASK_RUN,
    context_operation_span,
    handoff_span,
    heartbeat,
    llm_call_span,
    record_llm_usage,
    routing_decision_span,
    task_run_span,
)
from semconv.metrics import damn as damn_metrics
from semconv.metrics import uce as uce_metrics
from storage.ingest.pricing import Price, PriceBook, Usage, cost_usd, read_shipped_prices

EXCEPTION_EVENT: Final = "exception"  # OpenTelemetry's exception span event
SLOW_CALL_S: Final = 30.0  # an LLM call slower than this logs a warning
COST_QUANTUM: Final = Decimal("1e-10")  # cost columns are numeric(20, 10)
_ANY_ORG: Final = uuid.UUID(int=0)  # shipped prices are global: any org id finds them
_EPOCH: Final = date(1970, 1, 1)
_DAY_NS: Final = 86_400 * 10**9


def shipped_price_book() -> PriceBook:
    """The shipped price table (``storage/data/model_prices.csv``) as a ``PriceBook``."""
    return PriceBook(_price(row) for row in read_shipped_prices())


def _price(row: dict[str, object]) -> Price:
    def money(key: str) -> Decimal | None:
        return cast("Decimal | None", row[key])

    return Price(
        price_id=None,
        org_id=None,
        provider=str(row["provider"]),
        model_pattern=str(row["model_pattern"]),
        effective_from=cast("date", row["effective_from"]),
        input_per_mtok=cast("Decimal", row["input_per_mtok"]),
        output_per_mtok=cast("Decimal", row["output_per_mtok"]),
        cache_read_per_mtok=money("cache_read_per_mtok"),
        cache_creation_per_mtok=money("cache_creation_per_mtok"),
    )


@dataclass
class OrgCounts:
    """What was produced for one org, besides what the tallies count."""

    task_runs: int = 0
    failed_runs: int = 0
    llm_calls: int = 0
    cost_usd: Decimal = field(default_factory=Decimal)


@dataclass(frozen=True, slots=True)
class _Instruments:
    """An agent's live instruments (the context engine's UCE ones, too)."""

    heartbeats: Counter
    queue_depth: _Gauge
    utilization: _Gauge
    cache_requests: Counter
    context_size: Histogram
    operation_duration: Histogram


class Emitter:
    """Emits runs and heartbeats of all orgs through their pipelines."""

    def __init__(
        self,
        pipelines: list[OrgPipeline],
        clock: SimClock,
        prices: PriceBook,
        rng: random.Random,
        salt: str,
    ) -> None:
        self._pipelines, self._clock, self._prices = pipelines, clock, prices
        self._rng, self._salt = rng, salt
        self.counts = [OrgCounts() for _ in pipelines]
        self._instruments: dict[str, _Instruments] = {}
        self._queues: dict[str, int] = {}

    def run(self, plan: RunPlan, end_ns: int) -> None:
        """Emits ``plan`` so that it ends at ``end_ns``."""
        org = self._pipelines[plan.org.index]
        counts = self.counts[plan.org.index]
        self._clock.now_ns = end_ns - round(plan.duration_s * 1e9)
        run_id, root = self._id("run", plan), org.agents[plan.org.orchestrator.agent_id]
        counts.task_runs += 1
        name = f"{SPAN_TASK_RUN} {plan.route}"
        with task_run_span(root.tracer, run_id, task_id=self._id("task", plan), name=name) as span:
            span.set_attribute(MOSAIC_TASK_TITLE, plan.task_title)
            with routing_decision_span(
                root.tracer,
                plan.route,
                candidates=plan.candidates,
                chosen_agent=plan.chosen.agent_id,
                reason=plan.routing_reason,
                decision_id=self._id("rd", plan),
            ) as routing:
                routing.set_attribute(MOSAIC_TASK_RUN_ID, run_id)
                self._clock.advance(plan.routing_s)
            for handoff in plan.handoffs:
                self._clock.advance(handoff.gap_s)
                self._handoff(org, counts, handoff, run_id)
            self._clock.advance(plan.finish_s)
            if plan.failure is not None:
                counts.failed_runs += 1
                self._fail(span, plan.failure)
                span.set_attribute(MOSAIC_TASK_RUN_STATUS, MosaicTaskRunStatusValues.FAILED.value)
                message = f"task run {run_id} failed: {plan.failure.message}"
                self._log(root, span, SeverityNumber.ERROR, message, plan.failure, run_id)

    def _id(self, prefix: str, plan: RunPlan) -> str:
        """An id unique to this demo (salt), org and run: ``run-1f2e3d-0-000042``."""
        return f"{prefix}-{self._salt}-{plan.org.index}-{plan.number:06d}"

    def _handoff(self, org: OrgPipeline, counts: OrgCounts, handoff: Handoff, run_id: str) -> None:
        if handoff.from_agent is handoff.to_agent:  # a lone agent: no handoff span
            self._clock.advance(handoff.overhead_s)
            self._steps(org, counts, handoff, run_id)
            return
        sender = org.agents[handoff.from_agent.agent_id]
        with handoff_span(
            sender.tracer,
            handoff.from_agent.agent_id,
            handoff.to_agent.agent_id,
            reason=handoff.reason,
        ) as span:
            span.set_attribute(MOSAIC_TASK_RUN_ID, run_id)
            self._clock.advance(handoff.overhead_s / 2)
            failure = self._steps(org, counts, handoff, run_id)
            self._clock.advance(handoff.overhead_s / 2)
            if failure is not None:
                self._fail(span, failure, event=False)

    def _steps(
        self, org: OrgPipeline, counts: OrgCounts, handoff: Handoff, run_id: str
    ) -> Failure | None:
        """The handoff's steps; the fatal failure among them, if any."""
        agent = org.agents[handoff.to_agent.agent_id]
        for step in handoff.steps:
            self._clock.advance(step.gap_s)
            if isinstance(step, LlmStep):
                counts.llm_calls += 1
                counts.cost_usd += self._llm(agent, step, run_id)
            elif isinstance(step, ToolStep):
                counts.cost_usd += self._tool(agent, step, run_id)
            else:
                self._context(org, agent, step, run_id)
            if step.failure is not None and step.failure.fatal:
                return step.failure
        return None

    def _llm(self, agent: AgentTelemetry, step: LlmStep, run_id: str) -> Decimal:
        """One LLM call span; its cost."""
        model, start_ns = step.model, self._clock.now_ns
        with llm_call_span(
            agent.tracer, provider=model.provider, model=model.model, operation=model.operation
        ) as span:
            span.set_attribute(MOSAIC_TASK_RUN_ID, run_id)
            self._clock.advance(step.latency_s)
            if step.failure is not None:
                self._fail(span, step.failure)
                severity = SeverityNumber.ERROR if step.failure.fatal else SeverityNumber.WARN
                verb = "failed" if step.failure.fatal else "failed, retrying"
                message = f"{model.provider} {model.model} call {verb}: {step.failure.message}"
                self._log(agent, span, severity, message, step.failure, run_id)
                return Decimal(0)
            record_llm_usage(
                span,
                input_tokens=step.input_tokens,
                output_tokens=step.output_tokens,
                cache_read_tokens=step.cache_read_tokens,
                cache_creation_tokens=step.cache_creation_tokens,
                reasoning_tokens=step.reasoning_tokens,
                response_model=model.response_model,
            )
            if step.latency_s > SLOW_CALL_S:
                message = f"slow {model.model} call: {step.latency_s:.1f} s"
                self._log(agent, span, SeverityNumber.WARN, message, None, run_id)
        return self._cost(step, start_ns)

    def _cost(self, step: LlmStep, start_ns: int) -> Decimal:
        """What the receiver will charge for ``step`` (started at ``start_ns``)."""
        day = _EPOCH + timedelta(days=start_ns // _DAY_NS)  # integer maths, as the receiver
        model = step.model
        price = self._prices.find(_ANY_ORG, model.provider, model.response_model, day)
        if price is None:
            return Decimal(0)
        usage = Usage(
            step.input_tokens,
            step.output_tokens,
            step.cache_read_tokens or 0,
            step.cache_creation_tokens or 0,
        )
        return cost_usd(price, usage).quantize(COST_QUANTUM)

    def _tool(self, agent: AgentTelemetry, step: ToolStep, run_id: str) -> Decimal:
        """One tool call span (GenAI ``execute_tool``) with an explicit cost; that cost."""
        attributes = {
            GEN_AI_OPERATION_NAME: "execute_tool",
            GEN_AI_TOOL_NAME: step.tool,
            MOSAIC_TASK_RUN_ID: run_id,
        }
        name = f"execute_tool {step.tool}"
        with agent.tracer.start_as_current_span(name, attributes=attributes) as span:
            self._clock.advance(step.latency_s)
            if step.failure is not None:
                self._fail(span, step.failure)
                message = f"tool {step.tool} failed: {step.failure.message}"
                self._log(agent, span, SeverityNumber.WARN, message, step.failure, run_id)
                return Decimal(0)
            span.set_attribute(AEOS_COST_USD, step.cost_usd)
        return Decimal(repr(step.cost_usd))

    def _context(
        self, org: OrgPipeline, agent: AgentTelemetry, step: ContextStep, run_id: str
    ) -> None:
        with context_operation_span(
            agent.tracer,
            step.op,
            context_id=step.context_id,
            cache_hit=step.cache_hit,
            size_tokens=step.size_tokens,
        ) as span:
            span.set_attribute(MOSAIC_TASK_RUN_ID, run_id)
            span.set_attribute(AEOS_SUBSYSTEM, AeosSubsystemValues.UCE.value)
            if step.documents is not None:
                span.set_attribute(UCE_RETRIEVAL_DOCUMENTS, step.documents)
            self._clock.advance(step.latency_s)
            if step.failure is not None:
                self._fail(span, step.failure)
                message = f"context {step.op} of {step.context_id} failed: {step.failure.message}"
                self._log(agent, span, SeverityNumber.WARN, message, step.failure, run_id)
        engine = next(
            (a for a in org.agents.values() if a.agent.role is Role.CONTEXT_ENGINE), agent
        )
        self._uce_metrics(engine, step)

    def _uce_metrics(self, engine: AgentTelemetry, step: ContextStep) -> None:
        """The context engine's view of the operation (live only: metrics are not backdated)."""
        instruments = self._live(engine)
        if instruments is None:
            return
        op: dict[str, str | bool] = {UCE_OPERATION_NAME: step.op}
        if step.cache_hit is not None:
            instruments.cache_requests.add(1, {**op, UCE_CACHE_HIT: step.cache_hit})
        instruments.context_size.record(step.size_tokens, op)
        timing = op if step.cache_hit is None else {**op, UCE_CACHE_HIT: step.cache_hit}
        if step.failure is not None:
            timing = {**timing, ERROR_TYPE: step.failure.error_type}
        instruments.operation_duration.record(step.latency_s, timing)

    def heartbeat(self, org_index: int, agent: Agent, at_ns: int | None, interval_s: float) -> None:
        """A ``damn.agent.heartbeat``, and the agent's gauges when live.

        Live (``at_ns`` None) it goes through ``semconv.helpers.heartbeat``; a backfilled
        one is emitted the same way but at ``at_ns`` (the helper stamps the wall clock).
        """
        tel = self._pipelines[org_index].agents[agent.agent_id]
        status = (
            DamnAgentStatusValues.DEGRADED if agent.misbehaving else DamnAgentStatusValues.ONLINE
        )
        if at_ns is not None:
            attributes = {
                DAMN_AGENT_STATUS: status.value,
                DAMN_AGENT_CAPACITY: agent.capacity,
                DAMN_HEARTBEAT_INTERVAL: interval_s,
            }
            tel.logger.emit(event_name=DAMN_AGENT_HEARTBEAT, attributes=attributes, timestamp=at_ns)
            return
        instruments = self._live(tel)
        heartbeat(
            tel.logger,
            status=status,
            capacity=agent.capacity,
            interval_s=interval_s,
            counter=instruments.heartbeats if instruments else None,
        )
        if instruments is not None:
            self._gauges(agent, instruments)

    def _gauges(self, agent: Agent, instruments: _Instruments) -> None:
        """Queue depth and utilisation: a misbehaving agent's backlog keeps growing."""
        rng = self._rng
        if agent.misbehaving:
            busy = rng.uniform(0.9, 1.0)
            depth = min(400, self._queues.get(agent.agent_id, 20) + rng.randint(0, 6))
        else:
            busy = rng.uniform(0.15, 0.75)
            depth = max(0, min(8, self._queues.get(agent.agent_id, 2) + rng.randint(-2, 2)))
        instruments.utilization.set(busy)
        if agent.queue is not None:
            self._queues[agent.agent_id] = depth
            instruments.queue_depth.set(depth, {DAMN_QUEUE_NAME: agent.queue})

    def _live(self, tel: AgentTelemetry) -> _Instruments | None:
        """The agent's instruments, created on first use; None when not live."""
        if tel.meter is None:
            return None
        found = self._instruments.get(tel.agent.agent_id)
        if found is None:
            meter = tel.meter
            found = self._instruments[tel.agent.agent_id] = _Instruments(
                damn_metrics.create_damn_agent_heartbeats(meter),
                damn_metrics.create_damn_queue_depth(meter),
                damn_metrics.create_damn_agent_utilization(meter),
                uce_metrics.create_uce_cache_requests(meter),
                uce_metrics.create_uce_context_size(meter),
                uce_metrics.create_uce_operation_duration(meter),
            )
        return found

    def _fail(self, span: Span, failure: Failure, event: bool = True) -> None:
        """``semconv.helpers.record_error``, with the exception event at simulated time."""
        if event:
            attributes = {EXCEPTION_TYPE: failure.error_type, EXCEPTION_MESSAGE: failure.message}
            span.add_event(EXCEPTION_EVENT, attributes, timestamp=self._clock.now_ns)
        span.set_attribute(ERROR_TYPE, failure.error_type)
        short = failure.error_type.rsplit(".", 1)[-1]
        span.set_status(Status(StatusCode.ERROR, f"{short}: {failure.message}"))

    def _log(
        self,
        agent: AgentTelemetry,
        span: Span,
        severity: SeverityNumber,
        message: str,
        failure: Failure | None,
        run_id: str,
    ) -> None:
        """A log record of ``agent`` at simulated time, in ``span``'s trace."""
        attributes: dict[str, str] = {MOSAIC_TASK_RUN_ID: run_id}
        if failure is not None:
            attributes[ERROR_TYPE] = failure.error_type
        agent.logger.emit(
            timestamp=self._clock.now_ns,
            context=set_span_in_context(span),
            severity_number=severity,
            severity_text=severity.name,
            body=message,
            attributes=attributes,
        )
