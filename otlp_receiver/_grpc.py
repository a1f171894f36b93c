"""OTLP/gRPC: TraceService, MetricsService and LogsService ``Export`` on one server."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from otlp_receiver import _errors, _metrics
from otlp_receiver._context import ReceiverContext
from otlp_receiver._decode import DecodeError, decode_logs, decode_metrics
from otlp_receiver._errors import ReceiverError
from otlp_receiver._handlers import LOGS, METRICS, TRACES, SignalHandler
from otlp_receiver._lite import decode_traces_fast

TRANSPORT = "grpc"
PROTOBUF = "application/x-protobuf"


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
    raw: bytes,
    context: grpc.aio.ServicerContext[Any, Any],
) -> Any:
    metadata = {k.lower(): v for k, v in context.invocation_metadata() or ()}
    try:
        credential = await ctx.auth.identify(_text(metadata.get("authorization")))

        async def load() -> Any:
            signature = _text(metadata.get("x-aeos-signature"))
            await ctx.auth.check_signature(credential, None, signature)
            try:  # decoded here, not by gRPC, so that a bad body is INVALID_ARGUMENT (OTLP)
                return _DECODERS[handler.signal](raw, PROTOBUF)
            except DecodeError as exc:
                raise _errors.bad_request(str(exc)) from None

        response = await handler.export(credential.identity, ctx, TRANSPORT, load)
    except ReceiverError as error:
        _metrics.REQUESTS.labels(handler.signal, TRANSPORT, error.grpc_code.name).inc()
        _metrics.REFUSALS.labels(handler.signal, TRANSPORT, error.reason).inc()
        await context.abort(error.grpc_code, error.message, trailing_metadata=_trailers(error))
        raise  # unreachable: abort raises
    _metrics.REQUESTS.labels(handler.signal, TRANSPORT, "OK").inc()
    return response


def _text(value: str | bytes | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


_DECODERS = {"traces": decode_traces_fast, "metrics": decode_metrics, "logs": decode_logs}
_SERVICES: dict[str, SignalHandler[Any]] = {
    "opentelemetry.proto.collector.trace.v1.TraceService": TRACES,
    "opentelemetry.proto.collector.metrics.v1.MetricsService": METRICS,
    "opentelemetry.proto.collector.logs.v1.LogsService": LOGS,
}


def _service(name: str, handler: SignalHandler[Any], ctx: ReceiverContext) -> Any:
    async def export(raw: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        return await _export(handler, ctx, raw, context)

    method = grpc.unary_unary_rpc_method_handler(
        export,
        request_deserializer=None,  # raw bytes: see _export
        response_serializer=lambda message: message.SerializeToString(),
    )
    return grpc.method_handlers_generic_handler(name, {"Export": method})


def create_server(
    ctx: ReceiverContext,
    host: str,
    port: int,
    max_request_bytes: int,
    *,
    max_concurrent_rpcs: int | None = None,
    idle_timeout_s: float = 30.0,
) -> tuple[grpc.aio.Server, int]:
    """A gRPC server with the three OTLP services; returns it and the bound port.

    ``SO_REUSEPORT`` lets several receiver processes share the port (the kernel spreads
    connections). Messages over ``max_request_bytes`` (after decompression) are refused
    with RESOURCE_EXHAUSTED by gRPC itself; calls beyond ``max_concurrent_rpcs`` too
    (so at most that many messages are held at once); connections idle for
    ``idle_timeout_s`` are closed.
    """
    server = grpc.aio.server(
        options=[
            ("grpc.so_reuseport", 1),
            ("grpc.max_receive_message_length", max_request_bytes),
            ("grpc.max_send_message_length", 4 * 1024 * 1024),
            ("grpc.max_connection_idle_ms", int(idle_timeout_s * 1000)),
        ],
        compression=None,
        maximum_concurrent_rpcs=max_concurrent_rpcs,
    )
    server.add_generic_rpc_handlers([_service(n, h, ctx) for n, h in _SERVICES.items()])
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"cannot listen for OTLP/gRPC on {host}:{port}")
    return server, bound
