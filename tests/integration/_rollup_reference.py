"""Rollups recomputed from raw rows by plain Python, to check the engines' rollups against.

Written from the definitions (README "Rollups"), not from ``storage.ingest.rollups``: it reads
the raw tables back and aggregates them with dictionaries, level by level straight from
the raw rows (no hierarchy), so an error in the incremental or hierarchical maintenance
shows up as a difference.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, text

from storage import hist

LEVELS = {"1m": 60, "1h": 3600, "1d": 86400}
Row = dict[str, Any]


def floor(t: datetime, seconds: int) -> datetime:
    epoch = math.floor(t.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, UTC)


def _rows(conn: Connection, sql: str) -> list[Row]:
    return [dict(r._mapping) for r in conn.execute(text(sql))]


def _text(attrs: dict[str, Any], key: str) -> str | None:
    v = attrs.get(key)
    return v if isinstance(v, str) else None


def _number(attrs: dict[str, Any], key: str) -> float | None:
    v = attrs.get(key)
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def _group(
    rows: Iterable[Row], key: Callable[[Row], tuple[Any, ...] | None]
) -> dict[Any, list[Row]]:
    out: dict[Any, list[Row]] = defaultdict(list)
    for r in rows:
        k = key(r)
        if k is not None:
            out[k].append(r)
    return out


def _red(rows: list[Row]) -> Row:
    durations = [r["duration_ms"] for r in rows]
    h = hist.of_values(durations)
    return {
        "span_count": len(rows),
        "error_count": sum(r["status_code"] == 2 for r in rows),
        "duration_sum_ms": math.fsum(durations),
        "duration_min_ms": min(durations),
        "duration_max_ms": max(durations),
        "duration_hist": h,
        "duration_p50_ms": hist.quantile(h, 0.5),
        "duration_p95_ms": hist.quantile(h, 0.95),
        "duration_p99_ms": hist.quantile(h, 0.99),
    }


def expected(conn: Connection) -> dict[str, dict[tuple[Any, ...], Row]]:
    """Every rollup relation → key → measures, from the raw tables."""
    spans = _rows(
        conn,
        "SELECT org_id, start_time, subsystem, service_name, name, agent_id, status_code, "
        "duration_ms, attributes FROM spans",
    )
    events = _rows(conn, "SELECT org_id, time, event_type, agent_id, payload FROM events")
    points = _rows(conn, "SELECT * FROM metric_points")
    costs = _rows(conn, "SELECT * FROM cost_line_items")
    out: dict[str, dict[tuple[Any, ...], Row]] = {}
    for level, seconds in LEVELS.items():

        def b(t: datetime, s: int = seconds) -> datetime:
            return floor(t, s)

        out[f"span_red_{level}"] = {
            k: _red(v)
            for k, v in _group(
                spans,
                lambda r: (r["org_id"], b(r["start_time"]), r["subsystem"],
                           r["service_name"] or "", r["name"], r["agent_id"] or ""),
            ).items()
        }  # fmt: skip
        out[f"org_red_{level}"] = {
            k: _red(v)
            for k, v in _group(spans, lambda r: (r["org_id"], b(r["start_time"]))).items()
        }
        out[f"platform_red_{level}"] = {
            k: _red(v) for k, v in _group(spans, lambda r: (b(r["start_time"]),)).items()
        }
        out[f"uce_ops_{level}"] = {k: _uce(v) for k, v in _group(spans, _uce_key(b)).items()}
        out[f"mosaic_routes_{level}"] = {
            k: {
                "decisions": len(v),
                "successes": sum(r["status_code"] != 2 for r in v),
                "failures": sum(r["status_code"] == 2 for r in v),
            }
            for k, v in _group(
                spans,
                lambda r: None
                if _text(r["attributes"], "mosaic.routing.route") is None
                else (r["org_id"], b(r["start_time"]), r["attributes"]["mosaic.routing.route"],
                      _text(r["attributes"], "mosaic.routing.outcome") or ""),
            ).items()
        }  # fmt: skip
        out[f"mosaic_handoffs_{level}"] = {
            k: {"handoffs": len(v), "failures": sum(r["status_code"] == 2 for r in v)}
            for k, v in _group(
                spans,
                lambda r: None
                if _text(r["attributes"], "mosaic.handoff.to_agent") is None
                else (
                    r["org_id"], b(r["start_time"]), _from_agent(r),
                    r["attributes"]["mosaic.handoff.to_agent"],
                ),
            ).items()
        }  # fmt: skip
        beats = _group(events, _beat_key(b))
        out[f"damn_heartbeats_{level}"] = {
            k: {"heartbeats": len(v), "active_minutes": len({floor(r["time"], 60) for r in v})}
            for k, v in beats.items()
        }
        out[f"metric_rollup_{level}"] = {
            k: _metric(v)
            for k, v in _group(
                points, lambda r: (r["org_id"], b(r["time"]), r["metric"], r["series_id"])
            ).items()
        }
    out["cost_daily"] = {
        k: {
            "calls": len(v),
            "cost_usd": sum((r["cost_usd"] for r in v), Decimal(0)),
            "tokens_in": sum(r["tokens_in"] for r in v),
            "tokens_out": sum(r["tokens_out"] for r in v),
            "cache_read_tokens": sum(r["cache_read_tokens"] for r in v),
            "cache_creation_tokens": sum(r["cache_creation_tokens"] for r in v),
        }
        for k, v in _group(
            costs,
            lambda r: (r["org_id"], floor(r["time"], 86400), r["provider"], r["model"],
                       r["agent_id"] or "", r["subsystem"]),
        ).items()
    }  # fmt: skip
    return out


def _from_agent(r: Row) -> str:
    explicit = _text(r["attributes"], "mosaic.handoff.from_agent")
    return explicit if explicit is not None else (r["agent_id"] or "")


def _uce_key(b: Callable[[datetime], datetime]) -> Callable[[Row], tuple[Any, ...] | None]:
    def key(r: Row) -> tuple[Any, ...] | None:
        op = _text(r["attributes"], "uce.operation.name")
        return None if op is None else (r["org_id"], b(r["start_time"]), r["agent_id"] or "", op)

    return key


def _uce(rows: list[Row]) -> Row:
    hits = [r["attributes"].get("uce.cache.hit") for r in rows]
    sizes = [
        s for r in rows if (s := _number(r["attributes"], "uce.context.size_tokens")) is not None
    ]
    h = hist.of_values(sizes)
    return {
        "op_count": len(rows),
        "error_count": sum(r["status_code"] == 2 for r in rows),
        "cache_hits": sum(v is True for v in hits),
        "cache_lookups": sum(isinstance(v, bool) for v in hits),
        "context_size_count": len(sizes),
        "context_size_sum": math.fsum(sizes) if sizes else None,
        "context_size_max": max(sizes) if sizes else None,
        "context_size_hist": h,
        "context_size_p50": hist.quantile(h, 0.5),
        "context_size_p95": hist.quantile(h, 0.95),
    }


def _beat_key(b: Callable[[datetime], datetime]) -> Callable[[Row], tuple[Any, ...] | None]:
    def key(r: Row) -> tuple[Any, ...] | None:
        if r["event_type"] != "damn.agent.heartbeat":
            return None
        status = r["payload"].get("damn.agent.status")
        status = status.lower() if isinstance(status, str) else ""
        status = status if status in ("online", "offline", "degraded") else "online"
        return (r["org_id"], b(r["time"]), r["agent_id"] or "", status)

    return key


def _metric(rows: list[Row]) -> Row:
    def v(r: Row, field: str) -> Any:
        return r["value"] if r["value"] is not None else r[field]

    values = [x for r in rows if (x := v(r, "sum")) is not None]
    lows = [x for r in rows if (x := v(r, "min")) is not None]
    highs = [x for r in rows if (x := v(r, "max")) is not None]
    latest = max(rows, key=lambda r: r["time"])
    counts = [r["bucket_counts"] for r in rows if r["bucket_counts"] is not None]
    bounds = [r["explicit_bounds"] for r in rows if r["explicit_bounds"] is not None]
    return {
        "count": len(rows),
        "observations": sum(r["count"] if r["count"] is not None else 1 for r in rows),
        "sum": math.fsum(values) if values else None,
        "min": min(lows) if lows else None,
        "max": max(highs) if highs else None,
        "last": v(latest, "sum"),
        "last_time": latest["time"],
        "explicit_bounds": max(bounds) if bounds else None,
        "bucket_counts": [sum(c) for c in zip(*counts, strict=True)] if counts else None,
    }


#: Percentile columns a reader sees: (histogram, count column, {column: q}). Continuous
#: aggregates store them; PostgreSQL rollup tables (since migration 0020) do not, and a
#: reader ranks within the row's histogram, as the views over those tables do.
PERCENTILES = (
    ("duration_hist", "span_count",
     {"duration_p50_ms": 0.5, "duration_p95_ms": 0.95, "duration_p99_ms": 0.99}),
    ("context_size_hist", "context_size_count",
     {"context_size_p50": 0.5, "context_size_p95": 0.95}),
)  # fmt: skip


def actual(conn: Connection, relation: str, key: tuple[str, ...]) -> dict[tuple[Any, ...], Row]:
    """A rollup relation's rows by key, with the percentiles a reader would see."""
    columns = set(conn.execute(text(f"SELECT * FROM {relation} LIMIT 0")).keys())
    computed = [
        f"aeos_hist_quantile_n({h}, {n}, {q}) AS {c}"
        for h, n, pcols in PERCENTILES
        if h in columns
        for c, q in pcols.items()
        if c not in columns
    ]
    select = ", ".join(["*", *computed])
    return {tuple(r[k] for k in key): r for r in _rows(conn, f"SELECT {select} FROM {relation}")}


def mismatches(want: Row, got: Row) -> list[str]:
    """Columns whose values differ (floats compared to 1e-9 relative)."""
    bad = []
    for column, w in want.items():
        g = got[column]
        if isinstance(w, float) and isinstance(g, float):
            if not math.isclose(w, g, rel_tol=1e-9, abs_tol=1e-9):
                bad.append(f"{column}: want {w!r} got {g!r}")
        elif isinstance(w, list) and w and isinstance(w[0], float):
            if (
                g is None
                or len(w) != len(g)
                or not all(math.isclose(a, c) for a, c in zip(w, g, strict=True))
            ):
                bad.append(f"{column}: want {w!r} got {g!r}")
        elif (w if w != [] else None) != (g if g != [] else None):
            bad.append(f"{column}: want {w!r} got {g!r}")
    return bad
