"""Every runtime statement of alerting, by name (procrastinate's habit: one place).

Measure queries are built from whitelisted identifiers only (the validated specs of
``storage.alerts.spec``); every value is a bind parameter.
"""

from __future__ import annotations

from sqlalchemy import TextClause, text

# --- evaluation claim (worker) -------------------------------------------------------
#: Due rules, locked for this transaction; others skip them (several processes). Oldest
#: first, then by org: a batch then spans few orgs, one tenant transaction each.
CLAIM_DUE_RULES = text(
    "SELECT id, org_id, name, type, severity, scope, params, interval_s, for_s, "
    "keep_firing_for_s, no_data_state, error_state, labels, annotations, next_eval_at "
    "FROM alert_rules WHERE enabled AND (next_eval_at IS NULL OR next_eval_at <= :now) "
    "ORDER BY next_eval_at NULLS FIRST, org_id, id LIMIT :limit FOR UPDATE SKIP LOCKED"
)
SET_NEXT_EVAL = text("UPDATE alert_rules SET next_eval_at = :next WHERE id = :id")

# --- instance state (worker) ---------------------------------------------------------
SELECT_STATES = text(
    "SELECT rule_id, fingerprint, labels, state, is_firing, active_at, fired_at, "
    "breach_ended_at, resolved_at, last_value, missed, reason "
    "FROM alert_states WHERE rule_id = ANY(:rule_ids)"
)
UPSERT_STATE = text(
    "INSERT INTO alert_states (org_id, rule_id, fingerprint, labels, state, is_firing, "
    "last_evaluated_at, last_changed_at, last_value, active_at, fired_at, breach_ended_at, "
    "resolved_at, missed, reason) VALUES (:org_id, :rule_id, :fingerprint, "
    "CAST(:labels AS jsonb), :state, :is_firing, :now, :now, :last_value, :active_at, "
    ":fired_at, :breach_ended_at, :resolved_at, :missed, :reason) "
    "ON CONFLICT (org_id, rule_id, fingerprint) DO UPDATE SET labels = EXCLUDED.labels, "
    "last_changed_at = CASE WHEN alert_states.state = EXCLUDED.state "
    "THEN alert_states.last_changed_at ELSE EXCLUDED.last_changed_at END, "
    "state = EXCLUDED.state, is_firing = EXCLUDED.is_firing, "
    "last_evaluated_at = EXCLUDED.last_evaluated_at, last_value = EXCLUDED.last_value, "
    "active_at = EXCLUDED.active_at, fired_at = EXCLUDED.fired_at, "
    "breach_ended_at = EXCLUDED.breach_ended_at, resolved_at = EXCLUDED.resolved_at, "
    "missed = EXCLUDED.missed, reason = EXCLUDED.reason"
)
DELETE_STATE = text(
    "DELETE FROM alert_states WHERE org_id = :org_id AND rule_id = :rule_id "
    "AND fingerprint = :fingerprint"
)
INSERT_EVALUATION = text(
    "INSERT INTO alert_evaluations (org_id, rule_id, time, state, value, details) "
    "VALUES (:org_id, :rule_id, :time, :state, :value, CAST(:details AS jsonb)) "
    "ON CONFLICT (org_id, rule_id, time) DO NOTHING"
)

