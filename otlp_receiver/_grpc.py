"""OTLP/gRPC: TraceService, MetricsService and LogsService ``Export`` on one server.

Order of work, cheapest refusal first, as over HTTP (``_http``): the key, from the call's
metadata, before a byte of the message is read (:class:`_Guard`, a server interceptor:
gRPC asks it for the method handler once the headers are in and before it asks the
transport for the message, so a refused call's message is never read, let alone
decoded); admission (the process's and the key's concurrency); the message, within
``body_timeout_seconds`` and the process's bound on bodies in flight (one budget for
both transports); decoding. Every refusal is counted in ``/metrics`` by reason.

gRPC tells the application a message's size only once it has arrived, so the bound on
bodies in flight counts a message from its arrival until its answer, and a call is not
read at all while the process's (or its key's) share of the budget is already used up.
Connections are bounded by server options (:class:`ConnectionLimits`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, NoReturn

import grpc
from google.protobuf import duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from otlp_receiver import _errors, _metrics
from otlp_receiver._auth import Credential
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


async def _abort(
    signal: str, error: ReceiverError, context: grpc.aio.ServicerContext[Any, Any]
) -> NoReturn:
    _metrics.REQUESTS.labels(signal, TRANSPORT, error.grpc_code.name).inc()
    _metrics.REFUSALS.labels(signal, TRANSPORT, error.reason).inc()
    await context.abort(error.grpc_code, error.message, trailing_metadata=_trailers(error))
    raise AssertionError("unreachable: abort raises")


async def _receive(requests: AsyncIterator[bytes], timeout_s: float) -> bytes:
    """The call's one message, as raw bytes, within the body timeout (a slow sender).

    The message stream ends without a message when gRPC refused the message for its size
    (it answers RESOURCE_EXHAUSTED itself), when the client went away or was dropped for
    not answering pings, and when it sent none; grpcio tells them apart to no one, so all
    three are counted as ``incomplete`` (only the last client reads this answer).
    """
    try:
        async with asyncio.timeout(timeout_s):
            return await anext(requests)
    except TimeoutError:
        message = f"the request message was not received within {timeout_s:g}s"
        raise _errors.timed_out(message) from None
    except StopAsyncIteration:
        raise _errors.bad_request("no request message arrived", "incomplete") from None


async def _export(
    handler: SignalHandler[Any],
    ctx: ReceiverContext,
    credential: Credential,
    requests: AsyncIterator[bytes],
    context: grpc.aio.ServicerContext[Any, Any],
) -> Any:
    key_id = credential.identity.key_id
    held = 0

    async def load() -> Any:
        nonlocal held
        raw = await _receive(requests, ctx.body_timeout_s)
        _metrics.RECEIVED_BYTES.labels(handler.signal, TRANSPORT).inc(len(raw))
        ctx.bodies.take(key_id, len(raw))
        held = len(raw)
        try:  # decoded here, not by gRPC, so that a bad body is INVALID_ARGUMENT (OTLP)
            return _DECODERS[handler.signal](raw, PROTOBUF)
        except DecodeError as exc:
            raise _errors.bad_request(str(exc)) from None

    try:
        response = await handler.export(credential.identity, ctx, TRANSPORT, load)
    except ReceiverError as error:
        await _abort(handler.signal, error, context)
    finally:
        ctx.bodies.give_back(key_id, held)
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
_METHODS = {f"/{name}/Export": handler for name, handler in _SERVICES.items()}
_Behaviour = Callable[[AsyncIterator[bytes], "grpc.aio.ServicerContext[Any, Any]"], Awaitable[Any]]


def _method(behaviour: _Behaviour) -> grpc.RpcMethodHandler:
    """A handler that reads the message itself (request-streaming on the server side;
    the wire format of a unary call is the same), as raw bytes: see :func:`_export`."""
    return grpc.stream_unary_rpc_method_handler(
        behaviour,
        request_deserializer=None,
        response_serializer=lambda message: message.SerializeToString(),
    )


class _Guard(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Authenticates an OTLP call from its metadata before its message is read.

    A refused call gets a handler that answers without reading the message; an accepted
    one a handler bound to its credential.
    """

    def __init__(self, ctx: ReceiverContext) -> None:
        self._ctx = ctx

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = _METHODS.get(details.method)
        if handler is None:
            return await continuation(details)  # not OTLP: UNIMPLEMENTED
        metadata = {k.lower(): v for k, v in details.invocation_metadata or ()}
        try:
            credential = await self._ctx.auth.identify(_text(metadata.get("authorization")))
            signature = _text(metadata.get("x-aeos-signature"))
            await self._ctx.auth.check_signature(credential, None, signature)
            self._ctx.bodies.check_room(credential.identity.key_id)
        except ReceiverError as error:
            return _refusal(handler.signal, error)
        return _accepted(handler, self._ctx, credential)


