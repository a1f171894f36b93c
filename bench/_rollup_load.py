"""Synthetic agent spans for bench/rollups.py, loaded through the product's IngestWriter.

Each org has about 8 agents in 2 or 3 subsystems, each agent 5 operations with its own
lognormal duration (medians from 1.5 ms to 15 s, clamped to 1 ms .. 60 s); about 2 % of
spans are errors. Spans come as :class:`storage.ingest.rows.Batch` es of one org each, as export
requests do, and the batches are ordered by time so that the load moves forward through
the period as live ingest would. Row objects share what can be shared (attribute dicts,
names), so that building a span costs a few microseconds.

The load goes through :class:`storage.ingest.writer.IngestWriter`, the receiver's own writer, so
the rollup tables are built by the product's path; several batches are in flight at
once, so group commit merges them as it does for concurrent export requests.
"""

from __future__ import annotations

import asyncio
import math
import random
import struct
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.engine import URL

from storage import admin
from storage.database import Database
from storage.ingest.rows import AgentSighting, Batch, SpanRow
from storage.ingest.writer import IngestWriter
from storage.jobs.partitions import ensure_partitions
from storage.migrate import migrate
from storage.settings import EngineChoice
from storage.tenancy import DbRole, Scope, act_as
from tests.conftest import TEST_APP_PASSWORD

SPANS_PER_TRACE = 10
MIN_DURATION_MS = 1.0
MAX_DURATION_MS = 60_000.0
DURATION_SIGMA = 0.9
ERROR_RATE = 0.02
AGENTS_PER_ORG = 8
TRACE_SPREAD_NS = 2 * 10**9  # a trace's spans start within 2 s of each other
_PACK_Q = struct.Struct(">Q").pack
_PACK_QQ = struct.Struct(">QQ").pack

#: Five operations per subsystem: (span name, median duration in ms, extra attributes).
OPERATIONS: dict[str, tuple[tuple[str, float, dict[str, object]], ...]] = {
    "MOSAIC": (
        ("route", 8.0, {"mosaic.routing.route": "planner", "mosaic.routing.outcome": "accepted"}),
        ("plan", 350.0, {"mosaic.plan.step": 1}),
        ("handoff", 40.0, {"mosaic.handoff.to_agent": "agent-0"}),
        ("execute_step", 2_500.0, {"mosaic.plan.step": 2}),
        ("chat", 6_000.0, {"gen_ai.operation.name": "chat"}),
    ),
    "UCE": (
        ("context.read", 3.0, {"uce.operation.name": "read", "uce.cache.hit": True,
                               "uce.context.size_tokens": 4096}),
        ("context.write", 12.0, {"uce.operation.name": "write", "uce.context.size_tokens": 900}),
        ("cache.lookup", 1.5, {"uce.operation.name": "lookup", "uce.cache.hit": False}),
        ("embed", 90.0, {"uce.operation.name": "embed"}),
        ("summarize", 4_000.0, {"uce.operation.name": "summarize"}),
    ),
    "DAMN": (
        ("heartbeat", 2.0, {}),
        ("schedule", 25.0, {"damn.queue": "default"}),
        ("scale", 800.0, {"damn.replicas": 3}),
        ("deploy", 15_000.0, {"damn.strategy": "rolling"}),
        ("health_check", 60.0, {}),
    ),
    "SYSTEM": (
        ("http.request", 30.0, {"http.request.method": "POST"}),
        ("db.query", 6.0, {"db.system.name": "postgresql"}),
        ("queue.publish", 4.0, {"messaging.system": "kafka"}),
        ("job.run", 9_000.0, {"code.function.name": "run"}),
        ("auth", 15.0, {"http.request.method": "GET"}),
    ),
}  # fmt: skip
SUBSYSTEM_ORDER = ("MOSAIC", "UCE", "DAMN", "SYSTEM")


@dataclass(frozen=True, slots=True)
class Operation:
    """One (agent, operation) pair of an org: everything its spans share."""

    name: str
    log_median: float
    subsystem: str
    service: str
    agent: str
    fleet: str
    attributes: dict[str, object]
    resource: dict[str, object]


