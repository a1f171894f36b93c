"""The org's settings in force."""

from __future__ import annotations

import uuid
from decimal import Decimal

from query_api.models._base import ViewModel


class RetentionWindowOut(ViewModel):
    """Days a data class is kept (null: forever); ``overridden``: set for this org."""

    data_class: str
    days: int | None
    overridden: bool


class OrgSettingsOut(ViewModel):
    """Plan, retention windows in force and the trace sampling percent."""

    org_id: uuid.UUID
    name: str
    plan: str
    retention: list[RetentionWindowOut]
    trace_sample_percent: Decimal
