"""Subsystem dashboards: MOSAIC (orchestration), DAMN (fleet), UCE (context engine)."""

from __future__ import annotations

from dashboards_json._gen import variables as v
from dashboards_json._gen.dashboard import dashboard
from dashboards_json._gen.panels import (
    ERROR_RATE,
    UPTIME,
    Json,
    bargauge,
    nodegraph,
    stat,
    steps,
    table,
    timeseries,
    traces,
    value_names,
)
from dashboards_json._gen.sql import (
    P95,
    SECONDS,
    TIME,
    per_minute,
    per_second,
    point_quantiles,
    quantiles,
    ratio,
    raw_window,
    rollup,
)

ORG = v.ORG_FILTER
TAGS = ["subsystem"]
AGENT = v.matches("agent_id", "agent")
HIST = "duration_hist"
SIZES = {"p50_tokens": 0.5, "p95_tokens": 0.95}
SIZE_HIST = "context_size_hist"


def mosaic() -> Json:
    """Orchestration: the task timeline, handoffs between agents, routing, one trace."""
    handoffs = rollup("mosaic_handoffs")
    mosaic = f"{ORG} AND subsystem = 'MOSAIC' AND {AGENT}"
    routes = rollup("mosaic_routes")
    frm = "coalesce(nullif(from_agent, ''), '(unknown)')"
    to = "coalesce(nullif(to_agent, ''), '(unknown)')"
    nodes = (
        f"SELECT agent AS id, agent AS title, sum(n) AS mainstat FROM (SELECT {frm} AS agent, "
        f"handoffs AS n FROM {handoffs} WHERE {ORG} UNION ALL SELECT {to}, handoffs "
        f"FROM {handoffs} WHERE {ORG}) h GROUP BY agent ORDER BY agent"
    )
    edges = (
        f"SELECT {frm} || ' -> ' || {to} AS id, {frm} AS source, {to} AS target, "
        f"sum(handoffs) AS mainstat, sum(failures) AS secondarystat FROM {handoffs} "
        f"WHERE {ORG} GROUP BY 2, 3 ORDER BY 1"
    )
    panels = [
        timeseries("Orchestration timeline", "MOSAIC spans per second by operation (plan, route, "
                   "handoff, execute...) of the chosen agents.",
                   f"SELECT {TIME}, operation, {per_second('sum(span_count)')} AS spans "
                   f"FROM {rollup('span_red')} WHERE {ORG} AND subsystem = 'MOSAIC' AND {AGENT} "
                   "GROUP BY 1, 2 ORDER BY 1", unit="reqps", stacked=True, size=(24, 8)),
        nodegraph("Handoffs", "Agents as nodes (handoffs in and out), handoffs between them as "
                  "edges (main: handoffs, secondary: failed handoffs).", nodes, edges),
        timeseries("Routing decisions per minute", "MOSAIC routing decisions by route.",
                   f"SELECT {TIME}, route, {per_minute('sum(decisions)')} AS decisions "
                   f"FROM {routes} WHERE {ORG} GROUP BY 1, 2 ORDER BY 1", unit="opm",
                   stacked=True),
        table("Routes", "Each route with its decisions, outcomes and success ratio.",
              f"SELECT route, outcome, sum(decisions) AS decisions, sum(successes) AS successes, "
              f"sum(failures) AS failures, {ratio('sum(successes)', 'sum(decisions)')} "
              f"AS success_ratio FROM {routes} WHERE {ORG} GROUP BY 1, 2 ORDER BY 3 DESC",
              units={"success_ratio": "percentunit"}, thresholds={"success_ratio": UPTIME},
              size=(12, 8)),
        table("Slowest MOSAIC operations", "MOSAIC operations by p95 duration, with errors.",
              "SELECT c.operation, c.spans, c.error_rate, q.p95_ms FROM (SELECT operation, "
              f"sum(span_count) AS spans, {ratio('sum(error_count)', 'sum(span_count)')} "
              f"AS error_rate FROM {rollup('span_red')} WHERE {mosaic} GROUP BY 1) AS c "
              f"JOIN {quantiles(rollup('span_red'), mosaic, {'operation': 'operation'}, HIST, P95)}"
              " "
              "AS q USING (operation) ORDER BY q.p95_ms DESC NULLS LAST LIMIT 10",
              units={"error_rate": "percentunit", "p95_ms": "ms"},
              thresholds={"error_rate": ERROR_RATE}, size=(12, 8)),
        traces("Trace (critical path)", "The trace in the Trace id box (the Task Runs table links "
               "here): spans on the critical path are the longest chain.", "${trace_id}"),
    ]  # fmt: skip
    return dashboard("aeos-mosaic", "MOSAIC", "Task orchestration: timeline, handoffs, routing.",
                     panels, tags=TAGS,
                     variables=[v.org(), v.fleet(), v.agent(), v.trace_id()])  # fmt: skip


_HEALTH = value_names({2: ("online", "green"), 1: ("degraded", "yellow"), 0: ("offline", "red")})


