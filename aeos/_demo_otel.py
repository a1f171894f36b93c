"""The demo's OpenTelemetry plumbing: real SDK providers and OTLP exporters, per org.

Each agent is one resource, so it has its own ``TracerProvider``, ``LoggerProvider``
and (live only) ``MeterProvider``; the agents of an org share one batch span processor
and one batch log processor (one exporter, one worker thread and one connection per
org and signal), the way a collector batches many services. Nothing is set globally.

``force_flush`` only says whether it timed out, and a batch processor drops silently
when its queue is full or an export fails, so every exporter is wrapped in a
:class:`Tally` that counts what the receiver acknowledged and what it did not, and the
processors count what was produced: :meth:`OrgPipeline.close` compares them.

Spans are timed by a :class:`SimClock` (:class:`SimTracer`): the ``semconv.helpers``
span context managers then work unchanged for runs in the past (backfill) and for live
runs, which are emitted when they end.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

from opentelemetry._logs import Logger
from opentelemetry.context import Context
from opentelemetry.metrics import Meter
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord, ReadWriteLogRecord
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    LogRecordExporter,
    LogRecordExportResult,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    MetricExporter,
    MetricExportResult,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from opentelemetry.trace import Span, SpanKind, Tracer, use_span
from opentelemetry.util._decorator import _agnosticcontextmanager
from opentelemetry.util.types import Attributes

from aeos._demo_world import Agent, Org
from semconv.helpers import agent_resource

SCOPE: Final = "aeos.demo"
QUEUE_SIZE: Final = 200_000  # items; the backfill flushes long before it fills
BATCH_SIZE: Final = 1024  # items per export request (well under the receiver's size limit)
SCHEDULE_DELAY_MS: Final = 1000
METRIC_INTERVAL_MS: Final = 10_000
EXPORT_TIMEOUT_S: Final = 30.0
FLUSH_TIMEOUT_MS: Final = 120_000
CONNECT_TIMEOUT_S: Final = 5.0


class DemoError(RuntimeError):
    """The receiver cannot be reached, or did not accept everything the demo produced."""


class SimClock:
    """The simulated time spans are stamped with, in Unix nanoseconds."""

    __slots__ = ("now_ns",)

    def __init__(self, now_ns: int = 0) -> None:
        self.now_ns = now_ns

    def advance(self, seconds: float) -> None:
        """Moves the clock ``seconds`` forward."""
        self.now_ns += round(seconds * 1e9)


class SimTracer(Tracer):
    """A tracer whose spans start and end at ``clock`` time instead of the wall clock."""

    def __init__(self, tracer: Tracer, clock: SimClock) -> None:
        self._tracer, self._clock = tracer, clock

    def start_span(
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Attributes = None,
        links: Any = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> Span:
        """Starts a span at ``start_time``, else at the clock's time."""
        start = self._clock.now_ns if start_time is None else start_time
        return self._tracer.start_span(
            name, context, kind, attributes, links, start, record_exception,
            set_status_on_exception,
        )  # fmt: skip

    @_agnosticcontextmanager
    def start_as_current_span(
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Attributes = None,
        links: Any = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> Iterator[Span]:
        """Like the SDK's, but the span ends at the clock's time when the block exits."""
        span = self.start_span(
            name, context, kind, attributes, links, start_time, record_exception,
            set_status_on_exception,
        )  # fmt: skip
        try:
            with use_span(span, False, record_exception, set_status_on_exception):
                yield span
        finally:
            if end_on_exit:
                span.end(end_time=self._clock.now_ns)


@dataclass
class Tally:
    """Items of one signal: produced, acknowledged by the receiver, and failed."""

    produced: int = 0
    exported: int = 0
    failed: int = 0
    extra: int = 0  # span events (spans), unused otherwise
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, n: int, ok: bool) -> None:
        """Counts an export of ``n`` items."""
        with self._lock:
            if ok:
                self.exported += n
            else:
                self.failed += n

    def produce(self, n: int = 1, extra: int = 0) -> None:
        """Counts produced items."""
        with self._lock:
            self.produced += n
            self.extra += extra


