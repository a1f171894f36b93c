"""The ``api`` fixture: the query API on a real uvicorn server, on the per-test database.

``api.client`` is an ``httpx.Client`` against ``http://127.0.0.1:<port>``; ``api.make_org``
creates an org with ingest, admin and member keys; ``api.staff_key`` an ALIAS staff key;
``api.headers(key)`` the ``Authorization`` header for a key or a token.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import APIRouter, FastAPI
from sqlalchemy import Connection

from query_api.app import create_app
from query_api.settings import ApiSettings
from storage import DbRole, Scope, admin, scoped_transaction
from storage.database import Database
from storage.errors import NotFoundError

START_TIMEOUT_S = 20
STAFF_ORG = "alias"  # the home org of staff keys (keys always belong to an org)


@dataclass(frozen=True)
class OrgKeys:
    """An org made for a test, with one key of each org role."""

    org_id: uuid.UUID
    name: str
    ingest_key: str
    admin_key: str
    member_key: str


class _ThreadServer(uvicorn.Server):
    """uvicorn in a background thread (no signal handlers outside the main thread)."""

    def install_signal_handlers(self) -> None:  # uvicorn < 0.29 spelling; harmless later
        return None


@dataclass
class RunningApi:
    """One API server for a test."""

    app: FastAPI
    db: Database
    base_url: str
    client: httpx.Client
    _server: uvicorn.Server
    _thread: threading.Thread
    _staff: dict[str, str] = field(default_factory=dict)

    def make_org(self, name: str | None = None, plan: str = "free") -> OrgKeys:
        """A new org with an ingest, an admin and a member key."""
        org_name = name or f"org-{uuid.uuid4().hex[:8]}"
        with self._staff_transaction() as conn:
            org = admin.create_org(conn, org_name, plan)
            member = admin.create_key(conn, org_name, "member", "test member")
        return OrgKeys(
            org.org_id,
            org_name,
            org.ingest_key.plaintext,
            org.admin_key.plaintext,
            member.plaintext,
        )

    def staff_key(self, role: str = "alias_admin") -> str:
        """A staff key (``alias_admin`` or ``alias_support``), one per role per test."""
        if role not in self._staff:
            with self._staff_transaction() as conn:
                try:
                    admin.org_id_by_name(conn, STAFF_ORG)
                except NotFoundError:
                    admin.create_org(conn, STAFF_ORG, "enterprise")
                self._staff[role] = admin.create_key(conn, STAFF_ORG, role, "test").plaintext
        return self._staff[role]

    def _staff_transaction(self) -> contextlib.AbstractContextManager[Connection]:
        # What the CLI does: administration as the staff role.
        return scoped_transaction(self.db.admin_engine(), Scope(DbRole.STAFF))

    @staticmethod
    def headers(key: str, **extra: str) -> dict[str, str]:
        """``Authorization: Bearer <key>`` plus any extra headers."""
        return {"Authorization": f"Bearer {key}", **extra}

    def get(self, path: str, key: str, **kwargs: Any) -> httpx.Response:
        """``GET path`` with ``key``."""
        headers = {**self.headers(key), **kwargs.pop("headers", {})}
        return self.client.get(path, headers=headers, **kwargs)

    def stop(self) -> None:
        """Stops the server and closes the client."""
        self.client.close()
        self._server.should_exit = True
        self._thread.join(timeout=10)


def start_api(
    db: Database,
    settings: ApiSettings | None = None,
    routers: Sequence[tuple[APIRouter, str]] | None = None,
) -> RunningApi:
    """Starts the API for ``db`` on a free port of 127.0.0.1 and waits until it answers."""
    app = create_app(db.app_engine(pool_size=4), settings or ApiSettings(), routers=routers)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="off")
    server = _ThreadServer(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise AssertionError("the API server did not start")
        time.sleep(0.02)
    base = f"http://127.0.0.1:{port}"
    return RunningApi(app, db, base, httpx.Client(base_url=base, timeout=30), server, thread)


@pytest.fixture
def api(database: Database) -> Iterator[RunningApi]:
    """The query API on the per-test database (each engine the test server supports)."""
    running = start_api(database)
    try:
        yield running
    finally:
        running.stop()
