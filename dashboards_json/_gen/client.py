"""Client dashboards: one JSON for every org (its login role sees only its own rows)."""

from __future__ import annotations

from dashboards_json._gen import variables as v
from dashboards_json._gen.dashboard import dashboard, url
from dashboards_json._gen.panels import (
    ERROR_RATE,
    Json,
    bargauge,
    piechart,
    stat,
    table,
    timeseries,
)
from dashboards_json._gen.sql import (
    BUDGET,
    DAY,
    EVALUATION_STATE,
    P95,
    TIME,
    WORST_STATE,
    cost,
    per_second,
    point_quantiles,
    quantiles,
    ratio,
    raw_window,
    rollup,
)

ORG = v.ORG_FILTER
TAGS = ["client"]
HIST = "duration_hist"
ERRORS = ratio("sum(error_count)", "sum(span_count)")
PERCENTILES = {"p50_ms": 0.5, "p95_ms": 0.95, "p99_ms": 0.99}
MOSAIC_TRACE = url("aeos-mosaic", "mosaic", "var-org=${org}&var-trace_id=${__data.fields.trace_id}")


def org_overview() -> Json:
    """Requests, errors, latency, cost and agents of one org."""
    red = rollup("org_red")
    spans = rollup("span_red")
    panels = [
        stat("Spans", "Spans received in the range.",
             f"SELECT coalesce(sum(span_count), 0) AS spans FROM {red} WHERE {ORG}", unit="short"),
        stat("Error rate", "Share of spans with status ERROR in the range.",
             f"SELECT coalesce({ratio('sum(error_count)', 'sum(span_count)')}, 0) AS error_rate "
             f"FROM {red} WHERE {ORG}", unit="percentunit", thresholds=ERROR_RATE),
        stat("p95 latency", "95th percentile span duration in the range (within 1 %).",
             f"SELECT p95_ms FROM {quantiles(red, ORG, {}, 'duration_hist', P95)} AS q",
             unit="ms"),
        stat("Cost", "LLM cost of the UTC days the range touches.",
             f"SELECT coalesce(sum(cost_usd), 0)::float8 AS cost_usd FROM {cost()} WHERE {ORG}",
             unit="currencyUSD"),
        timeseries("Spans per second", "Span rate of the org (all subsystems).",
                   f"SELECT {TIME}, {per_second('sum(span_count)')} AS spans FROM {red} "
                   f"WHERE {ORG} GROUP BY 1 ORDER BY 1", unit="reqps"),
        timeseries("Error rate", "Share of spans with status ERROR per point.",
                   f"SELECT {TIME}, {ratio('sum(error_count)', 'sum(span_count)')} AS error_rate "
                   f"FROM {red} WHERE {ORG} GROUP BY 1 ORDER BY 1",
                   unit="percentunit", thresholds=ERROR_RATE),
        timeseries("Latency percentiles", "p50, p95 and p99 span duration per point.",
                   f"SELECT {TIME}, {point_quantiles(HIST, 'span_count', PERCENTILES)} FROM {red} "
                   f"WHERE {ORG} GROUP BY 1 ORDER BY 1", unit="ms"),
        timeseries("Cost per day", "LLM cost per UTC day.",
                   f"SELECT {DAY}, sum(cost_usd)::float8 AS cost_usd FROM {cost()} WHERE {ORG} "
                   "GROUP BY 1 ORDER BY 1", unit="currencyUSD", bars=True),
        table("Agents by status", "How many of the org's agents are online, degraded or offline.",
              f"SELECT status, count(*) AS agents FROM agents WHERE {ORG} GROUP BY 1 ORDER BY 1",
              size=(8, 6)),
        table("Busiest services", "Services with the most spans in the range, with errors and p95.",
              "SELECT c.service, c.spans, c.error_rate, q.p95_ms FROM (SELECT service_name "
              f"AS service, sum(span_count) AS spans, {ERRORS} AS error_rate FROM {spans} "
              f"WHERE {ORG} GROUP BY 1 ORDER BY 2 DESC "
              "LIMIT 10) AS c LEFT JOIN "
              f"{quantiles(spans, ORG, {'service': 'service_name'}, 'duration_hist', P95)} "
              "AS q USING (service) ORDER BY c.spans DESC",
              units={"error_rate": "percentunit", "p95_ms": "ms"},
              thresholds={"error_rate": ERROR_RATE}, size=(16, 6)),
    ]  # fmt: skip
    return dashboard("aeos-org-overview", "Org Overview", "Health and cost of one org at a glance.",
                     panels, tags=TAGS, variables=[v.org()])  # fmt: skip