@dataclass(frozen=True, slots=True)
class Org:
    """One org of the synthetic world."""

    org_id: uuid.UUID
    spans: int
    operations: tuple[Operation, ...]
    agents: tuple[AgentSighting, ...]


@dataclass(frozen=True, slots=True)
class BatchSpec:
    """A batch to generate: ``count`` spans of ``org`` starting in ``[lo_ns, hi_ns)``."""

    lo_ns: int
    org: int
    hi_ns: int
    count: int


def org_sizes(total: int, orgs: int) -> list[int]:
    """Zipf-like sizes (the largest org about 1/5 of all spans, the smallest ~1/200)."""
    weights = [1 / (i + 1) for i in range(orgs)]
    scale = total / sum(weights)
    sizes = [max(int(w * scale), 1) for w in weights]
    sizes[0] += total - sum(sizes)
    return sizes


def build_org(org_id: uuid.UUID, index: int, spans: int, seen_ns: int) -> Org:
    """Agents and operations of org number ``index``: 2 or 3 subsystems, 8 agents."""
    first = index % len(SUBSYSTEM_ORDER)
    subsystems = [SUBSYSTEM_ORDER[(first + k) % 4] for k in range(2 + index % 2)]
    operations: list[Operation] = []
    agents: list[AgentSighting] = []
    for a in range(AGENTS_PER_ORG):
        subsystem = subsystems[a % len(subsystems)]
        agent, fleet = f"agent-{a}", f"fleet-{subsystem.lower()}"
        service = f"{subsystem.lower()}-{'worker' if a % 2 else 'api'}"
        resource: dict[str, object] = {
            "service.name": service, "service.version": "1.4.2", "aeos.agent.id": agent,
            "aeos.fleet.id": fleet, "aeos.subsystem": subsystem,
        }  # fmt: skip
        agents.append(AgentSighting(agent, fleet, agent, subsystem, service, "1.4.2", seen_ns,
                                    resource))  # fmt: skip
        for name, median, extra in OPERATIONS[subsystem]:
            attributes = {"deployment.environment.name": "prod", "aeos.tenant.region": "eu-west",
                          **extra}  # fmt: skip
            operations.append(Operation(name, math.log(median), subsystem, service, agent,
                                        fleet, attributes, resource))  # fmt: skip
    return Org(org_id, spans, tuple(operations), tuple(agents))


def batch_specs(orgs: list[Org], since_ns: int, until_ns: int, batch_spans: int) -> list[BatchSpec]:
    """Each org's spans cut into batches of ``batch_spans``, spread evenly over the period,
    all orgs' batches in time order."""
    specs: list[BatchSpec] = []
    width = until_ns - since_ns
    for i, org in enumerate(orgs):
        for first in range(0, org.spans, batch_spans):
            last = min(first + batch_spans, org.spans)
            lo = since_ns + width * first // org.spans
            hi = since_ns + width * last // org.spans
            specs.append(BatchSpec(lo, i, max(hi, lo + 1), last - first))
    specs.sort(key=lambda s: (s.lo_ns, s.org))
    return specs


