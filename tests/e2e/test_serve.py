"""``aeos serve`` on the embedded PostgreSQL, run as a user runs it: as a process."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from aeos.jobs import service_jobs
from storage.embedded import free_port
from storage.settings import StorageSettings

pytestmark = pytest.mark.slow

BANNER_TIMEOUT_S = 60


def _env(data_dir: Path, api_port: int, pg_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AEOS_")}
    env.update(
        AEOS_DATA_DIR=str(data_dir),
        AEOS_EMBEDDED_PORT=str(pg_port),
        AEOS_API_PORT=str(api_port),
    )
    return env


def _postgres_of(data_dir: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if cmdline and cmdline[0].endswith("postgres") and any(str(data_dir) in c for c in cmdline):
            found.append(proc)
    return found


def _wait_gone(data_dir: Path, timeout: float = 30) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = _postgres_of(data_dir)
        if not left:
            return []
        time.sleep(0.2)
    return _postgres_of(data_dir)


def _demo_of(data_dir: Path) -> list[psutil.Process]:
    """Live ``aeos demo`` processes started by a service of ``data_dir`` (their environment).

    A zombie has exited: orphaned, it waits for this machine's init to reap it."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if "demo" in (proc.info["cmdline"] or [])[2:4] and proc.environ().get(
                "AEOS_DATA_DIR"
            ) == str(data_dir):
                found.append(proc)
        except psutil.Error:
            continue
    return found


class Service:
    def __init__(self, data_dir: Path, *args: str) -> None:
        self.data_dir = data_dir
        self.api_port, self.pg_port = free_port(), free_port()
        self.env = _env(data_dir, self.api_port, self.pg_port)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "aeos", "serve", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
        )
        _STARTED.append(self)
        self.banner = self._read_banner()

    def _read_banner(self) -> str:
        assert self.proc.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + BANNER_TIMEOUT_S
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("Press Ctrl-C"):
                return "".join(lines)
        self.proc.kill()
        _, err = self.proc.communicate()
        raise AssertionError(f"no banner within {BANNER_TIMEOUT_S}s: {''.join(lines)}\n{err}")

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "aeos", *args],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=60,
        )

    def stop(self, sig: int) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        _, self.stderr = self.proc.communicate(timeout=90)
        return self.proc.returncode

    def kill(self) -> None:
        self.proc.kill()
        self.proc.communicate()


_STARTED: list[Service] = []


