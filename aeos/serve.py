"""``aeos serve``: the composition root that runs the service's parts in one process.

Everything runs on one asyncio loop; SIGINT (Ctrl-C) and SIGTERM stop every part
gracefully, then the database handle closes, which stops the embedded PostgreSQL if this
process started it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TextIO

import uvicorn
from sqlalchemy import Engine

from aeos._workers import ReceiverWorkers
from otlp_receiver.server import QuietSignalsServer
from otlp_receiver.settings import ReceiverSettings
from query_api import create_app
from query_api.settings import ApiSettings
from storage import DbRole, Scope, admin, scoped_transaction
from storage.database import Database
from storage.errors import NotFoundError
from storage.jobs.partitions import maintain_partitions
from storage.jobs.scheduler import JobRegistry, Scheduler

DEMO_ORG = "demo"


class Part(StrEnum):
    """Parts of the service ``--only`` can select."""

    API = "api"
    RECEIVER = "receiver"


@dataclass(frozen=True, slots=True)
class ServeOptions:
    """What ``aeos serve`` runs."""

    parts: frozenset[Part]
    api: ApiSettings
    receiver: ReceiverSettings
    demo: bool = False
    jobs: JobRegistry = field(default_factory=JobRegistry)  # periodic jobs (aeos.jobs)


def demo_ingest_key(db: Database) -> str:
    """Creates the demo org if missing and a fresh ingest key for it (shown once)."""
    with scoped_transaction(db.admin_engine(), Scope(DbRole.STAFF)) as conn:
        try:
            admin.org_id_by_name(conn, DEMO_ORG)
        except NotFoundError:
            return admin.create_org(conn, DEMO_ORG, "pro").ingest_key.plaintext
        return admin.create_key(conn, DEMO_ORG, "ingest", "make run demo").plaintext


async def serve(
    db: Database,
    options: ServeOptions,
    announce: Callable[[str], None],
    before_stop: Callable[[], None] = lambda: None,
) -> None:
    """Runs the selected parts until SIGINT or SIGTERM; ``before_stop`` runs first then."""
    engine = db.app_engine()
    # Partitions for today at once (the scheduler's first turn may find it ran lately).
    maintain_partitions(engine, datetime.now(UTC))
    workers = ReceiverWorkers(options.receiver, db.app_conninfo())
    if Part.RECEIVER in options.parts:
        workers.start()  # from the main thread: children get a parent-death signal
    try:
        await _serve_api(engine, options, announce, workers)
    finally:
        await asyncio.to_thread(before_stop)  # clients first (demo traffic), then receivers
        await asyncio.to_thread(workers.stop)


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket for the query API, or a clear error naming the setting."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise RuntimeError(
            f"the query API could not listen on {host}:{port} ({exc.strerror}); set AEOS_API_PORT"
        ) from None
    sock.listen(128)
    sock.setblocking(False)
    return sock


async def _serve_api(
    engine: Engine, options: ServeOptions, announce: Callable[[str], None], workers: ReceiverWorkers
) -> None:
    servers: list[uvicorn.Server] = []
    sockets: list[socket.socket] = []
    if Part.API in options.parts:
        sockets.append(_listen(options.api.host, options.api.port))
        config = uvicorn.Config(create_app(engine), log_level="warning", lifespan="off")
        servers.append(QuietSignalsServer(config))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    tasks = [
        asyncio.create_task(s.serve(sockets=[k])) for s, k in zip(servers, sockets, strict=True)
    ]
    scheduler = Scheduler(engine, options.jobs)  # with every other process's schedulers
    maintenance = asyncio.create_task(scheduler.run())
    while servers and not all(s.started for s in servers):
        if any(t.done() for t in tasks):
            break
        await asyncio.sleep(0.05)
    for task in tasks:
        if task.done() and task.exception() is not None:
            raise RuntimeError(f"a part failed to start: {task.exception()}")
    if any(t.done() for t in tasks):
        raise RuntimeError("the query API failed to start")
    announce("ready")
    while not stop.is_set():
        workers.supervise()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=1.0)
    for server in servers:
        server.should_exit = True
    scheduler.stop()  # waits (bounded) for a running job
    await asyncio.gather(*tasks, maintenance, return_exceptions=True)


def print_banner(
    out: TextIO,
    db: Database,
    options: ServeOptions,
    demo_key: str | None,
    extra: list[str] | None = None,
) -> None:
    """Prints the endpoints (and the demo ingest key) for a person to copy."""
    lines = ["AEOS Observability is running."]
    if Part.API in options.parts:
        base = f"http://{options.api.host}:{options.api.port}"
        lines.append(
            f"  Query API      {base}   (GET /healthz, /readyz, /metrics; docs at {base}/docs)"
        )
    if Part.RECEIVER in options.parts:
        r = options.receiver
        lines.append(f"  OTLP/gRPC      {r.host}:{r.grpc_port}   ({r.workers} receiver processes)")
        lines.append(
            f"  OTLP/HTTP      http://{r.host}:{r.http_port}   (/v1/traces, /v1/metrics, "
            "/v1/logs; /metrics for Prometheus)"
        )
    where = "embedded" if db.embedded is not None else "external"
    shown = db.admin_url.set(drivername="postgresql").render_as_string(hide_password=True)
    lines.append(f"  PostgreSQL     {shown}   ({where}, {db.engine_kind} engine)")
    if db.embedded is not None:
        lines.append(
            f"                 data in {db.embedded.data_dir}; superuser password in "
            f"{db.embedded.data_dir / 'superuser.password'}"
        )
    if demo_key is not None:
        lines.append(f"  Demo org       '{DEMO_ORG}', ingest key (shown once): {demo_key}")
    lines.extend(extra or [])
    lines.append("Press Ctrl-C to stop.")
    print("\n".join(lines), file=out, flush=True)


DEMO_STOP_TIMEOUT_S = 5
DEMO_ARGS = ("--orgs", "3", "--agents", "5", "--duration", "10m", "--backfill", "6h", "--quiet")


def _interrupt_with_parent() -> None:  # pragma: no cover - runs in the forked child
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGINT)  # PR_SET_PDEATHSIG


class _DemoTraffic:
    """``aeos demo`` in a child process, so a new user sees data at once (``--demo``)."""

    def __init__(self, options: ServeOptions, log_dir: Path) -> None:
        self._options = options
        self._log = log_dir / "demo.log"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> str:
        r = self._options.receiver
        self._log.parent.mkdir(parents=True, exist_ok=True)
        with self._log.open("ab") as log:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "aeos", "demo", "--endpoint", f"{r.host}:{r.grpc_port}",
                 *DEMO_ARGS],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                preexec_fn=_interrupt_with_parent,
            )  # fmt: skip
        return (
            "  Demo traffic   orgs demo, demo-2, demo-3: 6 h of history, then 10 min live "
            f"(log {self._log})"
        )

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGINT)  # it flushes what it produced, then exits
            try:
                self._proc.wait(DEMO_STOP_TIMEOUT_S)  # synthetic data: no need to wait long
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()


def run(db: Database, options: ServeOptions) -> None:
    """Blocks serving until a signal arrives."""
    # One line per job run (a few an hour) is worth seeing by default.
    logging.getLogger("storage.jobs.scheduler").setLevel(logging.INFO)
    demo_key = demo_ingest_key(db) if options.demo else None
    with_demo = options.demo and Part.RECEIVER in options.parts
    log_dir = db.embedded.data_dir if db.embedded is not None else Path.cwd()
    traffic = _DemoTraffic(options, log_dir)

    def ready(_: str) -> None:
        extra = [traffic.start()] if with_demo else []
        print_banner(sys.stdout, db, options, demo_key, extra)

    try:
        asyncio.run(serve(db, options, ready, traffic.stop))
    finally:
        traffic.stop()
