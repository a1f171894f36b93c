"""Fleets, agents, tasks and task runs: the entities telemetry is about."""

from __future__ import annotations

from sqlalchemy import (
    CheckConstraint,
    Column,
    Double,
    LargeBinary,
    Numeric,
    PrimaryKeyConstraint,
    Table,
    Text,
    text,
)

from storage.schema._base import (
    SUBSYSTEMS,
    created_at,
    indexed,
    jsonb,
    metadata,
    one_of,
    org_id_column,
    ts,
)

AGENT_STATUSES = ("online", "offline", "degraded")
TASK_RUN_STATUSES = ("queued", "running", "succeeded", "failed", "canceled")

fleets = Table(
    "fleets",
    metadata,
    org_id_column(),
    Column("fleet_id", Text, nullable=False),
    Column("name", Text, nullable=False, server_default=text("''")),
    created_at(),
    ts("last_seen_at", nullable=True),
    PrimaryKeyConstraint("org_id", "fleet_id"),
    comment="Groups of agents; fleet_id is aeos.fleet.id from the resource.",
)

agents = Table(
    "agents",
    metadata,
    org_id_column(),
    Column("agent_id", Text, nullable=False),
    Column("fleet_id", Text, nullable=True),
    Column("name", Text, nullable=False, server_default=text("''")),
    Column("subsystem", Text, nullable=False, server_default=text("'SYSTEM'")),
    Column("status", Text, nullable=False, server_default=text("'online'")),
    ts("last_heartbeat_at", nullable=True),
    ts("last_seen_at", nullable=True),
    Column("version", Text, nullable=True),
    Column("service_name", Text, nullable=True),
    jsonb("resource_attributes"),
    created_at(),
    PrimaryKeyConstraint("org_id", "agent_id"),
    CheckConstraint(one_of("subsystem", SUBSYSTEMS), name="subsystem"),
    CheckConstraint(one_of("status", AGENT_STATUSES), name="status"),
    indexed(
        "ix_agents_org_fleet", "org_id", "fleet_id", serves="agents of a fleet (fleet health grid)"
    ),
    indexed(
        "ix_agents_org_status",
        "org_id",
        "status",
        serves="agents by status (offline/degraded list)",
    ),
    comment="Agents, upserted from OTLP resources; version gives version skew.",
)

tasks = Table(
    "tasks",
    metadata,
    org_id_column(),
    Column("task_id", Text, nullable=False),
    Column("title", Text, nullable=True),
    created_at(),
    PrimaryKeyConstraint("org_id", "task_id"),
    indexed("ix_tasks_org_created", "org_id", "created_at", serves="recent tasks of an org"),
    comment="Units of work requested of the platform (mosaic.task.id).",
)

task_runs = Table(
    "task_runs",
    metadata,
    org_id_column(),
    Column("task_run_id", Text, nullable=False),
    Column("task_id", Text, nullable=True),
    Column("agent_id", Text, nullable=True),
    Column("status", Text, nullable=False, server_default=text("'running'")),
    ts("started_at", nullable=True),
    ts("ended_at", nullable=True),
    Column("duration_ms", Double, nullable=True),
    Column("trace_id", LargeBinary, nullable=True),
    Column("cost_usd", Numeric(20, 10), nullable=False, server_default=text("0")),
    jsonb("attributes"),
    created_at(),
    PrimaryKeyConstraint("org_id", "task_run_id"),
    CheckConstraint(one_of("status", TASK_RUN_STATUSES), name="status"),
    indexed(
        "ix_task_runs_org_created", "org_id", "created_at", serves="Task Runs view, newest first"
    ),
    indexed(
        "ix_task_runs_org_status_created",
        "org_id",
        "status",
        "created_at",
        serves="Task Runs view filtered by status",
    ),
    indexed("ix_task_runs_org_trace", "org_id", "trace_id", serves="task run of a trace"),
    indexed(
        "ix_task_runs_org_started",
        "org_id",
        "started_at",
        serves="Task Runs dashboard: runs that started in a range, newest first",
    ),
    comment="Executions of a task (spans carrying mosaic.task_run.id).",
)