def _wait_for_job_runs(service: Service, timeout: float = 30) -> list[dict[str, object]]:
    deadline = time.monotonic() + timeout
    while True:
        listed = service.cli("jobs", "list", "--json")
        assert listed.returncode == 0, listed.stderr
        jobs: list[dict[str, object]] = json.loads(listed.stdout)
        if all(j["status"] in ("ok", "failed") for j in jobs) or time.monotonic() > deadline:
            return jobs
        time.sleep(0.2)


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "data"
    while _STARTED:  # whatever a failed assertion left running
        service = _STARTED.pop()
        if service.proc.poll() is None:
            service.kill()
        elif service.proc.stdout is not None and not service.proc.stdout.closed:
            service.proc.communicate()
    for proc in _postgres_of(tmp_path / "data"):  # never leave a server behind
        proc.kill()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_serve_prints_endpoints_and_stops_cleanly(data_dir: Path, sig: int) -> None:
    started = time.monotonic()
    service = Service(data_dir, "--demo")
    assert time.monotonic() - started < BANNER_TIMEOUT_S
    assert f"http://127.0.0.1:{service.api_port}" in service.banner
    key = re.search(r"ingest key \(shown once\): (aeos_ik_\S+)", service.banner)
    assert key is not None
    ready = httpx.get(f"http://127.0.0.1:{service.api_port}/readyz", timeout=10).json()
    assert ready == {"status": "ok", "storage_engine": "postgres"}
    assert _postgres_of(data_dir)
    # The CLI works next to a running service: it attaches to the same embedded server.
    listed = service.cli("orgs", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    names = {o["name"] for o in json.loads(listed.stdout)}
    assert "demo" in names  # demo-2 and demo-3 appear as the demo traffic starts
    assert names <= {"demo", "demo-2", "demo-3"}
    # The scheduler ran each job at start; its runs show in the CLI and in /metrics.
    jobs = _wait_for_job_runs(service)
    # Every job the service schedules (aeos.jobs; alerting and TimescaleDB checks included).
    expected = {job.name: "ok" for job in service_jobs(StorageSettings())}
    assert {"partitions", "sampling-sweep", "retention"} <= set(expected)
    assert {j["job"]: j["status"] for j in jobs} == expected
    assert not any(str(j["instance"]).startswith("cli:") for j in jobs)
    metrics = httpx.get(f"http://127.0.0.1:{service.api_port}/metrics", timeout=10).text
    assert 'aeos_scheduler_runs_total{job="sampling-sweep",status="ok"} 1.0' in metrics
    assert service.stop(sig) == 0
    assert _wait_gone(data_dir, timeout=5) == []


def test_restart_reuses_data_and_recovers_from_sigkill(data_dir: Path) -> None:
    first = Service(data_dir, "--demo")
    created = first.cli("orgs", "create", "kept", "--plan", "pro")
    assert created.returncode == 0, created.stderr
    assert _demo_of(data_dir)
    first.kill()  # SIGKILL: no cleanup runs in aeos itself
    # The postmaster notices its parent died (PR_SET_PDEATHSIG) and shuts down; the demo
    # traffic is terminated (a SIGTERM: it must not retry flushes to the dead receiver).
    assert _wait_gone(data_dir) == []
    deadline = time.monotonic() + 15  # an interrupted demo retried its flushes for minutes
    while _demo_of(data_dir) and time.monotonic() < deadline:
        time.sleep(0.5)
    left = _demo_of(data_dir)
    for proc in left:
        proc.kill()
    assert left == [], "the demo traffic outlived its service"
    second = Service(data_dir)
    listed = second.cli("orgs", "list", "--json")
    names = {o["name"] for o in json.loads(listed.stdout)}
    assert {"demo", "kept"} <= names
    second.stop(signal.SIGTERM)
    assert _wait_gone(data_dir, timeout=5) == []


def test_stale_postmaster_pid_is_recovered(data_dir: Path) -> None:
    first = Service(data_dir)
    first.stop(signal.SIGTERM)
    pid_file = data_dir / "pg18" / "postmaster.pid"
    dead = subprocess.Popen(["true"])
    dead.wait()
    pid_file.write_text(f"{dead.pid}\n{data_dir / 'pg18'}\n0\n5432\n\n127.0.0.1\n0 0\nready\n")
    second = Service(data_dir)
    assert "Press Ctrl-C" in second.banner
    second.stop(signal.SIGTERM)


def test_second_service_on_same_data_dir_is_refused_clearly(data_dir: Path) -> None:
    first = Service(data_dir)
    try:
        env = _env(data_dir, free_port(), free_port())
        result = subprocess.run(
            [sys.executable, "-m", "aeos", "serve"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert result.returncode == 1
        assert "already serving" in result.stderr
    finally:
        first.stop(signal.SIGTERM)


def test_a_port_in_use_is_a_clear_error_and_leaves_nothing_running(data_dir: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        env = _env(data_dir, taken.getsockname()[1], free_port())
        env["AEOS_RECEIVER_GRPC_PORT"], env["AEOS_RECEIVER_HTTP_PORT"] = (
            str(free_port()),
            str(free_port()),
        )
        result = subprocess.run(
            [sys.executable, "-m", "aeos", "serve"],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
    assert result.returncode == 1
    assert "could not listen" in result.stderr
    assert "Traceback" not in result.stderr
    assert _wait_gone(data_dir, timeout=10) == []
