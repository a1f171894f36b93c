"""Staff views across orgs."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from query_api.models._base import CoverageOut, RedOut, ViewModel
from query_api.models.overview import CostTotalsOut


class GlobalOverviewOut(ViewModel):
    """All orgs together (from the platform rollups)."""

    orgs: int
    agents: dict[str, int]
    red: RedOut
    cost: CostTotalsOut
    coverage: CoverageOut


class OrgExplorerRowOut(ViewModel):
    """One org of the org explorer, with its health score (0-100) and the score's parts."""

    org_id: uuid.UUID
    name: str
    plan: str
    requests: int
    errors: int
    error_rate: float | None
    p95_ms: float | None
    cost_mtd_usd: Decimal
    agents: int
    agents_offline: int
    health_score: int
    health_errors: float
    health_latency: float
    health_agents: float


class FailingAgentOut(ViewModel):
    """An agent ranked by the Wilson lower bound of its error rate (volume-weighted)."""

    org_id: uuid.UUID
    org_name: str
    agent_id: str
    requests: int
    errors: int
    error_rate: float
    score: float


class ReceiverHealthOut(ViewModel):
    """A receiver process and signal over the range."""

    instance: str
    signal: str
    accepted: int
    rejected: int
    refused: int
    requests: int
    commits: int
    commit_seconds_avg: float | None
    commit_seconds_max: float | None
    last_report: datetime | None


class JobHealthOut(ViewModel):
    """A periodic job over the range."""

    job: str
    runs: int
    failures: int
    last_started_at: datetime | None
    last_failure_at: datetime | None


class PlatformHealthOut(ViewModel):
    """Receivers, scheduler runs and relation sizes (bytes)."""

    receivers: list[ReceiverHealthOut]
    jobs: list[JobHealthOut]
    relation_sizes: dict[str, int]
    storage_engine: str