def agents_fleets() -> Json:
    """Agents and fleets of one org: status, traffic, errors, latency."""
    agent = v.matches("agent_id", "agent")
    red = rollup("span_red")
    panels = [
        table("Agents", "Every agent of the chosen fleets: status, version, last heartbeat.",
              "SELECT agent_id, name, coalesce(fleet_id, '') AS fleet, subsystem, status, "
              "coalesce(version, '') AS version, last_heartbeat_at, last_seen_at FROM agents "
              f"WHERE {ORG} AND {agent} ORDER BY status DESC, agent_id", size=(24, 8)),
        timeseries("Spans per second by agent", "Span rate of each chosen agent.",
                   f"SELECT {TIME}, agent_id AS agent, {per_second('sum(span_count)')} AS spans "
                   f"FROM {red} WHERE {ORG} AND {agent} GROUP BY 1, 2 ORDER BY 1",
                   unit="reqps"),
        timeseries("Errors per second by agent", "Rate of ERROR spans of each chosen agent.",
                   f"SELECT {TIME}, agent_id AS agent, {per_second('sum(error_count)')} AS errors "
                   f"FROM {red} WHERE {ORG} AND {agent} GROUP BY 1, 2 ORDER BY 1",
                   unit="reqps"),
        bargauge("Slowest agents (p95)", "Agents with the highest p95 span duration in the range.",
                 "SELECT agent, p95_ms FROM "
                 f"{quantiles(red, f'{ORG} AND {agent}', {'agent': 'agent_id'}, HIST, P95)} "
                 "AS q ORDER BY 2 DESC NULLS LAST LIMIT 15", unit="ms"),
        table("Fleets", "Each fleet with its agents by status.",
              "SELECT f.fleet_id, f.name, count(a.agent_id) AS agents, "
              "count(*) FILTER (WHERE a.status = 'online') AS online, "
              "count(*) FILTER (WHERE a.status = 'degraded') AS degraded, "
              "count(*) FILTER (WHERE a.status = 'offline') AS offline, f.last_seen_at "
              "FROM fleets f LEFT JOIN agents a ON a.org_id = f.org_id AND a.fleet_id = f.fleet_id "
              f"WHERE f.{ORG} AND {v.matches('f.fleet_id', 'fleet')} "
              "GROUP BY f.fleet_id, f.name, f.last_seen_at ORDER BY f.fleet_id", size=(12, 8)),
    ]  # fmt: skip
    return dashboard("aeos-agents-fleets", "Agents & Fleets", "The org's agents and fleets.",
                     panels, tags=TAGS, variables=[v.org(), v.fleet(), v.agent()])  # fmt: skip


