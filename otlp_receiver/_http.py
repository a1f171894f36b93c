"""OTLP/HTTP: ``POST /v1/traces``, ``/v1/metrics``, ``/v1/logs`` (protobuf or JSON, gzip).

Answers in the request's content type (OTLP specification, "OTLP/HTTP Response"). Errors
carry a ``google.rpc.Status`` body; retryable ones a ``Retry-After`` header. The size
limit applies to the body as received and again after decompression.

Order of work, cheapest refusal first: the content type, the key (before a byte of the
body is read), admission (the process's and the key's concurrency), the body (within
``body_timeout_seconds`` and the process's bound on bodies in flight), its signature,
decompression (every gzip member; a truncated gzip or deflate stream is refused), decoding.
A client that goes away mid-body costs one log line and a count, not a traceback.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format
from google.rpc import status_pb2
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from otlp_receiver import _errors, _metrics
from otlp_receiver._context import ReceiverContext
from otlp_receiver._decode import (
    DecodeError,
    decode_logs,
    decode_metrics,
    encode_response,
)
from otlp_receiver._errors import ReceiverError
from otlp_receiver._handlers import LOGS, METRICS, TRACES, SignalHandler
from otlp_receiver._lite import decode_traces_fast
from semconv.signing import SIGNATURE_HEADER

_log = logging.getLogger(__name__)
TRANSPORT = "http"
PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_DECODERS: dict[str, Callable[[bytes, str], Any]] = {
    "traces": decode_traces_fast,
    "metrics": decode_metrics,
    "logs": decode_logs,
}


def _media_type(request: Request) -> str:
    raw = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if raw not in (PROTOBUF, JSON):
        raise _errors.unsupported_media(raw or "(none)")
    return raw


@dataclass(slots=True)
class _Reserved:
    """Bytes of the process's body budget this request holds, and for which key."""

    key_id: uuid.UUID
    n: int = 0
    complete: bool = False  # the whole body was read
    # Refused on its declared length alone: the connection stays open so that the client,
    # still sending, reads the 413 (closing with its bytes unread makes the kernel reset
    # the connection, and the answer is lost); the server discards the rest as it comes.
    refused_on_length: bool = False


async def _read_body(request: Request, ctx: ReceiverContext, held: _Reserved) -> bytes:
    limit = ctx.max_request_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit():
        if int(declared) > limit:
            held.refused_on_length = True
            raise _errors.too_large(limit)
        ctx.bodies.take(held.key_id, int(declared))  # all at once, before reading any
        held.n += int(declared)
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(ctx.body_timeout_s):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise _errors.too_large(limit)
                if size > held.n:
                    ctx.bodies.take(held.key_id, size - held.n)
                    held.n = size
                chunks.append(chunk)
    except TimeoutError:
        raise _errors.timed_out(
            f"the request body was not received within {ctx.body_timeout_s:g}s"
        ) from None
    held.complete = True
    return b"".join(chunks)


