"""The agent-author helpers, checked against the real OpenTelemetry SDK (in-memory exporters)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode, Tracer

from semconv.helpers import (
    agent_resource,
    context_operation_span,
    handoff_span,
    heartbeat,
    llm_call_span,
    record_llm_usage,
    routing_decision_span,
    task_run_span,
)
from semconv.metrics.damn import create_damn_agent_heartbeats
from semconv.normalize import gen_ai_usage, heartbeat_status, subsystem_of


class BoomError(Exception):
    """A failure raised inside helper spans."""


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracer(exporter: InMemorySpanExporter) -> Iterator[Tracer]:
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider.get_tracer("test")
    provider.shutdown()


def _only_span(exporter: InMemorySpanExporter) -> ReadableSpan:
    spans = exporter.get_finished_spans()
    assert len(spans) == 1, [s.name for s in spans]
    return spans[0]


def _attrs(span: ReadableSpan) -> dict[str, object]:
    return dict(span.attributes or {})


# --- resource ----------------------------------------------------------------------------


def test_agent_resource_sets_the_identity_attributes() -> None:
    attrs = agent_resource(
        "agent-7",
        agent_name="planner",
        fleet_id="fleet-1",
        fleet_name="EU",
        subsystem="mosaic",
        service_version="1.4.2",
        org_hint="acme",
        extra={"deployment.environment.name": "prod"},
    )
    assert attrs == {
        "aeos.agent.id": "agent-7",
        "aeos.agent.name": "planner",
        "aeos.fleet.id": "fleet-1",
        "aeos.fleet.name": "EU",
        "aeos.subsystem": "MOSAIC",
        "aeos.org.hint": "acme",
        "service.name": "planner",
        "service.instance.id": "agent-7",
        "service.version": "1.4.2",
        "deployment.environment.name": "prod",
    }
    assert all(type(v) is str for v in attrs.values())
    resource = Resource.create(attrs)
    assert resource.attributes["aeos.subsystem"] == "MOSAIC"
    assert resource.attributes["service.name"] == "planner"
    assert subsystem_of(resource.attributes, {}) == "MOSAIC"


def test_agent_resource_defaults_service_name_and_omits_unset_attributes() -> None:
    attrs = agent_resource("agent-8", subsystem="UCE")
    assert attrs == {
        "aeos.agent.id": "agent-8",
        "aeos.subsystem": "UCE",
        "service.name": "agent-8",
        "service.instance.id": "agent-8",
    }
    assert agent_resource("a", subsystem="UCE", service_name="svc")["service.name"] == "svc"


def test_agent_resource_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="not one of MOSAIC, DAMN, UCE, SYSTEM"):
        agent_resource("agent-7", subsystem="BILLING")
    with pytest.raises(ValueError, match="agent_id must not be empty"):
        agent_resource(" ", subsystem="DAMN")
    with pytest.raises(ValueError, match=r"must not replace 'aeos\.agent\.id'"):
        agent_resource("agent-7", subsystem="DAMN", extra={"aeos.agent.id": "other"})


# --- task runs ---------------------------------------------------------------------------


def test_task_run_span_success(tracer: Tracer, exporter: InMemorySpanExporter) -> None:
    with task_run_span(tracer, "run-1", task_id="task-9", agent_id="agent-7") as span:
        assert span.is_recording()
    finished = _only_span(exporter)
    assert finished.name == "mosaic.task_run"
    assert finished.kind is SpanKind.INTERNAL
    assert _attrs(finished) == {
        "mosaic.task_run.id": "run-1",
        "mosaic.task.id": "task-9",
        "aeos.agent.id": "agent-7",
        "mosaic.task_run.status": "succeeded",
    }
    assert finished.status.status_code is StatusCode.UNSET


def test_task_run_span_failure_records_error(
    tracer: Tracer, exporter: InMemorySpanExporter
) -> None:
    with pytest.raises(BoomError), task_run_span(tracer, "run-2", task_id="t", name="summarise"):
        raise BoomError("model timed out")
    finished = _only_span(exporter)
    assert finished.name == "summarise"
    assert finished.status.status_code is StatusCode.ERROR
    assert finished.status.description == "BoomError: model timed out"
    attrs = _attrs(finished)
    assert attrs["error.type"] == f"{__name__}.BoomError"
    assert attrs["mosaic.task_run.status"] == "failed"
    assert [e.name for e in finished.events] == ["exception"]


def test_builtin_exceptions_have_a_bare_error_type(
    tracer: Tracer, exporter: InMemorySpanExporter
) -> None:
    with pytest.raises(KeyError), task_run_span(tracer, "run-3", task_id="t"):
        raise KeyError("x")
    assert _attrs(_only_span(exporter))["error.type"] == "KeyError"


def test_task_run_span_cancellation_is_not_an_error(
    tracer: Tracer, exporter: InMemorySpanExporter
) -> None:
    async def run() -> None:
        with task_run_span(tracer, "run-4", task_id="t"):
            raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(run())
    finished = _only_span(exporter)
    assert _attrs(finished)["mosaic.task_run.status"] == "canceled"
    assert finished.status.status_code is StatusCode.UNSET
    assert "error.type" not in _attrs(finished)


def test_task_run_span_keeps_a_terminal_status_set_in_the_body(
    tracer: Tracer, exporter: InMemorySpanExporter
) -> None:
    with task_run_span(tracer, "run-5", task_id="t") as span:
        span.set_attribute("mosaic.task_run.status", "failed")
    assert _attrs(_only_span(exporter))["mosaic.task_run.status"] == "failed"


def test_task_run_span_rejects_an_empty_id(tracer: Tracer) -> None:
    with pytest.raises(ValueError, match="task_run_id"), task_run_span(tracer, "", task_id="t"):
        pass


# --- routing and handoffs ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("chosen", "outcome"),
    [("agent-b", "routed"), ("agent-z", "fallback"), (None, "no_candidate")],
)
def test_routing_decision_span(
    tracer: Tracer, exporter: InMemorySpanExporter, chosen: str | None, outcome: str
) -> None:
    with routing_decision_span(
        tracer,
        "support.billing",
        candidates=("agent-a", "agent-b"),
        chosen_agent=chosen,
        reason="least_loaded",
        decision_id="rd-1",
    ):
        pass
    finished = _only_span(exporter)
    assert finished.name == "mosaic.route"
    attrs = _attrs(finished)
    assert attrs["mosaic.routing.route"] == "support.billing"
    assert tuple(attrs["mosaic.routing.candidates"]) == ("agent-a", "agent-b")  # type: ignore[arg-type]
    assert attrs["mosaic.routing.outcome"] == outcome
    assert attrs["mosaic.routing.reason"] == "least_loaded"
    assert attrs["mosaic.routing.decision.id"] == "rd-1"
    assert attrs.get("mosaic.routing.chosen_agent") == chosen


def test_routing_candidates_must_not_be_a_string(tracer: Tracer) -> None:
    with (
        pytest.raises(TypeError, match="sequence of agent ids"),
        routing_decision_span(tracer, "r", candidates="agent-a", chosen_agent="agent-a"),
    ):
        pass


def test_handoff_span(tracer: Tracer, exporter: InMemorySpanExporter) -> None:
    with pytest.raises(BoomError), handoff_span(tracer, "triage", "billing", reason="specialist"):
        raise BoomError
    finished = _only_span(exporter)
    assert finished.name == "mosaic.handoff"
    assert _attrs(finished) == {
        "mosaic.handoff.from_agent": "triage",
        "mosaic.handoff.to_agent": "billing",
        "mosaic.handoff.reason": "specialist",
        "error.type": f"{__name__}.BoomError",
    }
    assert finished.status.status_code is StatusCode.ERROR


# --- context operations ------------------------------------------------------------------


def test_context_operation_span(tracer: Tracer, exporter: InMemorySpanExporter) -> None:
    with context_operation_span(
        tracer, "retrieve", context_id="ctx-1", cache_hit=False, size_tokens=4096
    ) as span:
        span.set_attribute("uce.retrieval.documents", 8)
    finished = _only_span(exporter)
    assert finished.name == "uce.retrieve"
    assert finished.kind is SpanKind.CLIENT
    assert _attrs(finished) == {
        "uce.operation.name": "retrieve",
        "uce.context.id": "ctx-1",
        "uce.cache.hit": False,
        "uce.context.size_tokens": 4096,
        "uce.retrieval.documents": 8,
    }
    assert subsystem_of({}, _attrs(finished)) == "UCE"


def test_context_operation_span_rejects_bad_arguments(tracer: Tracer) -> None:
    with pytest.raises(ValueError, match="'delete' is not one of read, write"):
        context_operation_span(tracer, "delete", context_id="c").__enter__()
    with pytest.raises(TypeError, match="cache_hit must be a bool"):
        context_operation_span(tracer, "read", context_id="c", cache_hit=1).__enter__()  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="size_tokens must not be negative"):
        context_operation_span(tracer, "read", context_id="c", size_tokens=-1).__enter__()


# --- LLM calls ---------------------------------------------------------------------------


def test_llm_call_span_with_usage_round_trips_through_normalize(
    tracer: Tracer, exporter: InMemorySpanExporter
) -> None:
    with llm_call_span(tracer, provider="anthropic", model="claude-sonnet-4-5") as span:
        record_llm_usage(
            span,
            input_tokens=1200,
            output_tokens=80,
            cache_read_tokens=1000,
            cache_creation_tokens=100,
            reasoning_tokens=30,
            response_model="claude-sonnet-4-5-20250929",
            cost_usd=0.0042,
        )
    finished = _only_span(exporter)
    assert finished.name == "chat claude-sonnet-4-5"
    assert finished.kind is SpanKind.CLIENT
    attrs = _attrs(finished)
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == "anthropic"
    assert "gen_ai.system" not in attrs
    usage = gen_ai_usage(attrs)
    assert usage is not None
    assert (usage.provider, usage.request_model, usage.model) == (
        "anthropic",
        "claude-sonnet-4-5",
        "claude-sonnet-4-5-20250929",
    )
    assert (usage.input_tokens, usage.output_tokens) == (1200, 80)
    assert (usage.cache_read_tokens, usage.cache_creation_tokens, usage.reasoning_tokens) == (
        1000,
        100,
        30,
    )
    assert usage.explicit_cost_usd == pytest.approx(0.0042)


def test_record_llm_usage_leaves_out_what_is_not_given(
    tracer: Tracer, exporter: InMemorySpanExporter
) -> None:
    with llm_call_span(tracer, provider="openai", model="gpt-4o", operation="embeddings") as span:
        record_llm_usage(span, input_tokens=12, output_tokens=0)
    finished = _only_span(exporter)
    assert finished.name == "embeddings gpt-4o"
    assert {k for k in _attrs(finished) if k.startswith(("gen_ai.usage", "aeos."))} == {
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.output_tokens",
    }


def test_llm_call_span_failure(tracer: Tracer, exporter: InMemorySpanExporter) -> None:
    with pytest.raises(TimeoutError), llm_call_span(tracer, provider="openai", model="gpt-4o"):
        raise TimeoutError("no answer")
    finished = _only_span(exporter)
    assert finished.status.status_code is StatusCode.ERROR
    assert _attrs(finished)["error.type"] == "TimeoutError"


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"input_tokens": -1, "output_tokens": 0}, ValueError, "must not be negative"),
        ({"input_tokens": True, "output_tokens": 0}, TypeError, "must be an int"),
        ({"input_tokens": "12", "output_tokens": 0}, TypeError, "must be an int"),
        ({"input_tokens": 10, "output_tokens": 0, "cache_read_tokens": 11}, ValueError, "include"),
        ({"input_tokens": 1, "output_tokens": 1, "reasoning_tokens": 2}, ValueError, "include"),
        ({"input_tokens": 1, "output_tokens": 1, "cost_usd": float("nan")}, ValueError, "finite"),
        ({"input_tokens": 1, "output_tokens": 1, "cost_usd": -0.5}, ValueError, "non-negative"),
        ({"input_tokens": 1, "output_tokens": 1, "cost_usd": "1"}, TypeError, "number"),
    ],
)
def test_record_llm_usage_rejects_bad_counts(
    tracer: Tracer, kwargs: dict[str, object], error: type[Exception], match: str
) -> None:
    with tracer.start_as_current_span("llm") as span, pytest.raises(error, match=match):
        record_llm_usage(span, **kwargs)  # type: ignore[arg-type]


# --- heartbeats --------------------------------------------------------------------------


def test_heartbeat_as_a_log_event_with_a_counter() -> None:
    logs = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
    logger_provider = LoggerProvider(resource=Resource.create({}), shutdown_on_exit=False)
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    counter = create_damn_agent_heartbeats(meter_provider.get_meter("test"))

    logger = logger_provider.get_logger("agent")
    heartbeat(logger, status="degraded", capacity=4, interval_s=15, counter=counter)
    heartbeat(logger, counter=counter)

    records = [r.log_record for r in logs.get_finished_logs()]
    assert [r.event_name for r in records] == ["damn.agent.heartbeat"] * 2
    assert dict(records[0].attributes or {}) == {
        "damn.agent.status": "degraded",
        "damn.agent.capacity": 4,
        "damn.heartbeat.interval": 15.0,
    }
    assert records[0].timestamp
    statuses = [heartbeat_status(r.event_name, dict(r.attributes or {})) for r in records]
    assert statuses == ["degraded", "online"]

    data = reader.get_metrics_data()
    assert data is not None
    [metric] = [m for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics]
    assert (metric.name, metric.unit) == ("damn.agent.heartbeats", "{heartbeat}")
    points = {
        dict(p.attributes or {})["damn.agent.status"]: getattr(p, "value", None)
        for p in metric.data.data_points
    }
    assert points == {"degraded": 1, "online": 1}
    logger_provider.shutdown()
    meter_provider.shutdown()


def test_heartbeat_as_a_span_event(tracer: Tracer, exporter: InMemorySpanExporter) -> None:
    with tracer.start_as_current_span("worker") as span:
        heartbeat(span, status="offline")
    [event] = _only_span(exporter).events
    assert event.name == "damn.agent.heartbeat"
    assert dict(event.attributes or {}) == {"damn.agent.status": "offline"}
    assert heartbeat_status(event.name, dict(event.attributes or {})) == "offline"


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"status": "busy"}, ValueError),
        ({"capacity": -1}, ValueError),
        ({"interval_s": 0}, ValueError),
        ({"interval_s": "15"}, TypeError),
    ],
)
def test_heartbeat_rejects_bad_arguments(
    tracer: Tracer, kwargs: dict[str, object], error: type[Exception]
) -> None:
    with tracer.start_as_current_span("worker") as span, pytest.raises(error):
        heartbeat(span, **kwargs)  # type: ignore[arg-type]
