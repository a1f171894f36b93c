"""The dashboard envelope: uid, title, tags, time, variables, links, annotations."""

from __future__ import annotations

from typing import Final

from dashboards_json._gen.panels import Json, layout

SCHEMA_VERSION: Final = 41
TAG: Final = "aeos"


def dashboard(
    uid: str,
    title: str,
    description: str,
    panels: list[Json],
    *,
    tags: list[str],
    variables: list[Json],
    links: list[Json] | None = None,
    time_from: str = "now-24h",
) -> Json:
    """A whole dashboard (v1 JSON model; Grafana 13 migrates it to schema v2 on load)."""
    return {
        "id": None,
        "uid": uid,
        "title": title,
        "description": description,
        "tags": [TAG, *tags],
        "timezone": "browser",
        "editable": False,
        "graphTooltip": 1,
        "time": {"from": time_from, "to": "now"},
        "refresh": "1m",
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "templating": {"list": variables},
        "annotations": {"list": [_builtin_annotations()]},
        "links": [_tag_links(), *(links or [])],
        "panels": layout(panels),
    }


def _builtin_annotations() -> Json:
    return {
        "builtIn": 1,
        "datasource": {"type": "grafana", "uid": "-- Grafana --"},
        "enable": True,
        "hide": True,
        "iconColor": "rgba(0, 211, 255, 1)",
        "name": "Annotations & Alerts",
        "type": "dashboard",
    }


def _tag_links() -> Json:
    return {
        "title": "AEOS dashboards",
        "type": "dashboards",
        "tags": [TAG],
        "asDropdown": True,
        "includeVars": True,
        "keepTime": True,
    }


def link_to(uid: str, slug: str, title: str, query: str = "") -> Json:
    """A dashboard link by uid that keeps the time range (and adds ``query``)."""
    suffix = f"&{query}" if query else ""
    return {
        "title": title,
        "type": "link",
        "url": f"/d/{uid}/{slug}?${{__url_time_range}}{suffix}",
        "keepTime": False,
        "includeVars": False,
        "targetBlank": False,
    }


def url(uid: str, slug: str, query: str) -> str:
    """A data-link URL to another dashboard, keeping the time range."""
    return f"/d/{uid}/{slug}?${{__url_time_range}}&{query}"
