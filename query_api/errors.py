"""Errors as ``application/problem+json`` (RFC 9457), mapped in one place.

Every error the API answers is a problem document whose ``type`` is a stable URI per kind
of error (``https://aeos.dev/problems/<kind>``), so clients can branch on it rather than
on the wording of ``detail``. Storage errors are translated here once, never in routes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from storage import (
    AccessDeniedError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    QueryTooBroadError,
    RefusedDataError,
    RetryableStorageError,
    StorageError,
)

_log = logging.getLogger(__name__)

PROBLEM_BASE = "https://aeos.dev/problems/"
PROBLEM_MEDIA_TYPE = "application/problem+json"
RETRY_AFTER_S = 1  # a retryable storage error: the database is back or the conflict gone


class ParamError(BaseModel):
    """One rejected parameter and why."""

    param: str = Field(description="The parameter (query, path, header or body field).")
    message: str


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    type: str = Field(examples=[PROBLEM_BASE + "not-found"])
    title: str = Field(examples=["Not found"])
    status: int = Field(examples=[404])
    detail: str = Field(examples=["no task run 0c6f… in this org"])
    instance: str = Field(examples=["/v1/task-runs/0c6f…"], description="The request path.")
    errors: list[ParamError] | None = Field(
        default=None, description="For kind `validation`: each rejected parameter."
    )


class ApiError(Exception):
    """Raised anywhere in a request: answered as a problem document of ``kind``."""

    def __init__(
        self,
        status: int,
        kind: str,
        title: str,
        detail: str,
        headers: Mapping[str, str] | None = None,
        errors: Sequence[ParamError] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.kind = kind
        self.title = title
        self.detail = detail
        self.headers = dict(headers or {})
        self.errors = list(errors) if errors is not None else None


def validation_error(param: str, message: str) -> ApiError:
    """A 422 ``validation`` problem naming one parameter (for checks done in code)."""
    return ApiError(
        422,
        "validation",
        "Invalid parameter",
        f"{param}: {message}",
        errors=[ParamError(param=param, message=message)],
    )


def problem_response(request: Request, error: ApiError) -> JSONResponse:
    """The HTTP response for ``error``."""
    body = Problem(
        type=PROBLEM_BASE + error.kind,
        title=error.title,
        status=error.status,
        detail=error.detail,
        instance=request.url.path,
        errors=error.errors,
    )
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=error.status,
        headers=error.headers,
        media_type=PROBLEM_MEDIA_TYPE,
    )


def from_storage(exc: StorageError) -> ApiError:
    """The API error for a storage error (the one mapping)."""
    detail = str(exc)
    if isinstance(exc, NotFoundError):
        return ApiError(404, "not-found", "Not found", detail)
    if isinstance(exc, AccessDeniedError):
        return ApiError(403, "forbidden", "Forbidden", detail)
    if isinstance(exc, QueryTooBroadError):
        return ApiError(400, "query-too-broad", "Query too broad", detail)
    if isinstance(exc, InvalidInputError | RefusedDataError):
        # RefusedDataError: a value the caller gave that the database cannot take (NUL in
        # text, out of range): the request is at fault, not the service.
        return ApiError(400, "invalid-input", "Invalid input", detail)
    if isinstance(exc, ConflictError):
        return ApiError(409, "conflict", "Conflict", detail)
    if isinstance(exc, RetryableStorageError):
        _log.warning("retryable storage error: %s", detail)
        return ApiError(
            503,
            "unavailable",
            "Temporarily unavailable",
            "the database is unavailable or busy; retry shortly",
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )
    _log.error("unexpected storage error: %s", detail)
    return ApiError(500, "internal", "Internal error", "the server failed to answer")


def _param_name(loc: Sequence[Any]) -> str:
    # loc is ("query", "limit") or ("body", "name", 0): drop where it came from.
    parts = [str(p) for p in loc[1:]] if len(loc) > 1 else [str(p) for p in loc]
    return ".".join(parts) or "request"


def _from_validation(exc: RequestValidationError) -> ApiError:
    errors = [
        ParamError(param=_param_name(err.get("loc", ())), message=str(err.get("msg", "invalid")))
        for err in exc.errors()
    ]
    detail = "; ".join(f"{e.param}: {e.message}" for e in errors) or "invalid request"
    return ApiError(422, "validation", "Invalid parameter", detail, errors=errors)


_HTTP_KINDS = {
    400: ("bad-request", "Bad request"),
    401: ("unauthorized", "Unauthorized"),
    403: ("forbidden", "Forbidden"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    406: ("not-acceptable", "Not acceptable"),
    415: ("unsupported-media-type", "Unsupported media type"),
}


def _from_http(exc: StarletteHTTPException) -> ApiError:
    kind, title = _HTTP_KINDS.get(exc.status_code, ("http-error", "HTTP error"))
    detail = exc.detail if isinstance(exc.detail, str) else title
    return ApiError(exc.status_code, kind, title, detail, headers=exc.headers)


def install_error_handlers(app: FastAPI) -> None:
    """Answers every error of ``app`` as a problem document."""

    async def on_api_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return problem_response(request, exc)

    async def on_storage_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StorageError)
        return problem_response(request, from_storage(exc))

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return problem_response(request, _from_validation(exc))

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        return problem_response(request, _from_http(exc))

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        _log.exception("unhandled error on %s %s", request.method, request.url.path)
        error = ApiError(500, "internal", "Internal error", "the server failed to answer")
        return problem_response(request, error)

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(StorageError, on_storage_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {
        "description": "The request cannot be answered as asked (e.g. it would scan too much).",
        "model": Problem,
    },
    401: {
        "description": "Missing, malformed, unknown, revoked or expired credential.",
        "model": Problem,
    },
    403: {"description": "The credential may not do this.", "model": Problem},
    404: {"description": "No such object (in what the credential may see).", "model": Problem},
    422: {"description": "A parameter is invalid; `errors` names each one.", "model": Problem},
    429: {"description": "Rate limit reached; see Retry-After.", "model": Problem},
    503: {"description": "Database unavailable or busy; see Retry-After.", "model": Problem},
}
"""Responses every authenticated route documents (``include_router(responses=...)``)."""