# --- notification stage (worker) -----------------------------------------------------
MARK_GROUP_CHANGED = text(
    "INSERT INTO alert_groups (org_id, rule_id, first_change_at, next_flush_at) "
    "VALUES (:org_id, :rule_id, :now, :now + make_interval(secs => :group_wait)) "
    "ON CONFLICT (org_id, rule_id) DO UPDATE SET "
    "first_change_at = coalesce(alert_groups.first_change_at, EXCLUDED.first_change_at), "
    "next_flush_at = CASE WHEN alert_groups.last_flush_at IS NULL "
    "THEN coalesce(alert_groups.next_flush_at, EXCLUDED.next_flush_at) "
    "ELSE greatest(least(coalesce(alert_groups.next_flush_at, 'infinity'), "
    "alert_groups.last_flush_at + make_interval(secs => :group_interval)), :now) END"
)
CLAIM_DUE_GROUPS = text(
    "SELECT g.org_id, g.rule_id, g.last_flush_at, g.last_digest, r.name, r.severity, r.type, "
    "r.labels AS rule_labels, r.annotations FROM alert_groups g "
    "JOIN alert_rules r ON r.id = g.rule_id "
    "WHERE g.next_flush_at <= :now ORDER BY g.next_flush_at LIMIT :limit "
    "FOR UPDATE OF g SKIP LOCKED"
)
#: ``last_flush_at`` is the last time the group was notified (timers count from it).
FLUSH_GROUP = text(
    "UPDATE alert_groups SET last_flush_at = CASE WHEN :notified THEN :now "
    "ELSE last_flush_at END, last_digest = :digest, first_change_at = NULL, "
    "next_flush_at = :next WHERE org_id = :org_id AND rule_id = :rule_id"
)
SELECT_GROUP_INSTANCES = text(
    "SELECT fingerprint, labels, state, is_firing, fired_at, resolved_at, last_value, reason "
    "FROM alert_states WHERE rule_id = :rule_id AND (is_firing OR resolved_at > :since)"
)
ACTIVE_SILENCES = text(
    "SELECT rule_id, matchers FROM alert_silences WHERE org_id = :org_id "
    "AND starts_at <= :now AND ends_at > :now"
)
INSERT_NOTIFICATION = text(
    "INSERT INTO notifications (org_id, type, severity, title, body, rule_id, dedup_key, "
    "labels, details, created_at) VALUES (:org_id, :type, :severity, :title, :body, :rule_id, "
    ":dedup_key, CAST(:labels AS jsonb), CAST(:details AS jsonb), :now) "
    "ON CONFLICT (org_id, dedup_key) DO NOTHING RETURNING id"
)
MATCHING_ENDPOINTS = text(
    "SELECT id, kind, route FROM notification_endpoints WHERE org_id = :org_id AND enabled"
)
#: A test notification for one endpoint (``POST /v1/notification-endpoints/{id}/test``).
INSERT_TEST_DELIVERY = text(
    "WITH n AS (INSERT INTO notifications (org_id, type, severity, title, body, dedup_key, "
    "created_at) SELECT org_id, 'test', 'info', 'Test notification from AEOS', "
    "'This is a test of the endpoint ' || coalesce(nullif(name, ''), kind) || '.', "
    "'test:' || gen_random_uuid(), :now FROM notification_endpoints WHERE id = :endpoint_id "
    "RETURNING id, org_id) INSERT INTO webhook_deliveries (org_id, endpoint_id, "
    "notification_id, next_attempt_at, created_at) SELECT n.org_id, :endpoint_id, n.id, :now, "
    ":now FROM n RETURNING id, webhook_id"
)
INSERT_DELIVERY = text(
    "INSERT INTO webhook_deliveries (org_id, endpoint_id, notification_id, next_attempt_at, "
    "created_at) VALUES (:org_id, :endpoint_id, :notification_id, :now, :now) "
    "ON CONFLICT (endpoint_id, notification_id) DO NOTHING"
)
INSERT_BUDGET_MARK = text(
    "INSERT INTO alert_budget_marks (org_id, rule_id, period, step, created_at) "
    "VALUES (:org_id, :rule_id, :period, :step, :now) ON CONFLICT DO NOTHING RETURNING step"
)

