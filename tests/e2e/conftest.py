"""A running ``aeos serve`` (receiver + API) on a fresh database, shared by a module."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

from storage import DbRole, Scope, admin, scoped_transaction
from storage.database import Database
from storage.embedded import free_port
from storage.migrate import StorageEngine
from tests.conftest import (
    CREATED_AT,
    ENGINES,
    TEST_APP_PASSWORD,
    BackgroundJobs,
    PgServer,
    _template,
    create_database,
    drop_database,
    track_jobs,
)

START_TIMEOUT_S = 60


@dataclass
class RunningService:
    """An ``aeos serve`` process and how to reach it."""

    proc: subprocess.Popen[str]
    db: Database
    grpc_port: int
    http_port: int
    api_port: int
    env: dict[str, str]
    banner: str

    @property
    def grpc_endpoint(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def http_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def new_org(self, *, require_signature: bool = False) -> tuple[uuid.UUID, str]:
        """A new org and its ingest key."""
        with scoped_transaction(self.db.admin_engine(), Scope(DbRole.STAFF)) as conn:
            org = admin.create_org(conn, f"org-{uuid.uuid4().hex[:8]}", "pro")
            if require_signature:
                conn.execute(
                    text("UPDATE api_keys SET require_signature = true WHERE id = :k"),
                    {"k": org.ingest_key.key_id},
                )
        return org.org_id, org.ingest_key.plaintext

    def query(self, sql: str, **params: Any) -> list[Any]:
        engine = create_engine(self.db.admin_url, poolclass=NullPool)
        try:
            with engine.connect() as conn:
                return list(conn.execute(text(sql), params).all())
        finally:
            engine.dispose()

    def scalar(self, sql: str, **params: Any) -> Any:
        rows = self.query(sql, **params)
        return rows[0][0] if rows else None

    def wait_for(self, sql: str, expected: Any, timeout: float = 15, **params: Any) -> Any:
        """Polls ``sql`` until it returns ``expected`` (the SDK exports in the background)."""
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            value = self.scalar(sql, **params)
            if value == expected:
                return value
            time.sleep(0.1)
        return value


def start_service(
    admin_url: URL, tmp: Path, args: Sequence[str] = (), **extra_env: str
) -> tuple[subprocess.Popen[str], dict[str, str], str, tuple[int, int, int]]:
    ports = (free_port(), free_port(), free_port())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AEOS_", "OTEL_"))}
    env.update(
        AEOS_DATABASE_URL=admin_url.render_as_string(hide_password=False),
        AEOS_APP_DB_PASSWORD=TEST_APP_PASSWORD,
        AEOS_DATA_DIR=str(tmp),
        AEOS_RECEIVER_GRPC_PORT=str(ports[0]),
        AEOS_RECEIVER_HTTP_PORT=str(ports[1]),
        AEOS_API_PORT=str(ports[2]),
        AEOS_RECEIVER_AUTH_CACHE_SECONDS="0",
        AEOS_RECEIVER_WORKERS="2",
        AEOS_API_WORKERS="2",
    )
    env.update(extra_env)
    proc = subprocess.Popen(
        [sys.executable, "-m", "aeos", "serve", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("Press Ctrl-C"):
            return proc, env, "".join(lines), ports
    proc.kill()
    _, err = proc.communicate()
    raise AssertionError(f"aeos serve did not start: {''.join(lines)}\n{err}")


def stop_service(proc: subprocess.Popen[str]) -> str:
    if proc.poll() is None:
        proc.terminate()
    try:
        _, err = proc.communicate(timeout=40)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return err


@pytest.fixture(scope="module", params=ENGINES)
def service(
    request: pytest.FixtureRequest,
    pg_server: PgServer,
    templates: dict[StorageEngine, str],
    tmp_path_factory: pytest.TempPathFactory,
    job_state: str,
) -> Iterator[RunningService]:
    """``aeos serve`` on each engine the test server supports (on TimescaleDB in each job
    state: ``tests.conftest.settle(service.db)`` marks when the jobs may have run)."""
    template = _template(pg_server, templates, request.param)
    name = f"aeos_e2e_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_server.conninfo(), autocommit=True) as conn:
        row = conn.execute("SELECT clock_timestamp()").fetchone()
        assert row is not None
        CREATED_AT[name] = row[0]
    create_database(pg_server, name, template)
    jobs = BackgroundJobs(pg_server, job_state)
    url = pg_server.admin_url.set(database=name)
    proc, env, banner, (grpc_port, http_port, api_port) = start_service(
        url,
        Path(tmp_path_factory.mktemp("serve")),
        AEOS_RECEIVER_MAX_REQUEST_BYTES=str(4 * 1024 * 1024),
        AEOS_RECEIVER_HEALTH_REPORT_SECONDS="1",
    )
    db = Database(url, TEST_APP_PASSWORD)
    try:
        with track_jobs(db, jobs):
            yield RunningService(proc, db, grpc_port, http_port, api_port, env, banner)
    finally:
        stop_service(proc)
        db.close()
        drop_database(pg_server, name)


def parse_json(text_: str) -> Any:
    return json.loads(text_)
