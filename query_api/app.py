"""The FastAPI application factory."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from sqlalchemy import Engine

from storage import (
    JOB_METRICS,
    DatabaseUnavailableError,
    DbRole,
    Scope,
    recorded_engine,
    scoped_transaction,
)


class Health(BaseModel):
    """Liveness and readiness answer."""

    status: str
    storage_engine: str | None = None


def _engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def create_app(engine: Engine) -> FastAPI:
    """Builds the API on ``engine`` (an ``aeos_app`` login; see ``storage.database``)."""
    app = FastAPI(title="AEOS Observability query API", version="0.1.0")
    app.state.engine = engine

    @app.get("/healthz", response_model=Health)
    def healthz() -> Health:
        """Liveness: the process answers."""
        return Health(status="ok")

    @app.get("/readyz", response_model=Health)
    def readyz(db: Annotated[Engine, Depends(_engine)]) -> Health:
        """Readiness: the database answers and is migrated."""
        try:
            with scoped_transaction(db, Scope(DbRole.SUPPORT)) as conn:
                kind = recorded_engine(conn)
        except DatabaseUnavailableError:
            raise HTTPException(status_code=503, detail="database unavailable") from None
        if kind is None:
            raise HTTPException(status_code=503, detail="database not migrated")
        return Health(status="ok", storage_engine=kind.value)

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        """Self-metrics of this process in the Prometheus text format (scheduled jobs)."""
        return Response(generate_latest(JOB_METRICS), media_type=CONTENT_TYPE_LATEST)

    return app
