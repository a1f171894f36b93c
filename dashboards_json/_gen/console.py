"""The ALIAS console: staff dashboards across every org (a cross-org read-only login)."""

from __future__ import annotations

from dashboards_json._gen import variables as v
from dashboards_json._gen.dashboard import dashboard, link_to, url
from dashboards_json._gen.panels import (
    ERROR_RATE,
    UPTIME,
    Json,
    bargauge,
    stat,
    steps,
    table,
    timeseries,
)
from dashboards_json._gen.sql import (
    EVALUATION_STATE,
    P95,
    SECONDS,
    TIME,
    cost,
    per_second,
    quantiles,
    ratio,
    rollup,
)

TAGS = ["console"]
OPERATION_KEYS = {"subsystem": "subsystem", "service": "service_name", "operation": "operation"}
ORGS = v.matches("org_id::text", "orgs")
ORG_EXPLORER = url("aeos-org-explorer", "org-explorer", "var-org=${__data.fields.org_id}")
FIRING = steps((None, "green"), (1, "red"))
UNHEALTHY = steps((None, "green"), (1, "yellow"), (5, "red"))


def orgs_variable() -> Json:
    """Several orgs (staff), "All" by default."""
    var = v.org()
    var.update(name="orgs", label="Orgs", multi=True, includeAll=True, allValue=v.ALL,
               current={"selected": True, "text": ["All"], "value": ["$__all"]})  # fmt: skip
    return var


def global_overview() -> Json:
    """The whole platform, and which org is unhealthy."""
    red = rollup("platform_red")
    health = f"""
WITH red AS (SELECT org_id, sum(span_count) AS spans, sum(error_count) AS errors
               FROM {rollup("org_red")} GROUP BY org_id),
     p95 AS {quantiles(rollup("org_red"), "true", {"org_id": "org_id"}, "duration_hist", P95)},
     spend AS (SELECT org_id, sum(cost_usd) AS cost_usd FROM {cost()} GROUP BY org_id),
     fleet AS (SELECT org_id, count(*) AS agents,
                      count(*) FILTER (WHERE status <> 'online') AS agents_unhealthy
                 FROM agents GROUP BY org_id),
     firing AS (SELECT org_id, count(*) AS alerts_firing FROM alert_states
                 WHERE is_firing GROUP BY org_id)
SELECT o.id::text AS org_id, o.name AS org, o.plan, coalesce(red.spans, 0) AS spans,
       coalesce({ratio("red.errors", "red.spans")}, 0) AS error_rate, p95.p95_ms,
       coalesce(spend.cost_usd, 0)::float8 AS cost_usd, coalesce(fleet.agents, 0) AS agents,
       coalesce(fleet.agents_unhealthy, 0) AS agents_unhealthy,
       coalesce(firing.alerts_firing, 0) AS alerts_firing
  FROM orgs o LEFT JOIN red ON red.org_id = o.id LEFT JOIN p95 ON p95.org_id = o.id
  LEFT JOIN spend ON spend.org_id = o.id
  LEFT JOIN fleet ON fleet.org_id = o.id LEFT JOIN firing ON firing.org_id = o.id
 ORDER BY alerts_firing DESC, error_rate DESC, agents_unhealthy DESC, o.name"""
    panels = [
        stat("Spans", "Spans of all orgs in the range.",
             f"SELECT coalesce(sum(span_count), 0) AS spans FROM {red}", unit="short"),
        stat("Error rate", "Share of ERROR spans, all orgs.",
             f"SELECT coalesce({ratio('sum(error_count)', 'sum(span_count)')}, 0) AS error_rate "
             f"FROM {red}", unit="percentunit", thresholds=ERROR_RATE),
        stat("p95 latency", "95th percentile span duration, all orgs.",
             f"SELECT p95_ms FROM {quantiles(red, 'true', {}, 'duration_hist', P95)} AS q",
             unit="ms"),
        stat("Alerts firing", "Alert instances firing now, all orgs.",
             "SELECT count(*) AS firing FROM alert_states WHERE is_firing", unit="short",
             thresholds=FIRING),
        table("Orgs by health", "Every org, the least healthy first (alert instances firing, "
              "error rate, agents not online). The org id opens the Org Explorer.", health,
              units={"error_rate": "percentunit", "p95_ms": "ms", "cost_usd": "currencyUSD"},
              links={"org_id": ("Org Explorer", ORG_EXPLORER), "org": ("Org Explorer",
                     ORG_EXPLORER)},
              thresholds={"error_rate": ERROR_RATE, "alerts_firing": FIRING,
                          "agents_unhealthy": UNHEALTHY}, size=(24, 10)),
        timeseries("Spans per second", "Span rate of the whole platform.",
                   f"SELECT {TIME}, {per_second('sum(span_count)')} AS spans FROM {red} "
                   "GROUP BY 1 ORDER BY 1", unit="reqps"),
        timeseries("Error rate", "Share of ERROR spans per point, all orgs.",
                   f"SELECT {TIME}, {ratio('sum(error_count)', 'sum(span_count)')} AS error_rate "
                   f"FROM {red} GROUP BY 1 ORDER BY 1", unit="percentunit",
                   thresholds=ERROR_RATE),
    ]  # fmt: skip
    return dashboard("aeos-global-overview", "Global Overview",
                     "All orgs: traffic, errors, latency, and which org is unhealthy.", panels,
                     tags=TAGS, variables=[])  # fmt: skip


