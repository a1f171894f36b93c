"""Named statements of the trace-query core (``storage.read.traces``).

Relation names are unqualified on purpose: a tenant transaction's search path puts the
``tenant`` schema first, so the same text reads the org's security-barrier views there
and the tables themselves for staff and support (``storage.tenancy.act_as``).

Times leave the database as integer microseconds since the epoch (the column precision),
so no span goes through a ``datetime`` on its way to the Jaeger and OTLP renderers.
Span-level search fragments are joined with AND: they must all hold for one span, as in
Jaeger's search.
"""

from __future__ import annotations

from sqlalchemy import TextClause, text


def _us(column: str) -> str:
    return f"(extract(epoch FROM {column}) * 1000000)::bigint"


SUMMARY_COLUMNS = f"""
    t.org_id, t.trace_id, {_us("t.start_time")} AS start_us, {_us("t.end_time")} AS end_us,
    t.span_count, t.error_count, t.root_service_name, t.root_span_name, t.task_run_id,
    t.sampled, t.spans_pruned_at"""

# serves: pk_traces (tenants: org from the view), ix_traces_trace_id (staff, any org)
SUMMARY_BY_ID = text(f"""
SELECT {SUMMARY_COLUMNS}
FROM traces t
WHERE t.trace_id = :trace_id
  AND (CAST(:org_id AS uuid) IS NULL OR t.org_id = CAST(:org_id AS uuid))
ORDER BY t.start_time DESC
LIMIT 1
""")

# The traces to fetch: their orgs and ids as arrays, and one time window covering them
# all, so that chunk or partition exclusion works on both engines (Promscale's
# trace_query.go bounded its trace fetch the same way). Plain ``= ANY`` conditions on
# constants reach the primary key through the tenant views (security barrier); rows of a
# pair that was not asked for (an id of one org seen in another, for staff) are dropped
# by the caller.
_KEYS = """org_id = ANY(CAST(:orgs AS uuid[])) AND {alias}.trace_id = ANY(CAST(:ids AS bytea[]))
  AND {alias}.{time} >= :lo AND {alias}.{time} <= :hi"""

# serves: pk_spans (org, trace, span, start)
SPANS_OF_TRACES = text(f"""
SELECT s.org_id, s.trace_id, s.span_id, s.parent_span_id, s.trace_state, s.name, s.kind,
       {_us("s.start_time")} AS start_us, {_us("s.end_time")} AS end_us,
       s.status_code, s.status_message, s.subsystem, s.service_name, s.agent_id,
       s.task_run_id, s.gen_ai_operation, s.gen_ai_provider, s.gen_ai_model,
       s.input_tokens, s.output_tokens, s.scope_name, s.attributes::text AS attributes_text,
       s.resource_attributes::text AS resource_text, s.links, s.dropped_attributes_count
FROM spans s
WHERE s.{_KEYS.format(alias="s", time="start_time")}
ORDER BY s.trace_id, s.start_time, s.span_id
""")

# serves: ix_events_org_trace_time (span events and logs of a trace)
EVENTS_OF_TRACES = text(f"""
SELECT e.org_id, e.trace_id, e.span_id, {_us("e.time")} AS time_us, e.event_type, e.severity,
       e.message, e.payload
FROM events e
WHERE e.{_KEYS.format(alias="e", time="time")} AND e.span_id IS NOT NULL
ORDER BY e.time, e.event_id
""")

# serves: pk_cost_line_items (org, trace, span, time)
COSTS_OF_TRACES = text(f"""
SELECT c.org_id, c.trace_id, c.span_id, {_us("c.time")} AS time_us, c.provider, c.model,
       c.tokens_in, c.tokens_out, c.cache_read_tokens, c.cache_creation_tokens, c.cost_usd,
       c.cost_source
FROM cost_line_items c
WHERE c.{_KEYS.format(alias="c", time="time")}
ORDER BY c.time, c.span_id
""")

# serves: pk_task_runs
TASK_RUN = text("""
SELECT r.task_run_id, r.task_id, r.agent_id, r.status, r.trace_id, r.cost_usd,
       r.started_at, r.ended_at, r.duration_ms
FROM task_runs r
WHERE r.task_run_id = :task_run_id
  AND (CAST(:org_id AS uuid) IS NULL OR r.org_id = CAST(:org_id AS uuid))
ORDER BY r.created_at DESC
LIMIT 1
""")

