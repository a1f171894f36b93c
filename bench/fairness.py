"""Fairness benchmark: one org at 4x the receiver's capacity, another at 10 %; memory under attack.

    .venv/bin/python bench/fairness.py [--seconds 20] [--spans-per-request 512]

In one run, on one embedded PostgreSQL (fsync on), against ``aeos serve --only receiver``
with default settings and 2 worker processes:
1. capacity: a closed loop of OTLP/gRPC requests from one org (the heavy one, over 8
   connections of its own, spread over both processes by the kernel) measures the spans/s the
   receiver commits;
2. fairness: open loop for ``--seconds``, the heavy org offering 4x that capacity and the
   light org 10 % of it (requests of 50 spans); prints the light org's successes,
   failures and p50/p99 latency (one attempt per request, no retries), and what the
   heavy org got;
3. stall attack: 16 unauthenticated connections announcing 60 MiB bodies, sending what
   the server takes and stalling, plus 16 authenticated ones doing the same, while the
   light org keeps sending; peak RSS of the receiver processes;
4. token flood: 2,000 distinct malformed 8 KB tokens and 2,000 distinct well-formed
   unknown keys (HTTP), while the light org keeps sending; peak RSS.
Targets (issue 9): every light request succeeds, light p99 < 1 s, peak RSS <= 500 MB in
all phases. Figures are printed, not asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import grpc
import httpx
import psutil
from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.ingest import MARK, METHOD, RUN_ID, build_request  # noqa: E402
from storage import admin  # noqa: E402
from storage.database import Database  # noqa: E402
from storage.embedded import EmbeddedPostgres, free_port  # noqa: E402
from storage.migrate import migrate  # noqa: E402
from storage.settings import EngineChoice  # noqa: E402

APP_PASSWORD = "bench-app-password"
LIGHT_SPANS = 50
HEAVY_CONNECTIONS = 8  # the heavy org's agents; the light org has one
TARGET_P99_S = 1.0
TARGET_RSS = 500 * 2**20


class RssSampler:
    """Samples RSS every 0.1 s; keeps the peak of the worker processes' sum (``peak``)
    and of all processes, the ``aeos serve`` supervisor included (``peak_all``)."""

    def __init__(self, pid: int) -> None:
        self._pid = pid
        self.peak = 0
        self.peak_all = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self.peak = self.peak_all = 0
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                parent = psutil.Process(self._pid)
                workers = sum(p.memory_info().rss for p in parent.children(True))
                self.peak = max(self.peak, workers)
                self.peak_all = max(self.peak_all, workers + parent.memory_info().rss)
            except psutil.Error:
                pass
            self._stop.wait(0.1)


class Sender:
    """Open-loop OTLP/gRPC sender of one org: requests leave at a rate, whatever the answers.

    Over ``connections`` TCP connections of its own, used in turn (an org with that many
    agents): gRPC shares one connection between channels to the same target unless each
    has a local subchannel pool, which put the light org's requests in the heavy org's
    connection, behind its bodies (0.25-0.45 s before the receiver saw them), and every
    request on one receiver process (the kernel balances connections, not requests).
    """

    def __init__(
        self, endpoint: str, key: str, payloads: list[bytes], spans: int, connections: int = 1
    ) -> None:
        options = [("grpc.max_send_message_length", 64 << 20),
                   ("grpc.use_local_subchannel_pool", 1)]  # fmt: skip
        self._channels = [grpc.aio.insecure_channel(endpoint, options=options)
                          for _ in range(connections)]  # fmt: skip
        self._calls = [c.unary_unary(METHOD, request_serializer=None, response_deserializer=None)
                       for c in self._channels]  # fmt: skip
        self._metadata = (("authorization", f"Bearer {key}"),)
        self._payloads = payloads
        self.spans = spans
        self.ok = 0
        self.failed: dict[str, int] = {}
        self.latencies: list[float] = []
        self._seq = secrets.randbits(30) * 1000

    async def one(self) -> None:
        self._seq += 1
        payload = self._payloads[self._seq % len(self._payloads)].replace(
            MARK, (RUN_ID + self._seq).to_bytes(8, "big")
        )
        call = self._calls[self._seq % len(self._calls)]
        started = time.perf_counter()
        try:
            await call(payload, metadata=self._metadata, timeout=60)
        except grpc.aio.AioRpcError as exc:
            self.failed[exc.code().name] = self.failed.get(exc.code().name, 0) + 1
            return
        self.latencies.append(time.perf_counter() - started)
        self.ok += 1

    async def open_loop(self, spans_per_s: float, seconds: float, cap: int = 512) -> None:
        interval = self.spans / spans_per_s
        tasks: set[asyncio.Task[None]] = set()
        started = time.monotonic()
        n = 0
        while time.monotonic() - started < seconds:
            if len(tasks) < cap:
                task = asyncio.create_task(self.one())
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            n += 1
            await asyncio.sleep(max(started + n * interval - time.monotonic(), 0))
        await asyncio.gather(*tasks, return_exceptions=True)

    async def closed_loop(self, concurrency: int, seconds: float) -> float:
        deadline = time.monotonic() + seconds

        async def worker() -> None:
            while time.monotonic() < deadline:
                await self.one()
                if self.failed:
                    await asyncio.sleep(0.02)

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return self.ok * self.spans / (time.monotonic() - started)

    def summary(self) -> str:
        lat = sorted(self.latencies)
        p50 = lat[len(lat) // 2] if lat else float("nan")
        p99 = lat[min(int(len(lat) * 0.99), len(lat) - 1)] if lat else float("nan")
        return (f"{self.ok} ok, {sum(self.failed.values())} failed {self.failed or ''}, "
                f"p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms")  # fmt: skip

    def p99(self) -> float:
        lat = sorted(self.latencies)
        return lat[min(int(len(lat) * 0.99), len(lat) - 1)] if lat else float("inf")

    async def close(self) -> None:
        for channel in self._channels:
            await channel.close()


def stall(port: int, key: str | None, connections: int, seconds: float) -> None:
    """Connections that announce 60 MiB, send what the server takes, then stall."""
    head = ("POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
            f"Content-Length: {60 * 2**20}\r\n"
            + (f"Authorization: Bearer {key}\r\n" if key else "") + "\r\n").encode()  # fmt: skip
    socks = []
    chunk = b"\x00" * (1 << 20)
    for _ in range(connections):
        s = socket.create_connection(("127.0.0.1", port))
        s.setblocking(False)
        with contextlib.suppress(OSError):
            s.send(head)
        socks.append(s)
    deadline = time.monotonic() + seconds
    sent = [0] * len(socks)
    while time.monotonic() < deadline:
        for i, s in enumerate(socks):
            if sent[i] < 59 * 2**20:  # never the whole body: the stall
                with contextlib.suppress(OSError):
                    sent[i] += s.send(chunk)
        time.sleep(0.01)
    for s in socks:
        s.close()


def token_flood(url: str, n: int) -> dict[int, int]:
    statuses: dict[int, int] = {}
    with httpx.Client(timeout=30) as client:
        for i in range(n):
            if i % 2:
                token = "aeos_ik_" + secrets.token_urlsafe(6000)  # malformed, ~8 KB
            else:
                token = f"aeos_ik_{secrets.token_hex(4)}_{secrets.token_urlsafe(32)}"
            code = client.post(f"{url}/v1/traces", content=b"x", headers={
                "authorization": f"Bearer {token}", "content-type": "application/x-protobuf"}
            ).status_code  # fmt: skip
            statuses[code] = statuses.get(code, 0) + 1
    return statuses


def refusals(http_port: int) -> dict[str, int]:
    """``aeos_receiver_refusals_total`` by reason (all workers)."""
    out: dict[str, int] = {}
    text_ = httpx.get(f"http://127.0.0.1:{http_port}/metrics", timeout=30).text
    for line in text_.splitlines():
        if line.startswith("aeos_receiver_refusals_total{"):
            reason = line.split('reason="', 1)[1].split('"', 1)[0]
            out[reason] = out.get(reason, 0) + int(float(line.rsplit(" ", 1)[1]))
    return out


def since(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


def rss_text(sampler: RssSampler) -> str:
    return (f"peak RSS {sampler.peak / 2**20:.0f} MB (2 workers), "
            f"{sampler.peak_all / 2**20:.0f} MB with the supervisor")  # fmt: skip


def stall_attack(port: int, key: str, seconds: float) -> None:
    """16 unauthenticated and 16 authenticated stalled uploads at once."""
    other = threading.Thread(target=stall, args=(port, None, 16, seconds))
    other.start()
    stall(port, key, 16, seconds)
    other.join()


async def light_during(light: Sender, rate: float, seconds: float, attack: Any) -> Any:
    """The light org sending at ``rate`` spans/s while ``attack`` runs in another
    process (so that the attack's client work does not delay the light org's client)."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        result = asyncio.get_running_loop().run_in_executor(pool, attack)
        await asyncio.sleep(1.0)  # the attack is under way
        await light.open_loop(rate, seconds)
        return await result


