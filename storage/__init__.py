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
    ORG_KEY_ROLES,
    CreatedKey,
    CreatedOrg,
    KeySummary,
    OrgSummary,
    create_key,
    create_org_key,
    list_org_keys,
    list_orgs,
    org_id_by_name,
    revoke_key,
    revoke_org_key,
)
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
    RetryableStorageError,
    StorageError,
)
from storage.identities import UserIdentity, authenticate_user
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
from storage.ingest.writer import CommitStats, IngestWriter, QueueFullError, WriteResult
from storage.jobs.scheduler import METRICS as JOB_METRICS
from storage.keys import parse_prefix
from storage.migrate import StorageEngine, recorded_engine
from storage.settings import EngineChoice, StorageSettings, parse_database_url
from storage.tenancy import DbRole, Scope
from storage.transaction import classify_database_error, scoped_transaction

__all__ = [
    "APP_ROLE",
    "JOB_METRICS",
    "ORG_KEY_ROLES",
    "AccessDeniedError",
    "AgentSighting",
    "AsyncKeyStore",
    "Batch",
    "CommitStats",
    "ConcurrencyError",
    "ConflictError",
    "CreatedKey",
    "CreatedOrg",
    "Database",
    "DatabaseUnavailableError",
    "DbRole",
    "EmbeddedDatabaseError",
    "EngineChoice",
    "EventRow",
    "IngestWriter",
    "InvalidInputError",
    "JsonObject",
    "KeyIdentity",
    "KeySummary",
    "LlmCall",
    "MetricPointRow",
    "MigrationError",
    "NotFoundError",
    "OrgSummary",
    "PermanentStorageError",
    "PlatformHealthRow",
    "QueueFullError",
    "RetryableStorageError",
    "Scope",
    "SpanRow",
    "StorageEngine",
    "StorageError",
    "StorageSettings",
    "TaskRunSighting",
    "UserIdentity",
    "WriteResult",
    "authenticate",
    "authenticate_user",
    "classify_database_error",
    "create_key",
    "create_org_key",
    "list_org_keys",
    "list_orgs",
    "open_database",
    "org_id_by_name",
    "parse_database_url",
    "parse_prefix",
    "recorded_engine",
    "revoke_key",
    "revoke_org_key",
    "scoped_transaction",
    "write_platform_health",
]
