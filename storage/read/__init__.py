"""The read side of storage: what the query API, alerting and dashboards read.

Contract for every reader here: it takes a SQLAlchemy ``Connection`` already scoped to a
role and an org (``storage.transaction.scoped_transaction``) and never switches roles
itself, so no request can widen what it may see. Its runtime SQL goes in
``storage.read._sql`` (one module of named statements per area); its result types are frozen,
slotted dataclasses, exported through ``storage``.
"""

from storage.read._common import Availability, QueryTooBroadError, default_step
from storage.read._sql.costs import COST_DIMS
from storage.read._sql.events import EventFilter
from storage.read._sql.rollups import Filter
from storage.read.agents import (
    Agent,
    AgentDetail,
    AgentPage,
    Fleet,
    Liveness,
    Red,
    agent_detail,
    list_agents,
    list_fleets,
)
from storage.read.costs import CostReport, CostTotals, cost_report
from storage.read.events import Event, EventPage, search_events, tail_events
from storage.read.overview import Overview, Period, org_overview
from storage.read.query import CATALOGUE, Measure, MetricsQuery, QueryResult, run_query
from storage.read.settings import OrgSettings, org_settings, rollup_availability
from storage.read.staff import (
    ORG_SORTS,
    FailingAgent,
    GlobalOverview,
    OrgRow,
    PlatformHealth,
    fleet_explorer,
    global_overview,
    org_explorer,
    platform_health,
)
from storage.read.subsystems import DamnView, MosaicView, UceView, damn_view, mosaic_view, uce_view
from storage.read.task_runs import (
    TaskRun,
    TaskRunDetail,
    TaskRunPage,
    search_task_runs,
    task_run_detail,
)

__all__ = [
    "CATALOGUE",
    "COST_DIMS",
    "ORG_SORTS",
    "Agent",
    "AgentDetail",
    "AgentPage",
    "Availability",
    "CostReport",
    "CostTotals",
    "DamnView",
    "Event",
    "EventFilter",
    "EventPage",
    "FailingAgent",
    "Filter",
    "Fleet",
    "GlobalOverview",
    "Liveness",
    "Measure",
    "MetricsQuery",
    "MosaicView",
    "OrgRow",
    "OrgSettings",
    "Overview",
    "Period",
    "PlatformHealth",
    "QueryResult",
    "QueryTooBroadError",
    "Red",
    "TaskRun",
    "TaskRunDetail",
    "TaskRunPage",
    "UceView",
    "agent_detail",
    "cost_report",
    "damn_view",
    "default_step",
    "fleet_explorer",
    "global_overview",
    "list_agents",
    "list_fleets",
    "mosaic_view",
    "org_explorer",
    "org_overview",
    "org_settings",
    "platform_health",
    "rollup_availability",
    "run_query",
    "search_events",
    "search_task_runs",
    "tail_events",
    "task_run_detail",
    "uce_view",
]
