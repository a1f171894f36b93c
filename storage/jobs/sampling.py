"""Trace sampling: which traces keep their spans past the full-fidelity window.

Every trace with an error is kept, and ``orgs.trace_sample_percent`` % of the others
(default 10 %); the spans of the rest are deleted once the whole trace is older than the
window (``AEOS_SAMPLING_WINDOW_HOURS``, default 24 h). The ``traces`` summary row, events,
cost line items and rollups stay: rollups and costs count 100 % of spans.

The decision on the trace id (``trace_keep``) is deterministic, so that every process, the
database and a person checking by hand agree: take the first 4 bytes of
``sha256(trace_id)`` as an unsigned big-endian integer ``h``; keep the trace if
``h mod 10000 < round(percent * 100)``. The percentage has two decimals, so the threshold
is a whole number of basis points; ``2**32 mod 10000`` makes the buckets unequal by
one part in 430 000, which is negligible. Hashing (rather than reading bits of the id)
keeps the decision uniform for ids that are not random, and independent of any
trace-id-ratio sampling done upstream by an SDK, which reads the id's own low bits.
``aeos_trace_keep(trace_id, percent)`` (migration 0008) is the same function in SQL.

Where it is decided: the ingest merge of trace summaries sets ``traces.sampled`` when a
trace is first seen, with its org's percentage at that moment, and turns it to true when a
span with an error arrives later (``storage.ingest._sql.MERGE_TRACES``). So ``sampled``
always says whether the trace is (or will be) kept, for queries too, and the sweep below
only has to delete. Changing an org's percentage applies to traces first seen afterwards.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

from storage.errors import JobStepError
from storage.ingest.rollups import RAW_REFRESH_WINDOW
from storage.jobs import _sql as q
from storage.migrate import StorageEngine, recorded_engine
from storage.tenancy import DbRole, Scope, act_as

DEFAULT_WINDOW = timedelta(hours=24)
DEFAULT_SAMPLE_PERCENT = Decimal(10)
DEFAULT_BATCH_SIZE = 500
KEEP_MODULUS = 10_000

Percent = Decimal | int | float | str


def keep_bucket(trace_id: bytes) -> int:
    """The trace's bucket in ``[0, 10000)``: ``uint32_be(sha256(trace_id)[:4]) mod 10000``."""
    return int.from_bytes(hashlib.sha256(trace_id).digest()[:4], "big") % KEEP_MODULUS


def keep_threshold(percent: Percent) -> int:
    """``round(percent * 100)`` (half away from zero, as PostgreSQL rounds numerics).

    Raises:
        ValueError: not a number, or outside 0..100.
    """
    try:
        value = Decimal(str(percent))
    except ArithmeticError:
        raise ValueError(f"{percent!r} is not a percentage") from None
    if not value.is_finite() or not 0 <= value <= 100:
        raise ValueError(f"a sampling percentage is between 0 and 100, not {percent}")
    return int((value * 100).to_integral_value(rounding=ROUND_HALF_UP))


def trace_keep(trace_id: bytes, percent: Percent) -> bool:
    """Whether the hash decision keeps ``trace_id`` at ``percent`` % (errors aside)."""
    return keep_bucket(trace_id) < keep_threshold(percent)


def trace_sampled(trace_id: bytes, error_count: int, percent: Percent) -> bool:
    """What ``traces.sampled`` says: kept if it has an error or the hash keeps it."""
    return error_count > 0 or trace_keep(trace_id, percent)


@dataclass(frozen=True, slots=True)
class SweepReport:
    """What one sampling sweep did."""

    cutoff: datetime
    traces_pruned: int
    spans_deleted: int
    batches: int

    def summary(self) -> dict[str, Any]:
        """The report as JSON-ready values (the scheduler records it)."""
        return {
            "cutoff": self.cutoff.isoformat(),
            "traces_pruned": self.traces_pruned,
            "spans_deleted": self.spans_deleted,
            "batches": self.batches,
        }


def sweep_traces(
    engine: Engine,
    now: datetime,
    *,
    window: timedelta = DEFAULT_WINDOW,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> SweepReport:
    """Deletes the spans of unsampled traces that ended before ``now - window``.

    Works in batches of ``batch_size`` traces, each in its own short transaction (as
    ``aeos_worker``), so that it never holds many locks or a long snapshot. The ``traces``
    row stays, marked with ``spans_pruned_at = now``; events and cost line items are not
    touched. Idempotent: a second run finds nothing to do, unless new spans arrived for
    a pruned trace (the ingest merge clears its mark) or more traces aged out.

    Raises:
        ValueError: ``window`` or ``batch_size`` is not positive, or (TimescaleDB) the
            window is not longer than the raw rollup refresh window.
    """
    if window <= timedelta(0) or batch_size < 1:
        raise ValueError("the window and the batch size must be positive")
    if window <= RAW_REFRESH_WINDOW:
        with engine.begin() as conn:
            act_as(conn, Scope(DbRole.WORKER))
            if recorded_engine(conn) is StorageEngine.TIMESCALE:
                raise ValueError(
                    f"a sampling window of {window} is not longer than the window in which "
                    f"TimescaleDB re-aggregates raw spans ({RAW_REFRESH_WINDOW}): rollups "
                    "would lose the pruned spans; use a longer AEOS_SAMPLING_WINDOW_HOURS"
                )
    cutoff = now - window
    traces = spans = batches = 0
    while True:
        with engine.begin() as conn:
            act_as(conn, Scope(DbRole.WORKER))
            pruned, deleted = _sweep_batch(conn, cutoff, now, batch_size)
        if pruned:
            traces, spans, batches = traces + pruned, spans + deleted, batches + 1
        if pruned < batch_size:
            break
    return SweepReport(cutoff, traces, spans, batches)


def _sweep_batch(conn: Connection, cutoff: datetime, now: datetime, limit: int) -> tuple[int, int]:
    rows = conn.execute(text(q.SELECT_UNSAMPLED), {"cutoff": cutoff, "limit": limit}).all()
    if not rows:
        return 0, 0
    for setting in q.SWEEP_SETTINGS:
        conn.execute(text(setting))
    by_org: dict[uuid.UUID, list[Any]] = {}
    for row in rows:
        by_org.setdefault(row.org_id, []).append(row)
    deleted = 0
    for org_id, traces in by_org.items():
        try:
            deleted += _delete_spans(conn, org_id, traces)
        except DBAPIError as exc:
            step = f"deleting the spans of {len(traces)} unsampled traces of org {org_id} from"
            raise JobStepError("sampling-sweep", step, "spans", exc) from exc
    org_ids: list[uuid.UUID] = [r.org_id for r in rows]
    trace_ids: list[bytes] = [r.trace_id for r in rows]
    conn.execute(text(q.MARK_PRUNED), {"now": now, "org_ids": org_ids, "trace_ids": trace_ids})
    return len(rows), deleted


def _delete_spans(conn: Connection, org_id: uuid.UUID, traces: list[Any]) -> int:
    starts: list[datetime] = [r.start_time for r in traces]
    ends: list[datetime] = [r.end_time for r in traces]
    result = conn.execute(
        text(q.DELETE_SPANS),
        {
            "org": org_id,
            "trace_ids": [r.trace_id for r in traces],
            "starts": starts,
            "ends": ends,
            "lo": min(starts),
            "hi": max(ends),
        },
    )
    return int(result.rowcount)
