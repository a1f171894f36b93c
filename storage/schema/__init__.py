"""The whole data model as SQLAlchemy Core metadata, plus facts the migrations need.

Relation names and columns are the same on both storage engines; what differs (hypertables
or native partitions) is described by ``PARTITIONED`` and applied by the migrations.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import CheckConstraint

from storage.schema._alerting import (
    alert_budget_marks,
    alert_evaluations,
    alert_groups,
    alert_rules,
    alert_silences,
    alert_states,
    notification_endpoints,
    notifications,
    webhook_deliveries,
)
from storage.schema._base import PLANS, SUBSYSTEMS, metadata, one_of
from storage.schema._fleet import agents, fleets, task_runs, tasks
from storage.schema._jobs import RUN_STATUSES, scheduler_runs
from storage.schema._retention import MAX_RETENTION_DAYS, retention_tiers
from storage.schema._rollups import (
    FAMILIES,
    FAMILY_BY_NAME,
    LEVEL_INTERVALS,
    MAX_BIGINT,
    ROLLUP_LEVELS,
    ROLLUP_TABLES,
    STORE_SUFFIX,
    Family,
    Measure,
    model_prices,
    rollup_folds,
)
from storage.schema._telemetry import (
    cost_line_items,
    events,
    metric_points,
    platform_health,
    spans,
    traces,
)
from storage.schema._tenancy import (
    KEY_ROLES,
    aeos_meta,
    api_keys,
    db_role_orgs,
    orgs,
    signature_nonces,
    users,
)


@dataclass(frozen=True, slots=True)
class PartitionSpec:
    """How a raw telemetry table is split by time on either engine."""

    time_column: str
    interval: timedelta


DAY = timedelta(days=1)
WEEK = timedelta(days=7)

span_red_1m, span_red_1h, span_red_1d = (ROLLUP_TABLES[f"span_red_{lv}"] for lv in ROLLUP_LEVELS)
metric_rollup_1m, metric_rollup_1h, metric_rollup_1d = (
    ROLLUP_TABLES[f"metric_rollup_{lv}"] for lv in ROLLUP_LEVELS
)
cost_daily = ROLLUP_TABLES["cost_daily"]

#: Raw telemetry tables: hypertables on TimescaleDB, range partitions on PostgreSQL.
PARTITIONED: dict[str, PartitionSpec] = {
    "spans": PartitionSpec("start_time", DAY),
    "events": PartitionSpec("time", DAY),
    "metric_points": PartitionSpec("time", DAY),
    "cost_line_items": PartitionSpec("time", WEEK),
    "alert_evaluations": PartitionSpec("time", WEEK),
}

#: Tables holding rows of exactly one org; each gets row-level security.
TENANT_TABLES = frozenset(
    t.name for t in metadata.sorted_tables if "org_id" in t.c and t.name not in {"model_prices"}
)

__all__ = [
    "FAMILIES",
    "FAMILY_BY_NAME",
    "KEY_ROLES",
    "LEVEL_INTERVALS",
    "MAX_BIGINT",
    "MAX_RETENTION_DAYS",
    "PARTITIONED",
    "PLANS",
    "RETENTION_CLASSES",
    "ROLLUP_FAMILIES",
    "ROLLUP_LEVELS",
    "ROLLUP_TABLES",
    "RUN_STATUSES",
    "STORE_SUFFIX",
    "SUBSYSTEMS",
    "TENANT_TABLES",
    "Family",
    "Measure",
    "PartitionSpec",
    "aeos_meta",
    "agents",
    "alert_budget_marks",
    "alert_evaluations",
    "alert_groups",
    "alert_rules",
    "alert_silences",
    "alert_states",
    "api_keys",
    "cost_daily",
    "cost_line_items",
    "db_role_orgs",
    "events",
    "fleets",
    "metadata",
    "metric_points",
    "metric_rollup_1d",
    "metric_rollup_1h",
    "metric_rollup_1m",
    "model_prices",
    "notification_endpoints",
    "notifications",
    "orgs",
    "platform_health",
    "retention_tiers",
    "rollup_folds",
    "scheduler_runs",
    "signature_nonces",
    "span_red_1d",
    "span_red_1h",
    "span_red_1m",
    "spans",
    "task_runs",
    "tasks",
    "traces",
    "users",
    "webhook_deliveries",
]

#: Rollup families; each has a relation per level, named ``<family>_<level>``
#: (``span_red_1m`` ...). Plain tables maintained at ingest on PostgreSQL, hierarchical
#: continuous aggregates on TimescaleDB; the time column is ``bucket``. ``platform_red``
#: has no ``org_id`` (all orgs together, staff only).
ROLLUP_FAMILIES = (
    "span_red",
    "org_red",
    "platform_red",
    "metric_rollup",
    "uce_ops",
    "mosaic_routes",
    "mosaic_handoffs",
    "damn_heartbeats",
)

#: What each retention class (the seed's "Retention Strategy" rows) covers: relation -> time
#: column. ``cost_daily`` is a day rollup (UTC days).
RETENTION_CLASSES: dict[str, dict[str, str]] = {
    "events": {"events": "time", "metric_points": "time"},
    "spans": {"spans": "start_time", "traces": "start_time"},
    "rollup_1m": {f"{f}_1m": "bucket" for f in ROLLUP_FAMILIES},
    "rollup_1h": {**{f"{f}_1h": "bucket" for f in ROLLUP_FAMILIES}, "alert_evaluations": "time"},
    "rollup_1d": {**{f"{f}_1d": "bucket" for f in ROLLUP_FAMILIES}, "cost_daily": "bucket"},
    "cost_line_items": {"cost_line_items": "time"},
}

retention_tiers.append_constraint(
    CheckConstraint(one_of("data_class", tuple(RETENTION_CLASSES)), name="data_class")
)
