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
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TextIO

from sqlalchemy import Engine

from aeos._api_workers import ApiWorkers
from aeos._banner import DemoKeys, demo_keys, demo_lines
from aeos._workers import ReceiverWorkers
from otlp_receiver.settings import ReceiverSettings
from query_api.settings import ApiSettings
from storage.database import Database
from storage.jobs.partitions import maintain_partitions
from storage.jobs.scheduler import JobRegistry, Scheduler


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
    api = _api_workers(db, options) if Part.API in options.parts else None
    try:
        if Part.RECEIVER in options.parts:
            workers.start()  # from the main thread: children get a parent-death signal
        if api is not None:
            api.start()
        await _supervise(engine, options, announce, workers, api)
    finally:
        await asyncio.to_thread(before_stop)  # clients first (demo traffic), then receivers
        if api is not None:
            await asyncio.to_thread(api.stop)
        await asyncio.to_thread(workers.stop)


def _api_workers(db: Database, options: ServeOptions) -> ApiWorkers:
    secret = options.api.cursor_secret
    # One cursor key for every worker (a cursor from one must work on the others).
    cursor_secret = secret.get_secret_value() if secret else secrets.token_urlsafe(32)
    admin_url = db.admin_url.render_as_string(hide_password=False)
    return ApiWorkers(options.api, admin_url, db.app_password, cursor_secret)


async def _supervise(
    engine: Engine,
    options: ServeOptions,
    announce: Callable[[str], None],
    workers: ReceiverWorkers,
    api: ApiWorkers | None,
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # The first API worker runs the periodic jobs (their metrics are served there);
    # without the API this process does, with every other process's schedulers.
    scheduler = Scheduler(engine, options.jobs) if api is None else None
    maintenance = asyncio.create_task(scheduler.run()) if scheduler is not None else None
    announce("ready")
    while not stop.is_set():
        workers.supervise()
        if api is not None:
            api.supervise()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=1.0)
    if scheduler is not None and maintenance is not None:
        scheduler.stop()  # waits (bounded) for a running job
        await asyncio.gather(maintenance, return_exceptions=True)


def print_banner(
    out: TextIO,
    db: Database,
    options: ServeOptions,
    demo: DemoKeys | None,
    extra: list[str] | None = None,
    api_port: int | None = None,
) -> None:
    """Prints the endpoints (and the demo keys with calls to try) for a person to copy."""
    lines = ["AEOS Observability is running."]
    if Part.API in options.parts:
        base = f"http://{options.api.host}:{api_port or options.api.port}"
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
    if demo is not None:
        base = f"http://{options.api.host}:{api_port or options.api.port}"
        lines.extend(demo_lines(base, demo))
    lines.extend(extra or [])
    lines.append("Press Ctrl-C to stop.")
    print("\n".join(lines), file=out, flush=True)


DEMO_STOP_TIMEOUT_S = 5
DEMO_ARGS = ("--orgs", "3", "--agents", "5", "--duration", "10m", "--backfill", "6h", "--quiet")


def _terminate_with_parent(parent: int) -> Callable[[], None]:
    # SIGTERM, not the SIGINT of a graceful stop: the receiver died with the service, so
    # flushing to it would only retry (30 s per export, 120 s per flush) for nothing.
    def in_child() -> None:  # pragma: no cover - runs in the forked child
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # it died before the prctl: no signal will come
            os._exit(1)

    return in_child


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
                preexec_fn=_terminate_with_parent(os.getpid()),
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
    demo = demo_keys(db) if options.demo else None
    with_demo = options.demo and Part.RECEIVER in options.parts
    log_dir = db.embedded.data_dir if db.embedded is not None else Path.cwd()
    traffic = _DemoTraffic(options, log_dir)

    def ready(_: str) -> None:
        extra = [traffic.start()] if with_demo else []
        print_banner(sys.stdout, db, options, demo, extra)

    try:
        asyncio.run(serve(db, options, ready, traffic.stop))
    finally:
        traffic.stop()