class _TalliedSpans(SpanExporter):
    def __init__(self, inner: SpanExporter, tally: Tally) -> None:
        self._inner, self._tally = inner, tally

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        result = self._inner.export(spans)
        self._tally.add(len(spans), result is SpanExportResult.SUCCESS)
        return result

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._inner.force_flush(timeout_millis)


class _TalliedLogs(LogRecordExporter):
    def __init__(self, inner: LogRecordExporter, tally: Tally) -> None:
        self._inner, self._tally = inner, tally

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        result = self._inner.export(batch)
        self._tally.add(len(batch), result is LogRecordExportResult.SUCCESS)
        return result

    def shutdown(self) -> None:
        self._inner.shutdown()  # type: ignore[no-untyped-call]  # the SDK leaves it unannotated

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._inner.force_flush(timeout_millis)


class _TalliedMetrics(MetricExporter):
    def __init__(self, inner: MetricExporter, tally: Tally) -> None:
        super().__init__()
        self._inner, self._tally = inner, tally

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        result = self._inner.export(metrics_data, timeout_millis=timeout_millis, **kwargs)
        points = sum(
            len(metric.data.data_points)
            for rm in metrics_data.resource_metrics
            for sm in rm.scope_metrics
            for metric in sm.metrics
        )
        self._tally.add(points, result is MetricExportResult.SUCCESS)
        return result

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return self._inner.force_flush(timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self._inner.shutdown(timeout_millis=timeout_millis, **kwargs)


class _CountedSpans(BatchSpanProcessor):
    """A batch span processor that counts the spans (and their events) handed to it."""

    def __init__(self, exporter: SpanExporter, tally: Tally) -> None:
        super().__init__(exporter, QUEUE_SIZE, SCHEDULE_DELAY_MS, BATCH_SIZE)
        self._tally = tally

    def on_end(self, span: ReadableSpan) -> None:
        self._tally.produce(1, len(span.events))
        super().on_end(span)


class _CountedLogs(BatchLogRecordProcessor):
    """A batch log processor that counts the records handed to it."""

    def __init__(self, exporter: LogRecordExporter, tally: Tally) -> None:
        super().__init__(exporter, QUEUE_SIZE, SCHEDULE_DELAY_MS, BATCH_SIZE)
        self._tally = tally

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        self._tally.produce()
        super().on_emit(log_record)


@dataclass(frozen=True, slots=True)
class Exporters:
    """Factories of the three OTLP exporters for one endpoint and ingest key."""

    spans: Callable[[], SpanExporter]
    logs: Callable[[], LogRecordExporter]
    metrics: Callable[[], MetricExporter]


def otlp_exporters(endpoint: str, ingest_key: str) -> Exporters:
    """OTLP/HTTP (protobuf) for ``http(s)://`` endpoints, else OTLP/gRPC without TLS.

    The exporter modules are imported here, so only the chosen transport is loaded.
    """
    headers = {"authorization": f"Bearer {ingest_key}"}
    if endpoint.startswith(("http://", "https://")):
        from opentelemetry.exporter.otlp.proto.http import _log_exporter as hl
        from opentelemetry.exporter.otlp.proto.http import metric_exporter as hm
        from opentelemetry.exporter.otlp.proto.http import trace_exporter as ht

        base, t = endpoint.rstrip("/"), EXPORT_TIMEOUT_S
        return Exporters(
            lambda: ht.OTLPSpanExporter(f"{base}/v1/traces", headers=headers, timeout=t),
            lambda: hl.OTLPLogExporter(f"{base}/v1/logs", headers=headers, timeout=t),
            lambda: hm.OTLPMetricExporter(f"{base}/v1/metrics", headers=headers, timeout=t),
        )
    from opentelemetry.exporter.otlp.proto.grpc import _log_exporter as gl
    from opentelemetry.exporter.otlp.proto.grpc import metric_exporter as gm
    from opentelemetry.exporter.otlp.proto.grpc import trace_exporter as gt

    kw: dict[str, Any] = {"insecure": True, "headers": headers, "timeout": EXPORT_TIMEOUT_S}
    return Exporters(
        lambda: gt.OTLPSpanExporter(endpoint, **kw),
        lambda: gl.OTLPLogExporter(endpoint, **kw),
        lambda: gm.OTLPMetricExporter(endpoint, **kw),
    )


def check_reachable(endpoint: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Fails fast when nothing listens at ``endpoint`` (the exporters would retry for long).

    Raises:
        DemoError: No TCP connection could be made.
    """
    url = urlsplit(endpoint if "://" in endpoint else f"//{endpoint}")
    default = 443 if url.scheme == "https" else 80 if url.scheme == "http" else 4317
    host, port = url.hostname or "127.0.0.1", url.port or default
    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
    except OSError as exc:
        raise DemoError(f"cannot reach the receiver at {endpoint}: {exc}") from exc


@dataclass(frozen=True, slots=True)
class AgentTelemetry:
    """What one agent emits with: a simulated-time tracer, a logger, a meter (live only)."""

    agent: Agent
    tracer: SimTracer
    logger: Logger
    meter: Meter | None


class OrgPipeline:
    """The providers of one org's agents and the exporters to its ingest key."""

    def __init__(self, org: Org, exporters: Exporters, clock: SimClock, live: bool) -> None:
        self.spans, self.logs, self.metrics = Tally(), Tally(), Tally()
        self._span_processor = _CountedSpans(
            _TalliedSpans(exporters.spans(), self.spans), self.spans
        )
        self._log_processor = _CountedLogs(_TalliedLogs(exporters.logs(), self.logs), self.logs)
        self._tracer_providers: list[TracerProvider] = []
        self._logger_providers: list[LoggerProvider] = []
        self._meter_providers: list[MeterProvider] = []
        self.agents = {a.agent_id: self._agent(a, exporters, clock, live) for a in org.agents}

    def _agent(
        self, agent: Agent, exporters: Exporters, clock: SimClock, live: bool
    ) -> AgentTelemetry:
        resource = Resource.create(
            agent_resource(
                agent.agent_id,
                subsystem=agent.subsystem,
                agent_name=agent.name,
                fleet_id=agent.fleet_id,
                service_version=agent.version,
            )
        )
        tracers = TracerProvider(sampler=ALWAYS_ON, resource=resource, shutdown_on_exit=False)
        tracers.add_span_processor(self._span_processor)
        loggers = LoggerProvider(resource=resource, shutdown_on_exit=False)
        loggers.add_log_record_processor(self._log_processor)
        self._tracer_providers.append(tracers)
        self._logger_providers.append(loggers)
        meter = None
        if live:
            exporter = _TalliedMetrics(exporters.metrics(), self.metrics)
            reader = PeriodicExportingMetricReader(exporter, METRIC_INTERVAL_MS)
            meters = MeterProvider([reader], resource, shutdown_on_exit=False)
            self._meter_providers.append(meters)
            meter = meters.get_meter(SCOPE, agent.version)
        tracer = SimTracer(tracers.get_tracer(SCOPE, agent.version), clock)
        return AgentTelemetry(agent, tracer, loggers.get_logger(SCOPE, agent.version), meter)

    def flush(self) -> bool:
        """Exports everything produced so far; False if a flush timed out."""
        ok = self._span_processor.force_flush(FLUSH_TIMEOUT_MS)
        ok = self._log_processor.force_flush(FLUSH_TIMEOUT_MS) and ok
        for meters in self._meter_providers:
            ok = meters.force_flush(FLUSH_TIMEOUT_MS) and ok
        return ok

    def close(self) -> list[str]:
        """Flushes and shuts everything down; what was not delivered, as messages."""
        problems = [] if self.flush() else ["a flush timed out"]
        for tracers in self._tracer_providers:
            tracers.shutdown()  # the shared processor shuts down once, then no-ops
        for loggers in self._logger_providers:
            loggers.shutdown()
        for meters in self._meter_providers:
            meters.shutdown(FLUSH_TIMEOUT_MS)
        for name, tally in (("spans", self.spans), ("log records", self.logs)):
            if tally.failed or tally.exported != tally.produced:
                lost = tally.produced - tally.exported
                problems.append(f"{lost} of {tally.produced} {name} were not accepted")
        if self.metrics.failed:
            problems.append(f"{self.metrics.failed} metric points were not accepted")
        return problems