# --- delivery stage (worker) ---------------------------------------------------------
#: Due deliveries; the claim moves them a lease ahead so a crashed sender's are retried.
CLAIM_DUE_DELIVERIES = text(
    "WITH due AS (SELECT d.id FROM webhook_deliveries d "
    "WHERE d.status = 'pending' AND d.next_attempt_at <= :now "
    "ORDER BY d.next_attempt_at LIMIT :limit FOR UPDATE SKIP LOCKED) "
    "UPDATE webhook_deliveries d SET next_attempt_at = :now + make_interval(secs => :lease) "
    "FROM due WHERE d.id = due.id RETURNING d.id"
)
SELECT_DELIVERY = text(
    "SELECT d.id, d.org_id, d.webhook_id, d.attempts, d.created_at, n.id AS notification_id, "
    "n.type, n.severity, "
    "n.title, n.body, n.rule_id, n.labels, n.details, n.created_at AS notified_at, "
    "e.id AS endpoint_id, e.kind, e.url, e.email, e.secret, e.previous_secret, "
    "e.previous_secret_until, e.format, e.enabled, e.failing_since, e.name AS endpoint_name "
    "FROM webhook_deliveries d JOIN notifications n ON n.id = d.notification_id "
    "JOIN notification_endpoints e ON e.id = d.endpoint_id WHERE d.id = ANY(:ids)"
)
RECORD_ATTEMPT = text(
    "UPDATE webhook_deliveries SET attempts = attempts + 1, status = :status, "
    "response_code = :code, error = :error, last_attempt_at = :now, "
    "next_attempt_at = :next, delivered_at = CASE WHEN :status = 'delivered' THEN :now END "
    "WHERE id = :id"
)
ENDPOINT_OK = text(
    "UPDATE notification_endpoints SET failing_since = NULL WHERE id = :id "
    "AND failing_since IS NOT NULL"
)
ENDPOINT_FAILING = text(
    "UPDATE notification_endpoints SET failing_since = coalesce(failing_since, :now) "
    "WHERE id = :id RETURNING failing_since"
)
DISABLE_ENDPOINT = text(
    "UPDATE notification_endpoints SET enabled = false, disabled_reason = :reason, "
    "updated_at = :now WHERE id = :id AND enabled RETURNING name, kind"
)
FAIL_PENDING_OF_ENDPOINT = text(
    "UPDATE webhook_deliveries SET status = 'failed', error = :reason, next_attempt_at = NULL "
    "WHERE endpoint_id = :id AND status = 'pending'"
)


# --- measures (scoped readers) -------------------------------------------------------
#: Percentiles of the merged duration histograms (1 % relative error, ``storage.hist``);
#: only the one a rule asks for is computed (merging histograms costs most of a query).
QUANTILES = {"duration_p50_ms": 0.5, "duration_p95_ms": 0.95, "duration_p99_ms": 0.99}


def _quantile(measure: str) -> str:
    q = QUANTILES.get(measure)
    if q is None:
        return "NULL::double precision AS quantile"
    return f"aeos_hist_quantile(aeos_hist_merge_agg(duration_hist), {q}) AS quantile"


def span_aggregate(
    relation: str, dims: list[str], filters: list[str], org: bool, measure: str
) -> TextClause:
    """Span totals per group over [start, end) of a RED rollup (identifiers pre-checked)."""
    where = ["bucket >= :start", "bucket < :end"]
    if org:
        where.append("org_id = :org_id")
    where += [f"{d} = :f_{d}" for d in filters]
    cols = "".join(f"{d}, " for d in dims)
    group = f" GROUP BY {', '.join(dims)}" if dims else ""
    return text(
        f"SELECT {cols}sum(span_count)::bigint AS span_count, "
        "sum(error_count)::bigint AS error_count, sum(duration_sum_ms) AS duration_sum_ms, "
        "max(duration_max_ms) AS duration_max_ms, "
        f"{_quantile(measure)} "
        f"FROM {relation} WHERE {' AND '.join(where)}{group}"
    )


def metric_aggregate(dims: list[str], filters: list[str]) -> TextClause:
    """Metric totals per group over [start, end) of ``metric_rollup_1m``."""
    exprs = [_metric_dim(d, f"g{i}") for i, d in enumerate(dims)]
    where = ["bucket >= :start", "bucket < :end", "org_id = :org_id", "metric = :metric"]
    where += [f"{_metric_dim(d, f'f{i}')} = :fv{i}" for i, d in enumerate(filters)]
    cols = "".join(f"{e} AS d{i}, " for i, e in enumerate(exprs))
    group = f" GROUP BY {', '.join(exprs)}" if exprs else ""
    return text(
        f"SELECT {cols}sum(sum) AS metric_sum, sum(observations)::bigint AS metric_count, "
        "min(min) AS metric_min, max(max) AS metric_max, "
        "(array_agg(last ORDER BY last_time DESC NULLS LAST))[1] AS metric_last "
        f"FROM metric_rollup_1m WHERE {' AND '.join(where)}{group}"
    )


