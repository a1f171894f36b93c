"""Organisations, people, credentials and the metadata of the schema itself."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    LargeBinary,
    Numeric,
    Table,
    Text,
    Uuid,
    text,
)

from storage.schema._base import (
    PLANS,
    created_at,
    indexed,
    jsonb,
    metadata,
    one_of,
    org_id_column,
    ts,
)

SYSTEM_ROLES = ("alias_admin", "alias_support")
ORG_ROLES = ("admin", "member")
KEY_ROLES = ("ingest", "admin", "member", "alias_admin", "alias_support")


aeos_meta = Table(
    "aeos_meta",
    metadata,
    Column("key", Text, primary_key=True),
    Column("value", Text, nullable=False),
    comment="Facts about this database chosen at migration time (storage_engine).",
)

orgs = Table(
    "orgs",
    metadata,
    Column("id", Uuid(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()")),
    Column("name", Text, nullable=False, unique=True),
    Column("plan", Text, nullable=False, server_default=text("'free'")),
    Column("workos_org_id", Text, nullable=True, unique=True),
    jsonb("retention_overrides"),
    jsonb("settings"),
    created_at(),
    # Share of error-free traces whose spans outlive the full-fidelity window
    # (storage.jobs.sampling); traces with an error are always kept.
    Column("trace_sample_percent", Numeric(5, 2), nullable=False, server_default=text("10")),
    CheckConstraint(one_of("plan", PLANS), name="plan"),
    CheckConstraint("length(btrim(name)) > 0", name="name_not_blank"),
    CheckConstraint(
        "trace_sample_percent >= 0 AND trace_sample_percent <= 100", name="trace_sample_percent"
    ),
    # Known data classes, whole days in range (migration 0007; storage.retention.run explains).
    CheckConstraint(
        "aeos_retention_overrides_valid(retention_overrides)", name="retention_overrides"
    ),
    comment="Tenants: every telemetry row belongs to exactly one org.",
)

users = Table(
    "users",
    metadata,
    Column("id", Uuid(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()")),
    org_id_column(),
    Column("workos_user_id", Text, nullable=True, unique=True),
    Column("email", Text, nullable=False),
    Column("org_role", Text, nullable=False, server_default=text("'member'")),
    Column("system_role", Text, nullable=True),
    created_at(),
    CheckConstraint(one_of("org_role", ORG_ROLES), name="org_role"),
    CheckConstraint(
        f"system_role IS NULL OR {one_of('system_role', SYSTEM_ROLES)}", name="system_role"
    ),
    indexed(
        "ix_users_org_email",
        "org_id",
        "email",
        unique=True,
        serves="user lookup by email within an org",
    ),
    comment="People (from WorkOS); system_role grants ALIAS staff access across orgs.",
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Uuid(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()")),
    org_id_column(),
    Column("prefix", Text, nullable=False, unique=True),
    Column("key_hash", LargeBinary, nullable=False),
    Column("role", Text, nullable=False),
    Column("name", Text, nullable=False, server_default=text("''")),
    Column("require_signature", Boolean, nullable=False, server_default=text("false")),
    created_at(),
    ts("last_used_at", nullable=True),
    ts("revoked_at", nullable=True),
    CheckConstraint(one_of("role", KEY_ROLES), name="role"),
    CheckConstraint("octet_length(key_hash) = 32", name="sha256"),
    indexed(
        "ix_api_keys_org_created", "org_id", "created_at", serves="list an org's keys, newest first"
    ),
    comment="Machine credentials: only the SHA-256 of the secret is stored; prefix identifies.",
)

db_role_orgs = Table(
    "db_role_orgs",
    metadata,
    Column("role_name", Text, primary_key=True),
    Column("org_id", Uuid(as_uuid=True), ForeignKey("orgs.id", ondelete="CASCADE"), nullable=False),
    created_at(),
    comment="Login roles pinned to one org (Grafana data sources); RLS reads it by session_user.",
)

signature_nonces = Table(
    "signature_nonces",
    metadata,
    Column("signature", Text, primary_key=True),
    ts("seen_at"),
    comment="Signed requests already received (replay protection across receiver processes).",
)
