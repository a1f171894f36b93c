"""OTLP/HTTP: ``POST /v1/traces``, ``/v1/metrics``, ``/v1/logs`` (protobuf or JSON, gzip).

Answers in the request's content type (OTLP specification, "OTLP/HTTP Response"). Errors
carry a ``google.rpc.Status`` body; retryable ones a ``Retry-After`` header. The size
limit applies to the body as received and again after decompression.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Awaitable, Callable
from typing import Any

from google.protobuf import json_format
from google.rpc import status_pb2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from otlp_receiver import _errors, _metrics
from otlp_receiver._context import ReceiverContext
from otlp_receiver._decode import (
    DecodeError,
    decode_logs,
    decode_metrics,
    decode_traces,
    encode_response,
)
from otlp_receiver._errors import ReceiverError
from otlp_receiver._handlers import LOGS, METRICS, TRACES, SignalHandler
from semconv.signing import SIGNATURE_HEADER

TRANSPORT = "http"
PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_DECODERS: dict[str, Callable[[bytes, str], Any]] = {
    "traces": decode_traces,
    "metrics": decode_metrics,
    "logs": decode_logs,
}


def _media_type(request: Request) -> str:
    raw = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if raw not in (PROTOBUF, JSON):
        raise _errors.unsupported_media(raw or "(none)")
    return raw


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _errors.too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _errors.too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _decompress(body: bytes, encoding: str, limit: int) -> bytes:
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "deflate"):
        raise _errors.bad_request(f"unsupported content-encoding {encoding!r}; use gzip")
    inflater = zlib.decompressobj(zlib.MAX_WBITS | (16 if encoding == "gzip" else 0))
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise _errors.bad_request(f"the body is not valid {encoding}: {exc}") from None
    if len(data) > limit or inflater.unconsumed_tail:
        raise _errors.too_large(limit)
    return data


def _error_response(error: ReceiverError, media_type: str) -> Response:
    status = status_pb2.Status(code=error.grpc_code.value[0], message=error.message)
    if media_type == JSON:
        content = json_format.MessageToJson(status).encode()
    else:
        content = status.SerializeToString()
        media_type = PROTOBUF
    headers = {"retry-after": str(error.retry_after_s)} if error.retry_after_s else None
    return Response(content, status_code=error.http_status, media_type=media_type, headers=headers)


def _endpoint(
    handler: SignalHandler[Any], ctx: ReceiverContext
) -> Callable[[Request], Awaitable[Response]]:
    decode = _DECODERS[handler.signal]

    async def export(request: Request) -> Response:
        media_type = JSON if "json" in request.headers.get("content-type", "") else PROTOBUF
        try:
            media_type = _media_type(request)
            raw = await _read_body(request, ctx.max_request_bytes)
            identity = await ctx.auth.identify(
                request.headers.get("authorization"),
                body=raw,
                signature=request.headers.get(SIGNATURE_HEADER),
            )
            body = _decompress(
                raw, request.headers.get("content-encoding", ""), ctx.max_request_bytes
            )
            try:
                message = decode(body, media_type)
            except DecodeError as exc:
                raise _errors.bad_request(str(exc)) from None
            response = await handler.handle(message, identity, ctx, TRANSPORT)
        except ReceiverError as error:
            _metrics.REQUESTS.labels(handler.signal, TRANSPORT, str(error.http_status)).inc()
            return _error_response(error, media_type)
        _metrics.REQUESTS.labels(handler.signal, TRANSPORT, "200").inc()
        return Response(encode_response(response, media_type), media_type=media_type)

    return export


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
