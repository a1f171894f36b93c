"""Template variables and the SQL filters that use them.

Filters are for relevance, never for isolation: the data source's login role decides
which org's rows a query can see. Multi-value variables have the custom "All" value
``'__all'`` (inserted raw by Grafana, already quoted), so an "All" filter also keeps rows
without that dimension (``''`` in the rollups) and works when a variable has no options.
"""

from __future__ import annotations

from typing import Final

from dashboards_json._gen.panels import PG, Json
from dashboards_json._gen.sql import cost

ALL: Final = "'__all'"
REFRESH_ON_LOAD: Final = 1
REFRESH_ON_TIME_RANGE: Final = 2


def _query(name: str, label: str, sql: str, *, multi: bool, refresh: int = REFRESH_ON_LOAD) -> Json:
    var: Json = {
        "type": "query",
        "name": name,
        "label": label,
        "datasource": PG,
        "definition": sql,
        "query": sql,
        "refresh": refresh,
        "sort": 1,
        "multi": multi,
        "includeAll": multi,
        "current": {},
        "options": [],
        "hide": 0,
    }
    if multi:
        var["allValue"] = ALL
        var["current"] = {"selected": True, "text": ["All"], "value": ["$__all"]}
    return var


def org() -> Json:
    """One org: a tenant's login sees only its own (row security on ``orgs``)."""
    return _query(
        "org",
        "Org",
        "SELECT id::text AS __value, name AS __text FROM orgs ORDER BY name",
        multi=False,
    )


def fleet() -> Json:
    """Fleets of the chosen org."""
    return _query(
        "fleet",
        "Fleet",
        "SELECT fleet_id AS __value, coalesce(nullif(name, ''), fleet_id) AS __text FROM fleets "
        "WHERE org_id IN (${org:sqlstring}) ORDER BY 2",
        multi=True,
    )


def agent() -> Json:
    """Agents of the chosen org and fleets."""
    return _query(
        "agent",
        "Agent",
        "SELECT agent_id AS __value, coalesce(nullif(name, ''), agent_id) AS __text FROM agents "
        "WHERE org_id IN (${org:sqlstring}) AND "
        + matches("coalesce(fleet_id, '')", "fleet")
        + " ORDER BY 2",
        multi=True,
    )


def subsystem() -> Json:
    """The AEOS subsystems (a fixed list)."""
    return {
        "type": "custom",
        "name": "subsystem",
        "label": "Subsystem",
        "query": "MOSAIC,DAMN,UCE,SYSTEM",
        "multi": True,
        "includeAll": True,
        "allValue": ALL,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "options": [],
        "hide": 0,
    }


def model() -> Json:
    """LLM models the org was billed for in the range."""
    return _query(
        "model",
        "Model",
        f"SELECT DISTINCT model FROM {cost()} WHERE org_id IN (${{org:sqlstring}}) ORDER BY 1",
        multi=True,
        refresh=REFRESH_ON_TIME_RANGE,
    )


def trace_id() -> Json:
    """A trace id to show in a trace panel (filled by links from the Task Runs table)."""
    return {
        "type": "textbox",
        "name": "trace_id",
        "label": "Trace id",
        "query": "",
        "current": {"text": "", "value": ""},
        "hide": 0,
    }


def matches(column: str, variable: str) -> str:
    """SQL: ``column`` is one of the variable's values, or the variable is "All"."""
    values = "${" + variable + ":sqlstring}"
    return f"({column} IN ({values}) OR {ALL} IN ({values}))"


ORG_FILTER: Final = "org_id IN (${org:sqlstring})"
