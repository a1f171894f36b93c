"""The current org's settings as they are in force: plan, retention, sampling."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Connection, select

from storage.errors import NotFoundError
from storage.read._common import Availability, org_availability, retention_days
from storage.schema import RETENTION_CLASSES, orgs


@dataclass(frozen=True, slots=True)
class RetentionWindow:
    """Days one data class is kept, and whether an override (not the plan) says so."""

    data_class: str
    days: int | None
    overridden: bool


@dataclass(frozen=True, slots=True)
class OrgSettings:
    """Plan, retention windows in force and trace sampling of an org."""

    org_id: uuid.UUID
    name: str
    plan: str
    retention: tuple[RetentionWindow, ...]
    trace_sample_percent: Decimal


def org_settings(conn: Connection) -> OrgSettings:
    """The settings of the org the connection is scoped to.

    Raises:
        NotFoundError: the scope sees no org.
    """
    row = conn.execute(
        select(
            orgs.c.id,
            orgs.c.name,
            orgs.c.plan,
            orgs.c.retention_overrides,
            orgs.c.trace_sample_percent,
        )
    ).first()
    if row is None:
        raise NotFoundError("no org in this scope")
    overrides = dict(row.retention_overrides or {})
    days = retention_days(conn, row.plan, overrides)
    windows = tuple(RetentionWindow(c, days.get(c), c in overrides) for c in RETENTION_CLASSES)
    return OrgSettings(row.id, row.name, row.plan, windows, Decimal(row.trace_sample_percent))


def rollup_availability(conn: Connection, now: datetime) -> Availability:
    """What the current org's retention still holds of each rollup level."""
    return org_availability(conn, now)