class SpanFactory:
    """Builds batches; span and trace ids are unique across the run."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)
        self._run = random.Random(seed).getrandbits(63)
        self._seq = 0

    def batch(self, org: Org, spec: BatchSpec) -> Batch:
        """The spans of ``spec`` (traces of 10 spans, the first of each its root)."""
        rnd, gauss = self._rng.random, self._rng.gauss
        ops, n_ops = org.operations, len(org.operations)
        lo, width = spec.lo_ns, spec.hi_ns - spec.lo_ns
        spans: list[SpanRow] = []
        trace_id, root, trace_start = b"", b"", 0
        seq = self._seq
        for i in range(spec.count):
            seq += 1
            span_id = _PACK_Q(seq)
            parent: bytes | None = root
            if i % SPANS_PER_TRACE == 0:
                trace_id, root, parent = _PACK_QQ(self._run, seq), span_id, None
                trace_start = lo + int(rnd() * width)
            op = ops[int(rnd() * n_ops)]
            start = trace_start + int(rnd() * TRACE_SPREAD_NS)
            ms = math.exp(op.log_median + DURATION_SIGMA * gauss())
            ms = MIN_DURATION_MS if ms < MIN_DURATION_MS else min(ms, MAX_DURATION_MS)
            r = rnd()
            status = 2 if r < ERROR_RATE else (1 if r < 0.3 else 0)
            spans.append(SpanRow(
                trace_id, span_id, parent, None, op.name, 1, start, start + int(ms * 1e6),
                status, "failed" if status == 2 else None, op.subsystem, op.service, op.agent,
                op.fleet, None, None, None, None, None, None, "aeos.bench", op.attributes,
                op.resource,
            ))  # fmt: skip
        self._seq = seq
        return Batch(org.org_id, spans=spans, agents=list(org.agents))


@dataclass(frozen=True, slots=True)
class World:
    """Orgs created in a database, and the batches of their spans."""

    db: Database
    orgs: list[Org]
    specs: list[BatchSpec]


def new_world(url: URL, orgs: int, spans: int, since: datetime, until: datetime,
              batch_spans: int, prefix: str = "bench") -> World:  # fmt: skip
    """Migrates (if needed), creates ``orgs`` orgs named ``<prefix>-NN`` and the partitions
    of the period, and plans ``spans`` spans in ``[since, until)`` across them."""
    migrate(url, EngineChoice.POSTGRES)
    db = Database(url, TEST_APP_PASSWORD)
    with db.admin_engine().begin() as conn:
        conn.execute(text(f"ALTER ROLE aeos_app LOGIN PASSWORD '{TEST_APP_PASSWORD}'"))
        act_as(conn, Scope(DbRole.STAFF))  # the rest of this transaction administers orgs
        ids = [admin.create_org(conn, f"{prefix}-{i:02d}", "enterprise").org_id
               for i in range(orgs)]  # fmt: skip
    with db.admin_engine().begin() as conn:
        act_as(conn, Scope(DbRole.WORKER))
        ensure_partitions(conn, until, behind=until - since + timedelta(days=1))
    since_ns, until_ns = int(since.timestamp()) * 10**9, int(until.timestamp()) * 10**9
    world = [build_org(org_id, i, n, until_ns)
             for i, (org_id, n) in enumerate(zip(ids, org_sizes(spans, orgs), strict=True))]  # fmt: skip
    return World(db, world, batch_specs(world, since_ns, until_ns, batch_spans))


async def load(conninfo: str, world: World, concurrency: int, seed: int, *,
               maintain_rollups: bool = True, progress_every_s: float = 30.0,
               ) -> tuple[int, float, float]:  # fmt: skip
    """Writes every batch of ``world`` through an IngestWriter, ``concurrency`` in flight.

    Returns:
        Spans stored, seconds, and seconds of it spent building rows (same process).
    """
    writer = IngestWriter(conninfo, maintain_rollups=maintain_rollups)
    await writer.start()
    factory = SpanFactory(seed)
    total = sum(s.count for s in world.specs)
    specs = iter(world.specs)
    stored, generating, started = 0, 0.0, time.monotonic()
    next_report = started + progress_every_s

    async def client() -> None:
        nonlocal stored, generating, next_report
        for spec in specs:
            t0 = time.perf_counter()
            batch = factory.batch(world.orgs[spec.org], spec)
            generating += time.perf_counter() - t0
            written = await writer.write(batch)  # not `stored += await ...`: that reads
            stored += written.spans  # `stored` before the await and loses updates
            if time.monotonic() >= next_report:
                next_report += progress_every_s
                _progress(stored, total, time.monotonic() - started)

    await asyncio.gather(*(client() for _ in range(concurrency)))
    await writer.close()
    return stored, time.monotonic() - started, generating


def _progress(done: int, total: int, elapsed: float) -> None:
    rate = done / elapsed
    eta = (total - done) / rate if rate else float("inf")
    print(f"  loaded {done:,} / {total:,} spans ({done / total:.0%}) in {elapsed:.0f}s: "
          f"{rate:,.0f} spans/s, about {eta:.0f}s to go", flush=True)  # fmt: skip
