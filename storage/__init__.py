"""The storage port: everything other packages may use of storage, and nothing else.

``otlp_receiver``, ``query_api``, ``alerting`` and ``dashboards_json`` import only this
package (an import-linter contract in ``pyproject.toml`` enforces it); ``aeos`` (the
composition root) and the tests may import any module. Inside, ``storage`` is grouped by
concern: ``ingest`` (the write path), ``retention``, ``jobs`` (periodic jobs) and ``read``
(readers over an already scoped connection), over the modules at the top: the
infrastructure (database, embedded, migrate, settings, errors, tenancy, transaction,
auth, keys, hist, schema, migrations) and ``admin`` (orgs and keys, one module).
"""

from __future__ import annotations

from storage.admin import (
    CreatedKey,
    CreatedOrg,
    OrgSummary,
    create_key,
    list_orgs,
    org_id_by_name,
    revoke_key,
)
from storage.alerts import engine as alert_engine
from storage.alerts import measures as alert_measures
from storage.alerts import rules as alert_config
from storage.alerts import spec as alert_spec
from storage.auth import AsyncKeyStore, KeyIdentity, authenticate
from storage.database import APP_ROLE, Database, open_database
from storage.errors import (
    AccessDeniedError,
    ConcurrencyError,
    ConflictError,
    DatabaseUnavailableError,
    EmbeddedDatabaseError,
    InvalidInputError,
    MigrationError,
    NotFoundError,
    PermanentStorageError,
    RefusedDataError,
    RetryableStorageError,
    StorageError,
)
from storage.ingest.health import PlatformHealthRow, write_platform_health
from storage.ingest.rows import (
    AgentSighting,
    Batch,
    EventRow,
    JsonObject,
    LlmCall,
    MetricPointRow,
    SpanRow,
    TaskRunSighting,
)
from storage.ingest.writer import (
    CommitStats,
    IngestWriter,
    QueueFullError,
    WriteResult,
    WriterHealth,
)
from storage.jobs.scheduler import METRICS as JOB_METRICS
from storage.keys import parse_prefix
from storage.migrate import StorageEngine, recorded_engine
from storage.read import (
    CATALOGUE as QUERY_CATALOGUE,
)
from storage.read import (
    COST_DIMS,
    ORG_SORTS,
    Availability,
    EventFilter,
    Filter,
    Liveness,
    Measure,
    MetricsQuery,
    QueryTooBroadError,
    agent_detail,
    cost_report,
    damn_view,
    default_step,
    fleet_explorer,
    global_overview,
    list_agents,
    list_fleets,
    mosaic_view,
    org_explorer,
    org_overview,
    org_settings,
    platform_health,
    rollup_availability,
    run_query,
    search_events,
    search_task_runs,
    tail_events,
    task_run_detail,
    uce_view,
)
from storage.read.critical_path import CriticalPath, PathSegment
from storage.read.trace_view import TraceAnalysis, TraceTotals
from storage.read.trace_view import analyse as analyse_trace
from storage.read.traces import (
    BROAD_SPAN_SEARCH,
    BROAD_TRACE_SEARCH,
    MAX_DEPENDENCY_RANGE,
    LlmCost,
    SpanEvent,
    SpanFilter,
    SpanLink,
    SpanRecord,
    TaskRunRef,
    Trace,
    TraceQuery,
    TraceSummary,
    find_traces,
    get_trace,
    get_traces,
    list_operations,
    list_services,
    search_traces,
    service_dependencies,
)
from storage.read.traces import Dependency as ServiceDependency
from storage.read.traces import Operation as ServiceOperation
from storage.read.traces import task_run as get_task_run
from storage.settings import EngineChoice, StorageSettings, parse_database_url
from storage.tenancy import DbRole, Scope
from storage.transaction import classify_database_error, scoped_transaction

__all__ = [
    "APP_ROLE",
    "BROAD_SPAN_SEARCH",
    "BROAD_TRACE_SEARCH",
    "COST_DIMS",
    "JOB_METRICS",
    "MAX_DEPENDENCY_RANGE",
    "ORG_SORTS",
    "QUERY_CATALOGUE",
    "AccessDeniedError",
    "AgentSighting",
    "AsyncKeyStore",
    "Availability",
    "Batch",
    "CommitStats",
    "ConcurrencyError",
    "ConflictError",
    "CreatedKey",
    "CreatedOrg",
    "CriticalPath",
    "Database",
    "DatabaseUnavailableError",
    "DbRole",
    "EmbeddedDatabaseError",
    "EngineChoice",
    "EventFilter",
    "EventRow",
    "Filter",
    "IngestWriter",
    "InvalidInputError",
    "JsonObject",
    "KeyIdentity",
    "Liveness",
    "LlmCall",
    "LlmCost",
    "Measure",
    "MetricPointRow",
    "MetricsQuery",
    "MigrationError",
    "NotFoundError",
    "OrgSummary",
    "PathSegment",
    "PermanentStorageError",
    "PlatformHealthRow",
    "QueryTooBroadError",
    "QueueFullError",
    "RefusedDataError",
    "RetryableStorageError",
    "Scope",
    "ServiceDependency",
    "ServiceOperation",
    "SpanEvent",
    "SpanFilter",
    "SpanLink",
    "SpanRecord",
    "SpanRow",
    "StorageEngine",
    "StorageError",
    "StorageSettings",
    "TaskRunRef",
    "TaskRunSighting",
    "Trace",
    "TraceAnalysis",
    "TraceQuery",
    "TraceSummary",
    "TraceTotals",
    "WriteResult",
    "WriterHealth",
    "agent_detail",
    "alert_config",
    "alert_engine",
    "alert_measures",
    "alert_spec",
    "analyse_trace",
    "authenticate",
    "classify_database_error",
    "cost_report",
    "create_key",
    "damn_view",
    "default_step",
    "find_traces",
    "fleet_explorer",
    "get_task_run",
    "get_trace",
    "get_traces",
    "global_overview",
    "list_agents",
    "list_fleets",
    "list_operations",
    "list_orgs",
    "list_services",
    "mosaic_view",
    "open_database",
    "org_explorer",
    "org_id_by_name",
    "org_overview",
    "org_settings",
    "parse_database_url",
    "parse_prefix",
    "platform_health",
    "recorded_engine",
    "revoke_key",
    "rollup_availability",
    "run_query",
    "scoped_transaction",
    "search_events",
    "search_task_runs",
    "search_traces",
    "service_dependencies",
    "tail_events",
    "task_run_detail",
    "uce_view",
    "write_platform_health",
]