def _metric_dim(dim: str, param: str) -> str:
    if dim.startswith("dimension:"):
        return f"coalesce(dimensions->>:{param}, '')"
    return dim


def cost_by_group(dims: list[str], filters: list[str]) -> TextClause:
    """Spend per group over [start, end) days of ``cost_daily``."""
    where = ["bucket >= :start", "bucket < :end", "org_id = :org_id"]
    where += [f"{d} = :f_{d}" for d in filters]
    cols = "".join(f"{d}, " for d in dims)
    group = f" GROUP BY {', '.join(dims)}" if dims else ""
    return text(
        f"SELECT {cols}coalesce(sum(cost_usd), 0)::double precision AS spend "
        f"FROM cost_daily WHERE {' AND '.join(where)}{group}"
    )


#: Last activity (heartbeat or span) per known agent, over a bounded look-back.
AGENT_ACTIVITY = text(
    "WITH seen AS ("
    " SELECT agent_id, max(bucket) AS last FROM damn_heartbeats_1m"
    " WHERE org_id = :org_id AND bucket >= :since AND bucket < :end GROUP BY agent_id"
    " UNION ALL SELECT agent_id, max(bucket) FROM span_red_1m"
    " WHERE org_id = :org_id AND bucket >= :since AND bucket < :end AND agent_id <> ''"
    " GROUP BY agent_id),"
    " status AS (SELECT DISTINCT ON (agent_id) agent_id, status FROM damn_heartbeats_1m"
    " WHERE org_id = :org_id AND bucket >= :since AND bucket < :end"
    " ORDER BY agent_id, bucket DESC)"
    " SELECT a.agent_id, coalesce(a.fleet_id, '') AS fleet_id,"
    " max(s.last) + interval '1 minute' AS last_seen, min(st.status) AS status"
    " FROM agents a LEFT JOIN seen s ON s.agent_id = a.agent_id"
    " LEFT JOIN status st ON st.agent_id = a.agent_id"
    " WHERE a.org_id = :org_id AND (CAST(:agent AS text) IS NULL OR a.agent_id = :agent)"
    " AND (CAST(:fleet AS text) IS NULL OR a.fleet_id = :fleet)"
    " GROUP BY a.agent_id, a.fleet_id"
)
METRIC_LAST_SEEN = text(
    "SELECT max(bucket) + interval '1 minute' FROM metric_rollup_1m "
    "WHERE org_id = :org_id AND metric = :metric AND bucket >= :since AND bucket < :end"
)


def span_series(relation: str, org: bool, step: str, measure: str) -> TextClause:
    """Span totals per ``step`` bucket over [start, end) (anomaly rules)."""
    where = "bucket >= :start AND bucket < :end" + (" AND org_id = :org_id" if org else "")
    return text(
        f"SELECT time_bucket_compat AS b, sum(span_count)::bigint AS span_count, "
        "sum(error_count)::bigint AS error_count, sum(duration_sum_ms) AS duration_sum_ms, "
        "max(duration_max_ms) AS duration_max_ms, "
        f"{_quantile(measure)} "
        f"FROM {relation} WHERE {where} GROUP BY 1 ORDER BY 1".replace(
            "time_bucket_compat", f"date_trunc('{step}', bucket)"
        )
    )


def metric_series(step: str) -> TextClause:
    """Metric totals per ``step`` bucket over [start, end) (anomaly rules)."""
    relation = "metric_rollup_1m" if step == "minute" else "metric_rollup_1h"
    return text(
        f"SELECT date_trunc('{step}', bucket) AS b, sum(sum) AS metric_sum, "
        "sum(observations)::bigint AS metric_count, min(min) AS metric_min, "
        "max(max) AS metric_max, "
        "(array_agg(last ORDER BY last_time DESC NULLS LAST))[1] AS metric_last "
        f"FROM {relation} WHERE org_id = :org_id AND metric = :metric "
        "AND bucket >= :start AND bucket < :end GROUP BY 1 ORDER BY 1"
    )
