"""Retention windows per plan tier (the seed's "Retention Strategy" table).

One row per plan and data class: how many days of that class an org on that plan keeps.
An org's ``orgs.retention_overrides`` (``{"spans": 30}``) replaces single entries. The
data classes and the relations each covers are ``storage.schema.RETENTION_CLASSES``; the
CHECK naming the allowed classes is attached there, so that the list exists once.
"""

from __future__ import annotations

from sqlalchemy import CheckConstraint, Column, Integer, PrimaryKeyConstraint, Table, Text

from storage.schema._base import PLANS, metadata, one_of

#: Longest window an override may ask for (100 years); also keeps dates computable.
MAX_RETENTION_DAYS = 36_500

retention_tiers = Table(
    "retention_tiers",
    metadata,
    Column("plan", Text, nullable=False),
    Column("data_class", Text, nullable=False),
    Column("days", Integer, nullable=False),
    PrimaryKeyConstraint("plan", "data_class"),
    CheckConstraint(one_of("plan", PLANS), name="plan"),
    CheckConstraint(f"days BETWEEN 1 AND {MAX_RETENTION_DAYS}", name="days"),
    comment="Days of each data class an org keeps, per plan tier (orgs.retention_overrides wins).",
)
