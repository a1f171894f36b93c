"""Query API worker processes sharing the API port (``SO_REUSEPORT``), like the receivers.

Python runs one core per process, so ``aeos serve`` starts ``AEOS_API_WORKERS`` processes
(one per core by default), each a uvicorn server on its own socket bound to the same
port; the kernel spreads connections over them. The first worker also runs the periodic
jobs (``storage.jobs.scheduler``) so that their metrics live where ``/metrics`` is answered:
the workers write Prometheus metrics to one multiprocess directory and every worker's
``/metrics`` sums them, whichever worker a scrape reaches.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from typing import Any

import uvicorn
from pydantic import SecretStr

from aeos._workers import stop_processes
from query_api.settings import ApiSettings

_log = logging.getLogger(__name__)
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
EXIT_CANNOT_LISTEN = 3
_PR_SET_PDEATHSIG = 1
_MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


@dataclass(frozen=True, slots=True)
class WorkerArgs:
    """What an API worker needs (picklable: workers are spawned)."""

    settings_json: str
    cursor_secret: str
    admin_url: str
    app_password: str | None
    port: int
    metrics_dir: str
    with_scheduler: bool
    log_level: int


class _Server(uvicorn.Server):
    """uvicorn without its own signal handlers (the worker stops it itself)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _die_with_parent() -> None:
    parent = os.getppid()
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # it died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def reuse_port_socket(host: str, port: int, *, listen: bool = True) -> socket.socket:
    """A socket bound to ``host:port`` with ``SO_REUSEPORT`` (listening unless told not to)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    if listen:
        sock.listen(1024)
        sock.setblocking(False)
    return sock


def api_worker_main(args: WorkerArgs, ready: Any) -> None:  # pragma: no cover - child
    """Entry point of an API worker process (``multiprocessing``, spawn)."""
    logging.basicConfig(level=args.log_level, format="%(levelname)s api: %(message)s")
    logging.getLogger("storage.jobs.scheduler").setLevel(logging.INFO)
    _die_with_parent()
    settings = ApiSettings.model_validate_json(args.settings_json).model_copy(
        update={"cursor_secret": SecretStr(args.cursor_secret)}
    )
    try:
        sock = reuse_port_socket(settings.host, args.port)
    except OSError as exc:
        print(f"api: cannot listen on {settings.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        sys.exit(EXIT_CANNOT_LISTEN)
    asyncio.run(_serve(args, settings, sock, ready))


async def _serve(args: WorkerArgs, settings: ApiSettings, sock: socket.socket, ready: Any) -> None:
    from sqlalchemy.engine import make_url

    from aeos.jobs import service_jobs
    from query_api import create_app
    from storage.database import Database
    from storage.jobs.scheduler import Scheduler
    from storage.settings import StorageSettings

    db = Database(make_url(args.admin_url), args.app_password)
    engine = db.app_engine()
    app = create_app(engine, settings)
    app.state.metrics_dir = args.metrics_dir
    server = _Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: setattr(server, "should_exit", True))
    scheduler = Scheduler(engine, service_jobs(StorageSettings())) if args.with_scheduler else None
    jobs = asyncio.create_task(scheduler.run()) if scheduler else None
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started and not serving.done():
        await asyncio.sleep(0.02)
    if server.started:
        ready.set()
    await serving
    if scheduler is not None and jobs is not None:
        scheduler.stop()  # waits (bounded) for a running job
        await jobs
    db.close()


class ApiWorkers:
    """``settings.workers`` API processes sharing the API port."""

    def __init__(
        self, settings: ApiSettings, admin_url: str, app_password: str | None, cursor_secret: str
    ) -> None:
        self._settings = settings
        self._admin_url = admin_url
        self._app_password = app_password
        self._cursor_secret = cursor_secret
        self._ctx = multiprocessing.get_context("spawn")
        self._procs: list[BaseProcess] = []
        self._metrics_dir: tempfile.TemporaryDirectory[str] | None = None
        self._port = settings.port
        self._stopping = False

    @property
    def port(self) -> int:
        """The port the workers listen on (the one the kernel chose for port 0)."""
        return self._port

    def start(self) -> None:
        """Starts every worker and waits until each listens.

        Raises:
            RuntimeError: the port is taken, or a worker did not start.
        """
        host = self._settings.host
        try:  # bound, not listening: reserves the port and checks it is free
            holder = reuse_port_socket(host, self._settings.port, listen=False)
        except OSError as exc:
            raise RuntimeError(
                f"the query API could not listen on {host}:{self._settings.port} "
                f"({exc.strerror}); set AEOS_API_PORT"
            ) from None
        with holder:
            self._port = holder.getsockname()[1]
            self._metrics_dir = tempfile.TemporaryDirectory(prefix="aeos-api-metrics-")
            started = [self._spawn(i) for i in range(self._settings.workers)]
            self._procs = [proc for proc, _ in started]
            for proc, ready in started:
                self._wait_ready(proc, ready)

    def _spawn(self, index: int) -> tuple[BaseProcess, Any]:
        assert self._metrics_dir is not None
        args = WorkerArgs(
            settings_json=self._settings.model_dump_json(exclude={"cursor_secret"}),
            cursor_secret=self._cursor_secret,
            admin_url=self._admin_url,
            app_password=self._app_password,
            port=self._port,
            metrics_dir=self._metrics_dir.name,
            with_scheduler=index == 0,
            log_level=logging.getLogger().level,
        )
        ready: Any = self._ctx.Event()
        proc = self._ctx.Process(
            target=api_worker_main, args=(args, ready), name=f"aeos-api-{index}", daemon=False
        )
        # The child's prometheus_client reads this at import: its metrics go to the directory.
        previous = os.environ.get(_MULTIPROC_ENV)
        os.environ[_MULTIPROC_ENV] = self._metrics_dir.name
        try:
            proc.start()
        finally:
            if previous is None:
                os.environ.pop(_MULTIPROC_ENV, None)
            else:
                os.environ[_MULTIPROC_ENV] = previous
        return proc, ready

    def _wait_ready(self, proc: BaseProcess, ready: Any) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not ready.wait(0.1):
            if not proc.is_alive() or time.monotonic() > deadline:
                code = proc.exitcode
                self.stop()
                host = self._settings.host
                reason = "the port is in use" if code == EXIT_CANNOT_LISTEN else "it failed"
                raise RuntimeError(
                    f"the query API could not listen on {host}:{self._port} ({reason}); "
                    "set AEOS_API_PORT"
                )

    def supervise(self) -> None:
        """Restarts any worker that died (the first one again runs the periodic jobs)."""
        for i, proc in enumerate(self._procs):
            if not self._stopping and not proc.is_alive():
                _log.error("API process %s exited with %s; restarting it", proc.pid, proc.exitcode)
                new, ready = self._spawn(i)
                self._procs[i] = new
                self._wait_ready(new, ready)

    def stop(self) -> None:
        """Asks every worker to stop (SIGTERM), then waits; kills stragglers."""
        self._stopping = True
        stop_processes(self._procs)
        self._procs = []
        if self._metrics_dir is not None:
            self._metrics_dir.cleanup()
            self._metrics_dir = None
