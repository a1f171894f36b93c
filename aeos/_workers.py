"""Receiver worker processes: started, supervised (restarted if one dies) and stopped."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import tempfile
import time
from multiprocessing.process import BaseProcess
from typing import Any

from otlp_receiver.server import worker_main
from otlp_receiver.settings import ReceiverSettings

_log = logging.getLogger(__name__)
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0


class ReceiverWorkers:
    """``settings.workers`` receiver processes sharing the OTLP ports."""

    def __init__(self, settings: ReceiverSettings, conninfo: str) -> None:
        self._settings = settings
        self._conninfo = conninfo
        self._ctx = multiprocessing.get_context("spawn")
        self._procs: list[BaseProcess] = []
        self._metrics_dir: tempfile.TemporaryDirectory[str] | None = None
        self._stopping = False

    def start(self) -> None:
        """Starts every worker and waits until each listens on both ports.

        Raises:
            RuntimeError: a worker did not start (a port in use, for example).
        """
        self._metrics_dir = tempfile.TemporaryDirectory(prefix="aeos-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = self._metrics_dir.name
        self._procs = [self._spawn() for _ in range(self._settings.workers)]

    def _spawn(self) -> BaseProcess:
        ready: Any = self._ctx.Event()
        proc = self._ctx.Process(
            target=worker_main,
            args=(
                self._settings.model_dump_json(),
                self._conninfo,
                ready,
                logging.getLogger().level,
            ),
            name="aeos-receiver",
            daemon=False,
        )
        proc.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not ready.wait(0.1):
            if not proc.is_alive() or time.monotonic() > deadline:
                proc.kill()
                self.stop()
                raise RuntimeError(
                    "the OTLP receiver did not start (are ports "
                    f"{self._settings.grpc_port} and {self._settings.http_port} free?)"
                )
        return proc

    def supervise(self) -> None:
        """Restarts any worker that died (acknowledged data is already committed)."""
        for i, proc in enumerate(self._procs):
            if not self._stopping and not proc.is_alive():
                _log.error(
                    "receiver process %s exited with %s; restarting it", proc.pid, proc.exitcode
                )
                self._procs[i] = self._spawn()

    @property
    def pids(self) -> list[int]:
        """Process ids of the live workers."""
        return [p.pid for p in self._procs if p.pid is not None and p.is_alive()]

    def stop(self) -> None:
        """Asks every worker to drain and stop (SIGTERM), then waits; kills stragglers."""
        self._stopping = True
        stop_processes(self._procs)
        self._procs = []
        if self._metrics_dir is not None:
            os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
            self._metrics_dir.cleanup()
            self._metrics_dir = None


def stop_processes(procs: list[BaseProcess]) -> None:
    """SIGTERM to every live process, then waits up to ``STOP_TIMEOUT_S`` in all; kills
    stragglers (the receiver and API supervisors stop their workers alike)."""
    for proc in procs:
        if proc.is_alive() and proc.pid is not None:
            os.kill(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    for proc in procs:
        proc.join(max(deadline - time.monotonic(), 0.1))
        if proc.is_alive():
            proc.kill()
            proc.join()