def task_runs() -> Json:
    """A searchable table of task runs; each links to its trace."""
    by_agent = v.matches("coalesce(agent_id, '')", "agent")
    search = "strpos(lower(task_run_id || ' ' || coalesce(task_id, '')), lower('${search}')) > 0"
    panels = [
        table(
            "Task runs",
            "Task runs that started in the range, newest first (at most the last 7 days of "
            "it, 500 rows); type in Search to filter by run or task id. The trace id opens "
            "the run's trace.",
            "SELECT task_run_id, task_id, agent_id, status, started_at, duration_ms, "
            "cost_usd::float8 AS cost_usd, encode(trace_id, 'hex') AS trace_id FROM task_runs "
            f"WHERE {ORG} AND {raw_window('started_at')} AND {v.matches('status', 'status')} "
            f"AND {by_agent} AND {search} "
            "ORDER BY started_at DESC LIMIT 500",
            units={"duration_ms": "ms", "cost_usd": "currencyUSD"},
            links={"trace_id": ("Open trace", MOSAIC_TRACE)},
            size=(24, 16),
        )
    ]
    status = {
        "type": "custom",
        "name": "status",
        "label": "Status",
        "query": "queued,running,succeeded,failed,canceled",
        "multi": True,
        "includeAll": True,
        "allValue": v.ALL,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "options": [],
        "hide": 0,
    }
    search_var = {"type": "textbox", "name": "search", "label": "Search", "query": "",
                  "current": {"text": "", "value": ""}, "hide": 0}  # fmt: skip
    return dashboard("aeos-task-runs", "Task Runs", "Task runs of the org, newest first.", panels,
                     tags=TAGS, variables=[v.org(), v.fleet(), v.agent(), status, search_var],
                     time_from="now-6h")  # fmt: skip


def costs() -> Json:
    """LLM cost by agent, model and subsystem, with the monthly budget."""
    where = (
        f"{ORG} AND {v.matches('agent_id', 'agent')} AND {v.matches('subsystem', 'subsystem')} "
        f"AND {v.matches('model', 'model')}"
    )
    c = cost()
    panels = [
        stat("Cost", "LLM cost of the chosen agents, subsystems and models (UTC days).",
             f"SELECT coalesce(sum(cost_usd), 0)::float8 AS cost_usd FROM {c} WHERE {where}",
             unit="currencyUSD"),
        stat("Calls", "LLM calls.",
             f"SELECT coalesce(sum(calls), 0) AS calls FROM {c} WHERE {where}", unit="short"),
        stat("Input tokens", "Input tokens (including cache reads and writes).",
             f"SELECT coalesce(sum(tokens_in), 0) AS tokens_in FROM {c} WHERE {where}",
             unit="short"),
        stat("Monthly budget", "The org's monthly budget (its largest enabled monthly "
             "budget rule over all its spend).",
             f"SELECT {BUDGET}::float8 AS budget_usd", unit="currencyUSD"),
        timeseries("Month to date against budget",
                   "Cost accumulated since the start of each UTC month, and the monthly budget.",
                   f"SELECT bucket AS time, sum(sum(cost_usd)) OVER (PARTITION BY "
                   "date_trunc('month', bucket AT TIME ZONE 'UTC') ORDER BY bucket)::float8 "
                   f"AS month_to_date, {BUDGET}::float8 AS budget FROM {c} WHERE {where} "
                   "GROUP BY bucket ORDER BY bucket", unit="currencyUSD", size=(24, 8)),
        timeseries("Cost per day by model", "Daily cost of each model.",
                   f"SELECT {DAY}, model, sum(cost_usd)::float8 AS cost_usd FROM {c} "
                   f"WHERE {where} GROUP BY 1, 2 ORDER BY 1", unit="currencyUSD", stacked=True,
                   bars=True),
        bargauge("Cost by agent", "The agents that cost most in the range.",
                 f"SELECT agent_id AS agent, sum(cost_usd)::float8 AS cost_usd FROM {c} "
                 f"WHERE {where} GROUP BY 1 ORDER BY 2 DESC LIMIT 15", unit="currencyUSD"),
        piechart("Cost by subsystem", "Share of cost per AEOS subsystem.",
                 f"SELECT subsystem, sum(cost_usd)::float8 AS cost_usd FROM {c} WHERE {where} "
                 "GROUP BY 1 ORDER BY 2 DESC", unit="currencyUSD"),
        table("Cost by model", "Calls, tokens and cost per provider and model.",
              "SELECT provider, model, sum(calls) AS calls, sum(tokens_in) AS tokens_in, "
              "sum(tokens_out) AS tokens_out, sum(cache_read_tokens) AS cache_read_tokens, "
              f"sum(cost_usd)::float8 AS cost_usd FROM {c} WHERE {where} GROUP BY 1, 2 "
              "ORDER BY cost_usd DESC", units={"cost_usd": "currencyUSD"}, size=(16, 8)),
    ]  # fmt: skip
    return dashboard("aeos-costs", "Costs", "LLM spend of the org.", panels, tags=TAGS,
                     variables=[v.org(), v.fleet(), v.agent(), v.subsystem(), v.model()],
                     time_from="now-30d")  # fmt: skip


