"""One handler per signal, shared by the gRPC and HTTP transports.

A handler admits an authenticated request (the process's and the key's concurrency),
lets the transport read and decode it, refuses it if it carries more items than one
request may (413 / RESOURCE_EXHAUSTED) or than the key's rate allows (429 /
UNAVAILABLE), translates it into rows, hands them to the writer and answers once they
are committed: full success, or partial success naming the items it rejected (which the
client must not retry), or a request-level error.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from opentelemetry.proto.collector.logs.v1 import logs_service_pb2 as logs_pb
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as metrics_pb
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as trace_pb

from otlp_receiver import _errors, _metrics
from otlp_receiver._decode import DecodeError
from otlp_receiver._health import STATS
from otlp_receiver._translate import (
    Limits,
    Translation,
    translate_logs,
    translate_metrics,
    translate_traces,
)
from storage import (
    Batch,
    KeyIdentity,
    PermanentStorageError,
    QueueFullError,
    RefusedDataError,
    RetryableStorageError,
    WriteResult,
    WriterHealth,
)

if TYPE_CHECKING:
    from otlp_receiver._context import ReceiverContext

Req = TypeVar("Req")


class Writer(Protocol):
    """What a handler needs of ``storage.ingest.writer.IngestWriter``."""

    async def write(self, batch: Batch) -> WriteResult: ...

    def health(self) -> WriterHealth: ...


@dataclass(frozen=True, slots=True)
class SignalHandler(Generic[Req]):
    """Handles export requests of one signal."""

    signal: str  # traces, metrics, logs
    request_type: type[Req]
    response_type: type[Any]
    translate: Callable[[Req, Any, Limits], Translation]
    partial_field: str  # rejected_spans, rejected_data_points, rejected_log_records
    count_items: Callable[[Req], int]

    async def export(
        self,
        identity: KeyIdentity,
        ctx: ReceiverContext,
        transport: str,
        load: Callable[[], Awaitable[Req]],
    ) -> Any:
        """Admits the request, has ``load`` read and decode it, and handles it.

        Raises:
            ReceiverError: refused (load, limits, bad body) or nothing was stored.
        """
        admission, key_id = ctx.admission, identity.key_id
        share = admission.enter(key_id)
        try:
            request = await load()
            items = self.count_items(request)
            share = admission.resize(key_id, items)
            return await self.handle(request, items, identity, ctx, transport)
        finally:
            admission.leave(key_id, share)

    async def handle(
        self, request: Req, items: int, identity: KeyIdentity, ctx: ReceiverContext,
        transport: str,
    ) -> Any:  # fmt: skip
        """Stores the request's good items (``items`` of them); returns the
        Export*ServiceResponse.

        Raises:
            ReceiverError: nothing was stored (too many items, over the key's rate,
                overload, database down, refused data).
        """
        if items > ctx.max_request_items:
            raise _errors.too_many_items(items, ctx.max_request_items)
        ctx.rates.charge(identity.key_id, max(items, 1))
        return await self._handle(request, identity, ctx.writer, ctx.limits, transport)

    async def _handle(
        self, request: Req, identity: KeyIdentity, writer: Writer, limits: Limits, transport: str
    ) -> Any:
        try:
            translation = self.translate(request, identity.org_id, limits)
        except DecodeError as exc:  # the fast decoder's request was invalid after all
            raise _errors.bad_request(str(exc)) from None
        batch = translation.batch
        accepted = batch.item_count
        _metrics.BATCH_ITEMS.labels(self.signal).observe(accepted + translation.rejected)
        if accepted or batch.agents:
            try:
                await writer.write(batch)
            except QueueFullError as exc:
                self._count(transport, refused=accepted)
                raise _errors.overloaded(
                    f"the receiver is busy ({exc}); retry later", reason="queue_full"
                ) from None
            except RetryableStorageError as exc:
                self._count(transport, refused=accepted)
                raise _errors.unavailable(str(exc)) from None
            except PermanentStorageError as exc:
                self._count(transport, rejected=accepted)
                reason = "refused_data" if isinstance(exc, RefusedDataError) else "bad_request"
                raise _errors.bad_request(str(exc), reason) from None
        self._count(transport, accepted=accepted, rejected=translation.rejected)
        return self._response(translation)

    def _response(self, translation: Translation) -> Any:
        response = self.response_type()
        if translation.rejected or translation.errors:
            partial = response.partial_success
            setattr(partial, self.partial_field, translation.rejected)
            partial.error_message = "; ".join(translation.errors)[:4096]
        return response

    def _count(
        self, transport: str, *, accepted: int = 0, rejected: int = 0, refused: int = 0
    ) -> None:
        STATS.count(self.signal, accepted=accepted, rejected=rejected, refused=refused)
        for outcome, n in (("accepted", accepted), ("rejected", rejected), ("refused", refused)):
            if n:
                _metrics.ITEMS.labels(self.signal, transport, outcome).inc(n)


def _span_count(request: Any) -> int:
    return sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)


def _log_count(request: Any) -> int:
    return sum(len(sl.log_records) for rl in request.resource_logs for sl in rl.scope_logs)


def _point_count(request: Any) -> int:
    n = 0
    for rm in request.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                kind = metric.WhichOneof("data")
                if kind is not None:
                    n += len(getattr(metric, kind).data_points)
    return n


TRACES = SignalHandler(
    "traces",
    trace_pb.ExportTraceServiceRequest,
    trace_pb.ExportTraceServiceResponse,
    translate_traces,
    "rejected_spans",
    _span_count,
)
METRICS = SignalHandler(
    "metrics",
    metrics_pb.ExportMetricsServiceRequest,
    metrics_pb.ExportMetricsServiceResponse,
    translate_metrics,
    "rejected_data_points",
    _point_count,
)
LOGS = SignalHandler(
    "logs",
    logs_pb.ExportLogsServiceRequest,
    logs_pb.ExportLogsServiceResponse,
    translate_logs,
    "rejected_log_records",
    _log_count,
)
HANDLERS = {"traces": TRACES, "metrics": METRICS, "logs": LOGS}
