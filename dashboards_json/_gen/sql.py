"""SQL fragments shared by the panels.

Panels read rollups only through ``<family>_levels`` (migration 0015), keeping the level
``aeos_rollup_level`` picks for the range and ``$__interval``; a panel's points are
grouped with Grafana's ``$__timeGroupAlias``. Rates divide by ``aeos_rollup_seconds``,
the time one point covers at that level and interval.
"""

from __future__ import annotations

from typing import Final

RANGE: Final = "$__timeFrom(), $__timeTo()"
WINDOW: Final = f"{RANGE}, $__interval_ms"
TIME: Final = "$__timeGroupAlias(bucket, $__interval)"
DAY: Final = "$__timeGroupAlias(bucket, 1d)"
SECONDS: Final = f"aeos_rollup_seconds({WINDOW})"
# Drill-down tables read raw rows: never more than this much before the range's end.
RAW_LIMIT: Final = "interval '7 days'"


def rollup(family: str) -> str:
    """The rows of a rollup family at the level the panel's range and interval need.

    A subquery named after the family; the planner flattens it, so the panel's filters
    reach the relation.
    """
    return (
        f"(SELECT * FROM {family}_levels WHERE level = aeos_rollup_level({WINDOW}) "
        f"AND bucket >= aeos_rollup_start({WINDOW}) AND bucket < $__timeTo()) AS {family}"
    )


def cost() -> str:
    """Daily cost rows whose UTC day starts in [day of the range's start, its end)."""
    return (
        "(SELECT * FROM cost_levels WHERE bucket >= date_bin('1 day', $__timeFrom(), "
        "timestamptz '2000-01-01 00:00:00+00') AND bucket < $__timeTo()) AS cost"
    )


def per_second(expr: str) -> str:
    """``expr`` (a sum over one point) as a rate per second."""
    return f"{expr} / {SECONDS}"


def per_minute(expr: str) -> str:
    """``expr`` (a sum over one point) as a rate per minute."""
    return f"{expr} * 60.0 / {SECONDS}"


def ratio(numerator: str, denominator: str) -> str:
    """A share in [0, 1] (NULL when there is nothing to divide by)."""
    return f"{numerator}::float8 / nullif({denominator}, 0)"


P95: Final = {"p95_ms": 0.95}


def point_quantiles(hist: str, count: str, columns: dict[str, float]) -> str:
    """Quantiles of one time point (columns: name -> q; ``count``: the histogram's total).

    A point that is one rollup row ranks within that row's histogram (its only one, so
    ``min``), reading a few buckets; only a point of several rows merges their histograms
    (few rows: ``aeos_hist_merge_agg`` is cheap there, and the plpgsql quantile is what
    costs). Not the views' p-columns: on PostgreSQL those are computed for every row read
    (migration 0020), even the rows of points that merge.
    """
    return ", ".join(
        f"CASE WHEN count(*) = 1 THEN aeos_hist_quantile_n(min({hist}), sum({count})::bigint, "
        f"{q}) ELSE aeos_hist_quantile(aeos_hist_merge_agg({hist}), {q}) END AS {name}"
        for name, q in columns.items()
    )


def quantiles(
    source: str, where: str, keys: dict[str, str], hist: str, columns: dict[str, float]
) -> str:
    """A subquery: per key, quantiles of the histograms merged (within 1 % of exact).

    Merges in linear time: unnests the histograms' elements and sums their counts per
    bucket, then rebuilds one sorted histogram per key (migration 0015 explains why not
    ``aeos_hist_merge_agg``). ``keys`` maps output names to expressions; ``columns`` maps
    output names to quantiles.
    """
    names = "".join(f"{name}, " for name in keys)
    exprs = "".join(f"{expr} AS {name}, " for name, expr in keys.items())
    inner = (
        f"SELECT {exprs}aeos_hist_bucket(e) AS hb, sum(aeos_hist_weight(e)) AS hw "
        f"FROM {source} CROSS JOIN LATERAL unnest({hist}) AS e WHERE {where} "
        f"GROUP BY {names}hb"
    )
    group = f" GROUP BY {names.rstrip(', ')}" if keys else ""
    merged = (
        f"SELECT {names}array_agg(aeos_hist_element(hb, hw) ORDER BY hb) AS h "
        f"FROM ({inner}) AS elements{group}"
    )
    qs = ", ".join(f"aeos_hist_quantile(h, {q}) AS {name}" for name, q in columns.items())
    return f"(SELECT {names}{qs} FROM ({merged}) AS merged)"


def raw_window(column: str) -> str:
    """A raw-row filter: inside the range, and at most :data:`RAW_LIMIT` before its end."""
    return f"$__timeFilter({column}) AND {column} > $__timeTo()::timestamptz - {RAW_LIMIT}"


# Budget of an org: the largest enabled monthly budget rule over all its spend (no filters,
# no group-by). Its amount is ``params.amount_usd`` (storage.alerts.spec.BudgetParams; a
# rule stores the params as written, so a missing period is the default, month).
BUDGET: Final = (
    "(SELECT max((params->>'amount_usd')::numeric) FROM alert_rules WHERE type = 'budget' "
    "AND enabled AND jsonb_typeof(params->'amount_usd') = 'number' "
    "AND coalesce(params->>'period', 'month') = 'month' "
    "AND coalesce(params->'filters', '{}') = '{}' AND coalesce(params->'group_by', '[]') = '[]' "
    "AND org_id IN (${org:sqlstring}))"
)
# Alert instance states (storage.alerts, alerting.states.State), best to worst: a rule's
# state is its worst instance's. Evaluations stored before migration 0014 keep the old
# names ('ok', 'firing'); panels show them under the new ones.
ALERT_STATES: Final = "ARRAY['normal', 'pending', 'no_data', 'error', 'recovering', 'alerting']"
WORST_STATE: Final = f"coalesce(({ALERT_STATES})[max(array_position({ALERT_STATES}, s.state))], '')"
EVALUATION_STATE: Final = (
    "CASE state WHEN 'ok' THEN 'normal' WHEN 'firing' THEN 'alerting' ELSE state END"
)