def _decompress(body: bytes, encoding: str, limit: int) -> bytes:
    """The body decoded; every gzip member, refusing truncated or corrupt streams."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "deflate"):
        raise _errors.bad_request(f"unsupported content-encoding {encoding!r}; use gzip")
    wbits = zlib.MAX_WBITS | (16 if encoding == "gzip" else 0)
    out: list[bytes] = []
    size, data = 0, body
    while True:  # RFC 1952 2.2: a gzip file is a series of members
        inflater = zlib.decompressobj(wbits)
        try:
            chunk = inflater.decompress(data, limit + 1 - size)
        except zlib.error as exc:
            message = f"the body is not valid {encoding}: {exc}"
            raise _errors.bad_request(message, "bad_encoding") from None
        size += len(chunk)
        out.append(chunk)
        if size > limit or inflater.unconsumed_tail:
            raise _errors.too_large(limit)
        if not inflater.eof:
            raise _errors.bad_request(f"the {encoding} body is truncated", "bad_encoding")
        data = inflater.unused_data
        if not data:
            return b"".join(out)
        if encoding == "deflate":
            raise _errors.bad_request("data after the end of the deflate body", "bad_encoding")


def _error_response(error: ReceiverError, media_type: str, close: bool) -> Response:
    """``close``: the body was not read; the connection is closed rather than left to
    receive (and discard) the rest of it."""
    status = status_pb2.Status(code=error.grpc_code.value[0], message=error.message)
    if media_type == JSON:
        content = json_format.MessageToJson(status).encode()
    else:
        content = status.SerializeToString()
        media_type = PROTOBUF
    headers = {"retry-after": str(error.retry_after_s)} if error.retry_after_s else {}
    if close:
        headers["connection"] = "close"
    return Response(content, status_code=error.http_status, media_type=media_type, headers=headers)


def _endpoint(
    handler: SignalHandler[Any], ctx: ReceiverContext
) -> Callable[[Request], Awaitable[Response]]:
    decode = _DECODERS[handler.signal]

    async def export(request: Request) -> Response:
        media_type = JSON if "json" in request.headers.get("content-type", "") else PROTOBUF
        held: _Reserved | None = None
        try:
            media_type = _media_type(request)
            credential = await ctx.auth.identify(request.headers.get("authorization"))
            held = reserved = _Reserved(credential.identity.key_id)

            async def load() -> Any:
                raw = await _read_body(request, ctx, reserved)
                _metrics.RECEIVED_BYTES.labels(handler.signal, TRANSPORT).inc(len(raw))
                signature = request.headers.get(SIGNATURE_HEADER)
                await ctx.auth.check_signature(credential, raw, signature)
                encoding = request.headers.get("content-encoding", "")
                body = _decompress(raw, encoding, ctx.max_request_bytes)
                try:
                    return decode(body, media_type)
                except DecodeError as exc:
                    raise _errors.bad_request(str(exc)) from None

            response = await handler.export(credential.identity, ctx, TRANSPORT, load)
        except ReceiverError as error:
            _metrics.REQUESTS.labels(handler.signal, TRANSPORT, str(error.http_status)).inc()
            _metrics.REFUSALS.labels(handler.signal, TRANSPORT, error.reason).inc()
            unread = held is None or not (held.complete or held.refused_on_length)
            return _error_response(error, media_type, unread)
        except ClientDisconnect:
            _disconnected(handler.signal, request)
            return Response(status_code=400)  # nobody reads it
        finally:
            if held is not None:
                ctx.bodies.give_back(held.key_id, held.n)
        _metrics.REQUESTS.labels(handler.signal, TRANSPORT, "200").inc()
        return Response(encode_response(response, media_type), media_type=media_type)

    return export


def _disconnected(signal: str, request: Request) -> None:
    client = f"{request.client.host}:{request.client.port}" if request.client else "a client"
    _log.info("%s went away before sending its whole %s request", client, signal)
    _metrics.REFUSALS.labels(signal, TRANSPORT, "client_disconnect").inc()


async def _prometheus(_: Request) -> Response:
    content, content_type = _metrics.exposition()
    return Response(content, media_type=content_type)


def _health(ctx: ReceiverContext) -> Callable[[Request], Awaitable[Response]]:
    async def health(_: Request) -> Response:
        """200 while this process's writers make progress, else 503 and why."""
        state = ctx.writer.health()
        if state.ready:
            return Response(b'{"status":"ok"}', media_type=JSON)
        body = json.dumps({"status": "unavailable", "reason": state.reason})
        return Response(body.encode(), status_code=503, media_type=JSON)

    return health


def create_app(ctx: ReceiverContext) -> Starlette:
    """The OTLP/HTTP application, plus ``/metrics`` and ``/healthz``."""
    return Starlette(
        routes=[
            Route("/v1/traces", _endpoint(TRACES, ctx), methods=["POST"]),
            Route("/v1/metrics", _endpoint(METRICS, ctx), methods=["POST"]),
            Route("/v1/logs", _endpoint(LOGS, ctx), methods=["POST"]),
            Route("/metrics", _prometheus, methods=["GET"]),
            Route("/healthz", _health(ctx), methods=["GET"]),
        ]
    )