def org_explorer() -> Json:
    """One org seen by staff, with the way to its client dashboards."""
    org = v.ORG_FILTER
    spans = rollup("span_red")
    panels = [
        timeseries("Spans per second by subsystem", "The org's span rate per AEOS subsystem.",
                   f"SELECT {TIME}, subsystem, {per_second('sum(span_count)')} AS spans "
                   f"FROM {spans} WHERE {org} GROUP BY 1, 2 ORDER BY 1", unit="reqps",
                   stacked=True),
        timeseries("Error rate by subsystem", "Share of ERROR spans per subsystem.",
                   f"SELECT {TIME}, subsystem, {ratio('sum(error_count)', 'sum(span_count)')} "
                   f"AS error_rate FROM {spans} WHERE {org} GROUP BY 1, 2 ORDER BY 1",
                   unit="percentunit", thresholds=ERROR_RATE),
        table("Operations with most errors", "The org's operations by errors in the range.",
              "SELECT c.subsystem, c.service, c.operation, c.spans, c.errors, c.error_rate, "
              "q.p95_ms FROM (SELECT subsystem, service_name AS service, operation, "
              f"sum(span_count) AS spans, sum(error_count) AS errors, "
              f"{ratio('sum(error_count)', 'sum(span_count)')} AS error_rate FROM {spans} "
              f"WHERE {org} GROUP BY 1, 2, 3 ORDER BY 5 DESC, 4 DESC LIMIT 20) AS c LEFT JOIN "
              f"{quantiles(spans, org, OPERATION_KEYS, 'duration_hist', P95)} AS q "
              "USING (subsystem, service, operation) ORDER BY c.errors DESC, c.spans DESC",
              units={"error_rate": "percentunit", "p95_ms": "ms"},
              thresholds={"error_rate": ERROR_RATE}, size=(24, 9)),
        table("Agents not online", "The org's degraded and offline agents.",
              "SELECT agent_id, name, coalesce(fleet_id, '') AS fleet, status, version, "
              f"last_heartbeat_at FROM agents WHERE {org} AND status <> 'online' "
              "ORDER BY last_heartbeat_at NULLS FIRST LIMIT 100", size=(12, 8)),
        stat("Cost", "The org's LLM cost (UTC days of the range).",
             f"SELECT coalesce(sum(cost_usd), 0)::float8 AS cost_usd FROM {cost()} WHERE {org}",
             unit="currencyUSD", size=(12, 8)),
    ]  # fmt: skip
    links = [
        link_to("aeos-org-overview", "org-overview", "Org Overview", "var-org=${org}"),
        link_to("aeos-agents-fleets", "agents-fleets", "Agents & Fleets", "var-org=${org}"),
        link_to("aeos-costs", "costs", "Costs", "var-org=${org}"),
    ]
    return dashboard("aeos-org-explorer", "Org Explorer", "One org in depth (staff).", panels,
                     tags=TAGS, variables=[v.org()], links=links)  # fmt: skip


