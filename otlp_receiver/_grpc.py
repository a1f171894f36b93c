"""OTLP/gRPC: TraceService, MetricsService and LogsService ``Export`` on one server."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc as logs_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc as metrics_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc as trace_grpc

from otlp_receiver import _metrics
from otlp_receiver._context import ReceiverContext
from otlp_receiver._errors import ReceiverError
from otlp_receiver._handlers import LOGS, METRICS, TRACES, SignalHandler

TRANSPORT = "grpc"


def _trailers(error: ReceiverError) -> tuple[tuple[str, bytes], ...]:
    """RetryInfo where a retry delay applies: read by OTel SDKs and the Collector."""
    if error.retry_after_s is None:
        return ()
    retry = error_details_pb2.RetryInfo(
        retry_delay=duration_pb2.Duration(seconds=error.retry_after_s)
    )
    detail = status_pb2.Status(code=code_pb2.UNAVAILABLE, message=error.message)
    detail.details.add().Pack(retry)
    return (
        ("google.rpc.retryinfo-bin", retry.SerializeToString()),
        ("grpc-status-details-bin", detail.SerializeToString()),
    )


async def _export(
    handler: SignalHandler[Any],
    ctx: ReceiverContext,
    request: Any,
    context: grpc.aio.ServicerContext[Any, Any],
) -> Any:
    metadata = {k.lower(): v for k, v in context.invocation_metadata() or ()}
    try:
        identity = await ctx.auth.identify(
            _text(metadata.get("authorization")),
            body=None,
            signature=_text(metadata.get("x-aeos-signature")),
        )
        response = await handler.handle(request, identity, ctx, TRANSPORT)
    except ReceiverError as error:
        _metrics.REQUESTS.labels(handler.signal, TRANSPORT, error.grpc_code.name).inc()
        await context.abort(error.grpc_code, error.message, trailing_metadata=_trailers(error))
        raise  # unreachable: abort raises
    _metrics.REQUESTS.labels(handler.signal, TRANSPORT, "OK").inc()
    return response


def _text(value: str | bytes | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


class _Traces(trace_grpc.TraceServiceServicer):
    def __init__(self, ctx: ReceiverContext) -> None:
        self._ctx = ctx

    async def Export(self, request: Any, context: Any) -> Any:
        return await _export(TRACES, self._ctx, request, context)


class _Metrics(metrics_grpc.MetricsServiceServicer):
    def __init__(self, ctx: ReceiverContext) -> None:
        self._ctx = ctx

    async def Export(self, request: Any, context: Any) -> Any:
        return await _export(METRICS, self._ctx, request, context)


class _Logs(logs_grpc.LogsServiceServicer):
    def __init__(self, ctx: ReceiverContext) -> None:
        self._ctx = ctx

    async def Export(self, request: Any, context: Any) -> Any:
        return await _export(LOGS, self._ctx, request, context)


def create_server(
    ctx: ReceiverContext, host: str, port: int, max_request_bytes: int
) -> tuple[grpc.aio.Server, int]:
    """A gRPC server with the three OTLP services; returns it and the bound port.

    ``SO_REUSEPORT`` lets several receiver processes share the port (the kernel spreads
    connections). Messages over ``max_request_bytes`` (after decompression) are refused
    with RESOURCE_EXHAUSTED by gRPC itself.
    """
    server = grpc.aio.server(
        options=[
            ("grpc.so_reuseport", 1),
            ("grpc.max_receive_message_length", max_request_bytes),
            ("grpc.max_send_message_length", 4 * 1024 * 1024),
        ],
        compression=None,
    )
    trace_grpc.add_TraceServiceServicer_to_server(_Traces(ctx), server)
    metrics_grpc.add_MetricsServiceServicer_to_server(_Metrics(ctx), server)
    logs_grpc.add_LogsServiceServicer_to_server(_Logs(ctx), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"cannot listen for OTLP/gRPC on {host}:{port}")
    return server, bound