def _refusal(signal: str, error: ReceiverError) -> grpc.RpcMethodHandler:
    async def refuse(_: AsyncIterator[bytes], context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        await _abort(signal, error, context)

    return _method(refuse)


def _accepted(
    handler: SignalHandler[Any], ctx: ReceiverContext, credential: Credential
) -> grpc.RpcMethodHandler:
    async def export(
        requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext[Any, Any]
    ) -> Any:
        return await _export(handler, ctx, credential, requests, context)

    return _method(export)


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """Bounds on gRPC connections (``grpc.aio.server`` options). That grpcio honours the
    streams, handshake, idle and keepalive bounds is checked on the wire by
    ``tests/e2e/test_hostile_grpc.py``; the age is a backstop that no test waits for."""

    #: Streams (calls) one connection may have open at once (HTTP/2 SETTINGS).
    max_concurrent_streams: int = 100
    #: A connection that sends nothing (not even the HTTP/2 preface) is closed.
    handshake_timeout_s: float = 10.0
    #: A connection without calls for this long is closed (GOAWAY).
    idle_timeout_s: float = 30.0
    #: A connection is asked to go away after this long (GOAWAY; the client reconnects)...
    max_age_s: float = 300.0
    #: ...and closed this long afterwards, whatever its calls are doing.
    max_age_grace_s: float = 30.0
    #: The server pings a connection with calls in progress but quiet for this long, and
    #: closes it without an answer within ``keepalive_timeout_s`` (a vanished peer).
    keepalive_time_s: float = 60.0
    keepalive_timeout_s: float = 20.0

    def options(self) -> list[tuple[str, int]]:
        """The ``grpc.*`` channel arguments."""
        ms = {
            "grpc.server_handshake_timeout_ms": self.handshake_timeout_s,
            "grpc.max_connection_idle_ms": self.idle_timeout_s,
            "grpc.max_connection_age_ms": self.max_age_s,
            "grpc.max_connection_age_grace_ms": self.max_age_grace_s,
            "grpc.keepalive_time_ms": self.keepalive_time_s,
            "grpc.keepalive_timeout_ms": self.keepalive_timeout_s,
        }
        options = [(name, int(seconds * 1000)) for name, seconds in ms.items()]
        return [("grpc.max_concurrent_streams", self.max_concurrent_streams), *options]


def create_server(
    ctx: ReceiverContext,
    host: str,
    port: int,
    max_request_bytes: int,
    *,
    max_concurrent_rpcs: int | None = None,
    limits: ConnectionLimits | None = None,
) -> tuple[grpc.aio.Server, int]:
    """A gRPC server with the three OTLP services; returns it and the bound port.

    ``SO_REUSEPORT`` lets several receiver processes share the port (the kernel spreads
    connections). Messages over ``max_request_bytes`` (after decompression) are refused
    with RESOURCE_EXHAUSTED by gRPC itself; calls beyond ``max_concurrent_rpcs`` too
    (an outer bound: admission refuses far fewer with UNAVAILABLE and a retry delay).
    """
    server = grpc.aio.server(
        options=[
            ("grpc.so_reuseport", 1),
            ("grpc.max_receive_message_length", max_request_bytes),
            ("grpc.max_send_message_length", 4 * 1024 * 1024),
            *(limits or ConnectionLimits()).options(),
        ],
        interceptors=[_Guard(ctx)],
        compression=None,
        maximum_concurrent_rpcs=max_concurrent_rpcs,
    )
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"cannot listen for OTLP/gRPC on {host}:{port}")
    return server, bound