def fleet_explorer() -> Json:
    """Fleets of every org: status, uptime, versions."""
    beats = rollup("damn_heartbeats")
    up = "sum(active_minutes) FILTER (WHERE status <> 'offline')"
    panels = [
        table("Fleets", "Every fleet of the chosen orgs with agents by status and versions.",
              "SELECT o.name AS org, a.org_id::text AS org_id, coalesce(a.fleet_id, '') AS fleet, "
              "count(*) AS agents, count(*) FILTER (WHERE a.status = 'online') AS online, "
              "count(*) FILTER (WHERE a.status = 'degraded') AS degraded, "
              "count(*) FILTER (WHERE a.status = 'offline') AS offline, "
              "count(DISTINCT a.version) AS versions, max(a.last_heartbeat_at) AS last_heartbeat "
              "FROM agents a JOIN orgs o ON o.id = a.org_id "
              f"WHERE {v.matches('a.org_id::text', 'orgs')} GROUP BY 1, 2, 3 "
              "ORDER BY offline DESC, degraded DESC, 1, 3",
              links={"org": ("Org Explorer", ORG_EXPLORER)},
              thresholds={"offline": UNHEALTHY}, size=(24, 10)),
        timeseries("Heartbeat uptime by org", "Share of agent-minutes with a heartbeat that was "
                   "not 'offline', per org.",
                   f"SELECT {TIME}, org_id::text AS org, least(1.0, coalesce({up}, 0) * 60.0 / "
                   f"{SECONDS} / nullif(count(DISTINCT agent_id), 0)) AS uptime FROM {beats} "
                   f"WHERE {ORGS} GROUP BY 1, 2 ORDER BY 1", unit="percentunit",
                   thresholds=UPTIME),
        bargauge("Versions in use", "Agents per service.version, all chosen orgs.",
                 "SELECT coalesce(version, '(unknown)') AS version, count(*) AS agents "
                 f"FROM agents WHERE {ORGS} GROUP BY 1 ORDER BY 2 DESC LIMIT 20", unit="short"),
    ]  # fmt: skip
    return dashboard("aeos-fleet-explorer", "Fleet Explorer", "Agent fleets across orgs.",
                     panels, tags=TAGS, variables=[orgs_variable()])  # fmt: skip