def alerts() -> Json:
    """Alert rules, their instances' states and history, and the in-app inbox."""
    panels = [
        stat("Firing", "Alert instances firing now (a rule has one instance per label set).",
             f"SELECT count(*) AS firing FROM alert_states WHERE {ORG} AND is_firing",
             unit="short", thresholds=_FIRING),
        stat("Unread notifications", "Notifications in the inbox not yet read.",
             f"SELECT count(*) AS unread FROM notifications WHERE {ORG} AND read_at IS NULL",
             unit="short"),
        table("Rules", "Every alert rule: its worst instance state and how many instances "
              "fire, firing first.",
              f"SELECT r.name, r.type, r.severity, r.enabled, {WORST_STATE} AS state, "
              "count(*) FILTER (WHERE s.is_firing) AS firing, count(s.rule_id) AS instances, "
              "max(s.last_changed_at) AS last_changed_at, "
              "max(s.last_evaluated_at) AS last_evaluated_at FROM alert_rules r "
              "LEFT JOIN alert_states s ON s.org_id = r.org_id AND s.rule_id = r.id "
              f"WHERE r.{ORG} GROUP BY r.id, r.name, r.type, r.severity, r.enabled "
              "ORDER BY firing DESC, r.name", size=(24, 8)),
        table("Instances", "Rule instances not normal (pending, firing, recovering, no data, "
              "error), firing first (200 rows).",
              "SELECT r.name AS rule, s.labels::text AS labels, s.state, s.is_firing AS firing, "
              "s.last_value, s.active_at, s.fired_at, s.reason FROM alert_states s "
              "JOIN alert_rules r ON r.id = s.rule_id "
              f"WHERE s.{ORG} AND s.state <> 'normal' "
              "ORDER BY s.is_firing DESC, s.fired_at DESC NULLS LAST, r.name LIMIT 200",
              size=(24, 8)),
        timeseries("Evaluations by state", "Rule evaluations per point, by the rule's "
                   "resulting state.",
                   f"SELECT $__timeGroupAlias(time, $__interval), {EVALUATION_STATE} AS state, "
                   f"count(*) AS evaluations FROM alert_evaluations WHERE {ORG} "
                   "AND $__timeFilter(time) GROUP BY 1, 2 ORDER BY 1", unit="short",
                   stacked=True, bars=True),
        table("Notifications", "The newest notifications in the range (200 rows).",
              "SELECT created_at, type, severity, title, read_at FROM notifications "
              f"WHERE {ORG} AND $__timeFilter(created_at) ORDER BY created_at DESC LIMIT 200",
              size=(12, 8)),
    ]  # fmt: skip
    return dashboard("aeos-alerts", "Alerts & Notifications", "Alert rules and the org's inbox.",
                     panels, tags=TAGS, variables=[v.org()], time_from="now-7d")  # fmt: skip


_FIRING = {"mode": "absolute", "steps": [{"color": "green", "value": None},
                                         {"color": "red", "value": 1}]}  # fmt: skip


def all_client() -> dict[str, Json]:
    """The client dashboards by file name."""
    return {
        "org-overview": org_overview(),
        "agents-fleets": agents_fleets(),
        "task-runs": task_runs(),
        "costs": costs(),
        "alerts-notifications": alerts(),
    }