def start_receiver(url: Any, tmp: Path) -> tuple[subprocess.Popen[str], int, int]:
    grpc_port, http_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AEOS_", "OTEL_"))}
    env.update(
        AEOS_DATABASE_URL=url.render_as_string(hide_password=False),
        AEOS_APP_DB_PASSWORD=APP_PASSWORD, AEOS_DATA_DIR=str(tmp),
        AEOS_RECEIVER_GRPC_PORT=str(grpc_port), AEOS_RECEIVER_HTTP_PORT=str(http_port),
        AEOS_API_PORT=str(free_port()), AEOS_RECEIVER_WORKERS="2",
        AEOS_RECEIVER_AUTH_CACHE_SECONDS="60",
    )  # fmt: skip
    with (tmp / "receiver.log").open("w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "aeos", "serve", "--only", "receiver"],
                                stdout=subprocess.PIPE, stderr=err, text=True, env=env)  # fmt: skip
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("Press Ctrl-C"):
            return proc, grpc_port, http_port
    raise SystemExit(f"the receiver did not start: {(tmp / 'receiver.log').read_text()}")


async def run(args: argparse.Namespace, grpc_port: int, http_port: int, keys: list[str],
              pid: int) -> None:  # fmt: skip
    import random

    rng = random.Random(9)
    endpoint = f"127.0.0.1:{grpc_port}"
    heavy_payloads = [build_request(args.spans_per_request, s, rng) for s in range(32)]
    light_payloads = [build_request(LIGHT_SPANS, s, rng) for s in range(32)]
    calibrate = Sender(endpoint, keys[0], heavy_payloads, args.spans_per_request, HEAVY_CONNECTIONS)
    capacity = await calibrate.closed_loop(16, args.seconds / 2)
    await calibrate.close()
    print(f"capacity: {capacity:,.0f} spans/s committed (closed loop, 16 in flight, "
          f"{args.spans_per_request} spans a request)")  # fmt: skip
    if args.capacity:  # the same offered load as another run (e.g. another tree's)
        capacity = args.capacity
        print(f"  offered load based on --capacity {capacity:,.0f} spans/s instead")
    sampler = RssSampler(pid)
    with sampler:
        await asyncio.sleep(1.0)
    print(f"idle: {rss_text(sampler)}")
    before = refusals(http_port)
    heavy = Sender(endpoint, keys[0], heavy_payloads, args.spans_per_request, HEAVY_CONNECTIONS)
    light = Sender(endpoint, keys[1], light_payloads, LIGHT_SPANS)
    with sampler:
        await asyncio.gather(heavy.open_loop(4 * capacity, args.seconds),
                             light.open_loop(0.1 * capacity, args.seconds))  # fmt: skip
    await heavy.close()  # its idle connections would only be told GOAWAY later
    await light.close()
    print(f"fairness ({args.seconds:.0f}s): heavy org offered {4 * capacity:,.0f} spans/s: "
          f"{heavy.summary()}")  # fmt: skip
    print(f"  light org offered {0.1 * capacity:,.0f} spans/s: {light.summary()}; "
          f"{rss_text(sampler)}")  # fmt: skip
    print(f"  refusals by reason: {since(before, before := refusals(http_port))}")
    verdicts = [("fairness", light, sampler.peak)]
    for name, attack in (
        ("stall attack", partial(stall_attack, http_port, keys[2], args.seconds + 2)),
        ("token flood", partial(token_flood, f"http://127.0.0.1:{http_port}", 4000)),
    ):  # fmt: skip
        light = Sender(endpoint, keys[1], light_payloads, LIGHT_SPANS)
        with sampler:
            outcome = await light_during(light, 0.1 * capacity, args.seconds, attack)
        await light.close()
        print(f"{name}: light org {light.summary()}; {rss_text(sampler)}"
              f"{f'; answers {outcome}' if outcome else ''}")  # fmt: skip
        print(f"  refusals by reason: {since(before, before := refusals(http_port))}")
        verdicts.append((name, light, sampler.peak))
    for name, sender, peak in verdicts:
        print(f"targets, {name}: all light requests succeeded: {not sender.failed}; "
              f"p99 < 1 s: {sender.p99() < TARGET_P99_S}; "
              f"worker RSS <= 500 MB: {peak <= TARGET_RSS}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--spans-per-request", type=int, default=512)
    parser.add_argument(
        "--capacity",
        type=float,
        default=0.0,
        help="base the offered loads on this many spans/s, not the measured",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pg = EmbeddedPostgres(Path(tmp) / "pg", free_port())
        pg.start()
        try:
            url = pg.ensure_database("bench")
            migrate(url, EngineChoice.POSTGRES)
            db = Database(url, APP_PASSWORD)
            with db.admin_engine().begin() as conn:
                conn.execute(text(f"ALTER ROLE aeos_app LOGIN PASSWORD '{APP_PASSWORD}'"))
                keys = [admin.create_org(conn, name, "pro").ingest_key.plaintext
                        for name in ("heavy", "light", "staller")]  # fmt: skip
            db.close()
            proc, grpc_port, http_port = start_receiver(url, Path(tmp))
            try:
                asyncio.run(run(args, grpc_port, http_port, keys, proc.pid))
            finally:
                proc.terminate()
                proc.wait(timeout=60)
            log = (Path(tmp) / "receiver.log").read_text()
            print(f"receiver log: {len(log.splitlines())} lines, "
                  f"{log.count('Traceback')} tracebacks; {os.cpu_count()} cores shared "
                  "by the load generator, 2 receiver processes and PostgreSQL; load average "
                  f"{os.getloadavg()[0]:.1f}")  # fmt: skip
        finally:
            pg.stop()


if __name__ == "__main__":
    main()