def anomalies() -> Json:
    """Alerts firing and alert history across orgs."""
    panels = [
        stat("Alerts firing", "Alert instances firing now in the chosen orgs.",
             f"SELECT count(*) AS firing FROM alert_states WHERE is_firing AND {ORGS}",
             unit="short", thresholds=FIRING),
        stat("Anomaly rules", "Enabled anomaly rules in the chosen orgs.",
             f"SELECT count(*) AS rules FROM alert_rules WHERE type = 'anomaly' AND enabled "
             f"AND {ORGS}", unit="short"),
        table("Incidents (firing now)", "Alert instances firing now (one per rule and label "
              "set), the longest firing first.",
              "SELECT o.name AS org, s.org_id::text AS org_id, r.name AS rule, "
              "s.labels::text AS labels, r.type, r.severity, s.state, s.last_value, s.fired_at, "
              "s.last_changed_at FROM alert_states s "
              "JOIN alert_rules r ON r.id = s.rule_id JOIN orgs o ON o.id = s.org_id "
              f"WHERE s.is_firing AND {v.matches('s.org_id::text', 'orgs')} "
              "ORDER BY s.fired_at NULLS LAST, r.name LIMIT 200",
              links={"org": ("Org Explorer", ORG_EXPLORER)}, size=(24, 9)),
        timeseries("Evaluations by state", "Rule evaluations per point by state, chosen orgs.",
                   f"SELECT $__timeGroupAlias(time, $__interval), {EVALUATION_STATE} AS state, "
                   "count(*) AS evaluations "
                   f"FROM alert_evaluations WHERE $__timeFilter(time) AND {ORGS} "
                   "GROUP BY 1, 2 ORDER BY 1", unit="short", stacked=True, bars=True),
        timeseries("Notifications by severity", "Notifications created per point, by severity.",
                   "SELECT $__timeGroupAlias(created_at, $__interval), severity, "
                   f"count(*) AS notifications FROM notifications WHERE $__timeFilter(created_at) "
                   f"AND {ORGS} GROUP BY 1, 2 ORDER BY 1", unit="short", stacked=True,
                   bars=True),
    ]  # fmt: skip
    return dashboard("aeos-anomalies", "Anomalies & Incidents",
                     "What is firing, and the alert history, across orgs.", panels, tags=TAGS,
                     variables=[orgs_variable()], time_from="now-7d")  # fmt: skip


def platform_health() -> Json:
    """The receivers and the periodic jobs."""
    ph = "$__timeGroupAlias(time, $__interval)"
    per_s = "greatest($__interval_ms / 1000.0, 60)"
    panels = [
        timeseries("Items accepted per second", "Spans, log records and points the receivers "
                   "stored, per signal.",
                   f"SELECT {ph}, signal, sum(accepted) / {per_s} AS accepted FROM platform_health "
                   "WHERE $__timeFilter(time) GROUP BY 1, 2 ORDER BY 1", unit="short"),
        timeseries("Items refused or rejected per second", "Refused (overload, retry later) and "
                   "rejected (bad items) per second.",
                   f"SELECT {ph}, sum(refused) / {per_s} AS refused, sum(rejected) / {per_s} "
                   "AS rejected FROM platform_health WHERE $__timeFilter(time) GROUP BY 1 "
                   "ORDER BY 1", unit="short", thresholds=steps((None, "green"), (1, "red"))),
        timeseries("Commit latency", "Mean and worst group-commit time of the ingest writers.",
                   f"SELECT {ph}, sum(commit_seconds_sum) / nullif(sum(commits), 0) AS mean_s, "
                   "max(commit_seconds_max) AS max_s FROM platform_health "
                   "WHERE $__timeFilter(time) GROUP BY 1 ORDER BY 1", unit="s"),
        timeseries("Queued items", "Most items waiting for a commit in one receiver process.",
                   f"SELECT {ph}, instance, max(queue_items) AS queued FROM platform_health "
                   "WHERE $__timeFilter(time) GROUP BY 1, 2 ORDER BY 1", unit="short"),
        table("Periodic jobs", "Each job's latest run and its failures in the range.",
              "SELECT job, max(started_at) AS last_started, "
              "count(*) FILTER (WHERE status = 'failed') AS failures, count(*) AS runs "
              "FROM scheduler_runs WHERE $__timeFilter(started_at) GROUP BY 1 ORDER BY 1",
              thresholds={"failures": FIRING}, size=(24, 7)),
    ]  # fmt: skip
    return dashboard("aeos-platform-health", "Platform Health", "Receivers and jobs.", panels,
                     tags=TAGS, variables=[], time_from="now-6h")  # fmt: skip


def all_console() -> dict[str, Json]:
    """The console dashboards by file name."""
    return {
        "global-overview": global_overview(),
        "org-explorer": org_explorer(),
        "fleet-explorer": fleet_explorer(),
        "anomalies-incidents": anomalies(),
        "platform-health": platform_health(),
    }