def damn() -> Json:
    """Fleet health: status grid, heartbeat uptime, version skew, queue depth."""
    beats = rollup("damn_heartbeats")
    up = "sum(active_minutes) FILTER (WHERE status <> 'offline')"
    panels = [
        stat("Fleet health", "One tile per agent of the chosen fleets: online, degraded or "
             "offline (as last reported).",
             "SELECT coalesce(nullif(name, ''), agent_id) AS agent, CASE status WHEN 'online' "
             "THEN 2 WHEN 'degraded' THEN 1 ELSE 0 END AS health FROM agents "
             f"WHERE {ORG} AND {AGENT} ORDER BY 1 LIMIT 200", unit="none",
             thresholds=steps((None, "red"), (1, "yellow"), (2, "green")), mappings=_HEALTH,
             per_row=True, size=(24, 6)),
        timeseries("Heartbeat uptime", "Share of minutes with a heartbeat that was not "
                   "'offline', per agent.",
                   f"SELECT {TIME}, agent_id AS agent, least(1.0, coalesce({up}, 0) * 60.0 / "
                   f"{SECONDS}) AS uptime FROM {beats} WHERE {ORG} AND {AGENT} "
                   "GROUP BY 1, 2 ORDER BY 1", unit="percentunit", thresholds=UPTIME),
        timeseries("Queue depth", "Mean of damn.queue.depth per agent.",
                   f"SELECT {TIME}, agent_id AS agent, sum(sum) / nullif(sum(count), 0) "
                   f"AS queue_depth FROM {rollup('metric_rollup')} WHERE {ORG} "
                   f"AND metric = 'damn.queue.depth' AND {AGENT} GROUP BY 1, 2 ORDER BY 1",
                   unit="short"),
        bargauge("Version skew", "Agents per reported service.version.",
                 "SELECT coalesce(version, '(unknown)') AS version, count(*) AS agents "
                 f"FROM agents WHERE {ORG} AND {AGENT} GROUP BY 1 ORDER BY 2 DESC", unit="short"),
        stat("Versions in use", "Distinct versions among the chosen agents (1 = no skew).",
             f"SELECT count(DISTINCT version) AS versions FROM agents WHERE {ORG} AND {AGENT}",
             unit="short", thresholds=steps((None, "green"), (2, "yellow"), (4, "red")),
             size=(12, 8)),
        table("Heartbeats by agent", "Heartbeats and uptime of each agent over the whole range.",
              f"SELECT agent_id AS agent, sum(heartbeats) AS heartbeats, {up} AS active_minutes "
              f"FROM {beats} WHERE {ORG} AND {AGENT} GROUP BY 1 ORDER BY 1", size=(24, 8)),
    ]  # fmt: skip
    return dashboard("aeos-damn", "DAMN", "Agent fleet health.", panels, tags=TAGS,
                     variables=[v.org(), v.fleet(), v.agent()])  # fmt: skip


_CHURN_OPS = "('write', 'evict', 'summarize')"


def uce() -> Json:
    """Context engine: operations, context sizes, cache hit ratio, churn."""
    ops = rollup("uce_ops")
    ctx = "spans.attributes->>'uce.context.id'"
    op_name = "spans.attributes->>'uce.operation.name'"
    panels = [
        timeseries("Operations per minute", "UCE context operations by operation name.",
                   f"SELECT {TIME}, operation, {per_minute('sum(op_count)')} AS operations "
                   f"FROM {ops} WHERE {ORG} AND {AGENT} GROUP BY 1, 2 ORDER BY 1", unit="opm",
                   stacked=True),
        timeseries("Context size p50 / p95", "Context size in tokens (uce.context.size_tokens).",
                   f"SELECT {TIME}, {point_quantiles(SIZE_HIST, 'context_size_count', SIZES)} "
                   f"FROM {ops} WHERE {ORG} AND {AGENT} GROUP BY 1 ORDER BY 1", unit="short"),
        timeseries("Cache hit ratio", "Share of context-cache lookups that hit.",
                   f"SELECT {TIME}, {ratio('sum(cache_hits)', 'sum(cache_lookups)')} AS hit_ratio "
                   f"FROM {ops} WHERE {ORG} AND {AGENT} GROUP BY 1 ORDER BY 1",
                   unit="percentunit", thresholds=steps((None, "red"), (0.5, "yellow"),
                                                        (0.8, "green"))),
        stat("Cache hit ratio (range)", "Hits over lookups for the whole range.",
             f"SELECT {ratio('sum(cache_hits)', 'sum(cache_lookups)')} AS hit_ratio FROM {ops} "
             f"WHERE {ORG} AND {AGENT}", unit="percentunit",
             thresholds=steps((None, "red"), (0.5, "yellow"), (0.8, "green")), size=(12, 8)),
        table("Top contexts by churn", "Contexts written, evicted or summarised most often "
              "(raw spans: at most the last 7 days of the range).",
              f"SELECT {ctx} AS context_id, count(*) FILTER (WHERE {op_name} IN {_CHURN_OPS}) "
              "AS churn, count(*) AS operations, max(start_time) AS last_seen FROM spans "
              f"WHERE {ORG} AND subsystem = 'UCE' AND {ctx} IS NOT NULL "
              f"AND {raw_window('start_time')} AND {AGENT} GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 20",
              size=(24, 8)),
    ]  # fmt: skip
    return dashboard("aeos-uce", "UCE", "Context engine operations and cache.", panels,
                     tags=TAGS, variables=[v.org(), v.fleet(), v.agent()])  # fmt: skip


def all_subsystems() -> dict[str, Json]:
    """The subsystem dashboards by file name."""
    return {"mosaic": mosaic(), "damn": damn(), "uce": uce()}
