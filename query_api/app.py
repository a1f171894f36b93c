"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Path, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess
from pydantic import BaseModel, ConfigDict
from sqlalchemy import Engine

from query_api import paging
from query_api.deps import STAFF_ORG_PREFIX
from query_api.errors import ERROR_RESPONSES, ApiError, install_error_handlers
from query_api.oidc import OidcVerifier
from query_api.openapi import install_openapi
from query_api.ratelimit import RateLimiter
from query_api.routes import ROUTERS
from query_api.settings import ApiSettings
from storage import (
    JOB_METRICS,
    DbRole,
    RetryableStorageError,
    Scope,
    recorded_engine,
    scoped_transaction,
)

API_VERSION = "0.1.0"


class Health(BaseModel):
    """Liveness and readiness answer."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"status": "ok", "storage_engine": "timescale"}]}
    )

    status: str
    storage_engine: str | None = None


def _engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def _staff_org_path(
    org_id: Annotated[
        str,
        Path(
            description="The org to read (UUID); ALIAS staff only.",
            examples=["4f1c2a9e-3b7d-4e8a-9c1f-2d5e6f7a8b9c"],
        ),
    ],
) -> None:
    """Declares ``{org_id}`` of staff mounts (the connection dependencies parse it)."""


def _health_routes(app: FastAPI) -> None:
    @app.get("/healthz", response_model=Health, tags=["health"])
    def healthz() -> Health:
        """Liveness: the process answers."""
        return Health(status="ok")

    @app.get(
        "/readyz", response_model=Health, tags=["health"], responses={503: ERROR_RESPONSES[503]}
    )
    def readyz(db: Annotated[Engine, Depends(_engine)]) -> Health:
        """Readiness: the database answers and is migrated."""
        try:
            with scoped_transaction(db, Scope(DbRole.SUPPORT)) as conn:
                kind = recorded_engine(conn)
        except RetryableStorageError:
            raise ApiError(503, "unavailable", "Unavailable", "database unavailable") from None
        if kind is None:
            raise ApiError(503, "unavailable", "Unavailable", "database not migrated")
        return Health(status="ok", storage_engine=kind.value)

    @app.get("/metrics", include_in_schema=False)
    def metrics(request: Request) -> Response:
        """Self-metrics in the Prometheus text format (scheduled jobs).

        Under ``aeos serve`` several API processes share the port; each writes its
        metrics to one directory (``app.state.metrics_dir``) and answers with the sum.
        """
        directory: str | None = getattr(request.app.state, "metrics_dir", None)
        registry = JOB_METRICS
        if directory is not None:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def create_app(
    engine: Engine,
    settings: ApiSettings | None = None,
    *,
    routers: Sequence[tuple[APIRouter, str]] | None = None,
) -> FastAPI:
    """Builds the API on ``engine`` (an ``aeos_app`` login; see ``storage.database``).

    Args:
        engine: the service's engine; every request scopes its own transaction on it.
        settings: API settings (default: from the environment).
        routers: (router, prefix) pairs to mount; default :data:`query_api.routes.ROUTERS`.
    """
    settings = settings or ApiSettings()
    app = FastAPI(
        title="AEOS Observability query API",
        version=API_VERSION,
        openapi_tags=[{"name": "health", "description": "Liveness and readiness."}],
    )
    app.state.engine = engine
    app.state.settings = settings
    app.state.limiter = RateLimiter(settings.rate_per_minute, settings.rate_burst)
    app.state.oidc = OidcVerifier(settings) if settings.oidc_jwks_url else None
    secret = settings.cursor_secret.get_secret_value() if settings.cursor_secret else None
    paging.configure(secret)
    install_error_handlers(app)
    _health_routes(app)
    for router, prefix in ROUTERS if routers is None else routers:
        extra = [Depends(_staff_org_path)] if prefix == STAFF_ORG_PREFIX else []
        app.include_router(router, prefix=prefix, responses=ERROR_RESPONSES, dependencies=extra)
    install_openapi(app)
    return app