# Services and operations come from the 1 h span rollup: one row per hour and operation
# instead of one per span, and the same answer on both engines.
SERVICES = text("""
SELECT DISTINCT service_name FROM span_red_1h
WHERE bucket >= :since AND service_name <> ''
  AND (CAST(:org_id AS uuid) IS NULL OR org_id = CAST(:org_id AS uuid))
ORDER BY service_name
""")

OPERATIONS = text("""
SELECT DISTINCT operation FROM span_red_1h
WHERE bucket >= :since AND service_name = :service
  AND (CAST(:org_id AS uuid) IS NULL OR org_id = CAST(:org_id AS uuid))
ORDER BY operation
""")

# With a span kind the rollup cannot answer: the service's spans of a shorter window.
# serves: ix_spans_org_service_start
OPERATIONS_WITH_KIND = text("""
SELECT DISTINCT name AS operation, kind FROM spans
WHERE start_time >= :since AND service_name = :service
  AND (CAST(:kind AS smallint) IS NULL OR kind = CAST(:kind AS smallint))
  AND (CAST(:org_id AS uuid) IS NULL OR org_id = CAST(:org_id AS uuid))
ORDER BY operation, kind
""")

# Calls between services: a span whose parent belongs to another service. The parent may
# have started up to an hour before the range (a long request calling out late).
# serves: ix_spans_org_start (children in range), pk_spans (their parents)
DEPENDENCIES = text("""
SELECT p.service_name AS parent, c.service_name AS child, count(*) AS call_count,
       count(*) FILTER (WHERE c.status_code = 2) AS error_count
FROM spans c
JOIN spans p ON p.org_id = c.org_id AND p.trace_id = c.trace_id AND p.span_id = c.parent_span_id
            AND p.start_time >= CAST(:start AS timestamptz) - interval '1 hour'
            AND p.start_time <= c.start_time
WHERE c.start_time >= :start AND c.start_time < :end AND c.parent_span_id IS NOT NULL
  AND p.service_name IS DISTINCT FROM c.service_name
  AND (CAST(:org_id AS uuid) IS NULL OR c.org_id = CAST(:org_id AS uuid))
GROUP BY 1, 2
ORDER BY 1, 2
""")

# Span-level conditions of a search (see storage.read.traces.SpanFilter); each fragment
# names its parameters with the index of the condition it belongs to.
SPAN_CONDITIONS = {
    "service": "s.service_name = :service",
    "operation": "s.name = :operation",
    "min_duration": "s.duration_ms >= :min_span_ms",
    "max_duration": "s.duration_ms <= :max_span_ms",
    "org": "s.org_id = :org_id",
}
ATTRIBUTE_CONDITION = "(s.attributes ->> :k{i} = :v{i} OR s.resource_attributes ->> :k{i} = :v{i})"
COLUMN_CONDITION = "s.{column} = :v{i}"
TRACE_CONDITIONS = {
    "error": "t.error_count > 0",
    "no_error": "t.error_count = 0",
    "min_duration": "t.duration_ms >= :min_trace_ms",
    "max_duration": "t.duration_ms <= :max_trace_ms",
    "org": "t.org_id = :org_id",
    "before": "(t.start_time, t.trace_id) < (:before_start, :before_id)",
}


def trace_search(trace_conditions: list[str], span_conditions: list[str] | None) -> TextClause:
    """The search statement: trace summaries, newest first, ``LIMIT :limit``.

    Without span conditions it reads ``traces`` alone (serves: ix_traces_org_start);
    with them, the traces having a span that meets them all, found among the spans that
    start in the range (serves: ix_spans_org_service_start with a service,
    ix_spans_org_start otherwise) and joined to their summaries.
    """
    where = " AND ".join(trace_conditions) or "true"
    if span_conditions is None:
        return text(f"""
SELECT {SUMMARY_COLUMNS}
FROM traces t
WHERE t.start_time >= :start AND t.start_time < :end AND {where}
ORDER BY t.start_time DESC, t.trace_id DESC
LIMIT :limit""")
    span_where = " AND ".join(["s.start_time >= :start", "s.start_time < :end", *span_conditions])
    return text(f"""
WITH hit AS (SELECT DISTINCT s.org_id, s.trace_id FROM spans s WHERE {span_where})
SELECT {SUMMARY_COLUMNS}
FROM hit JOIN traces t ON t.org_id = hit.org_id AND t.trace_id = hit.trace_id
WHERE {where}
ORDER BY t.start_time DESC, t.trace_id DESC
LIMIT :limit""")
