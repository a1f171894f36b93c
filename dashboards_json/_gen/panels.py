"""Panel kinds as plain dictionaries: one small function per kind.

Each function returns a panel without ``id`` and ``gridPos``; :func:`layout` assigns
them. Every panel needs a description (a test checks it). SQL targets use the
PostgreSQL data source ``aeos-pg`` and trace targets the Jaeger data source
``aeos-jaeger``: each Grafana org gets data sources with these uids, so one JSON works for
every org (``aeos grafana provision``).
"""

from __future__ import annotations

from typing import Any, Final

Json = dict[str, Any]

PG_UID: Final = "aeos-pg"
JAEGER_UID: Final = "aeos-jaeger"
PG: Final[Json] = {"type": "grafana-postgresql-datasource", "uid": PG_UID}
JAEGER: Final[Json] = {"type": "jaeger", "uid": JAEGER_UID}
GRID_COLUMNS: Final = 24


def steps(*pairs: tuple[float | None, str]) -> Json:
    """Absolute thresholds: ``(None, 'green'), (0.05, 'red')`` (the first has no value)."""
    return {"mode": "absolute", "steps": [{"color": c, "value": v} for v, c in pairs]}


OK: Final = steps((None, "green"))
ERROR_RATE: Final = steps((None, "green"), (0.01, "yellow"), (0.05, "red"))
UPTIME: Final = steps((None, "red"), (0.9, "yellow"), (0.99, "green"))


def value_names(names: dict[int, tuple[str, str]]) -> list[Json]:
    """Value mappings: a number shown as a (text, colour)."""
    options = {
        str(k): {"text": t, "color": c, "index": i} for i, (k, (t, c)) in enumerate(names.items())
    }
    return [{"type": "value", "options": options}]


def sql_target(sql: str, fmt: str = "time_series", ref: str = "A") -> Json:
    """A raw-SQL PostgreSQL query; ``fmt`` is ``time_series`` or ``table``."""
    return {
        "refId": ref,
        "datasource": PG,
        "editorMode": "code",
        "format": fmt,
        "rawQuery": True,
        "rawSql": sql.strip(),
    }


def _panel(kind: str, title: str, description: str, size: tuple[int, int], **rest: Any) -> Json:
    if not description.strip():
        raise ValueError(f"panel {title!r} needs a description")
    return {
        "type": kind,
        "title": title,
        "description": description,
        "_size": size,
        **rest,
    }


def _field_config(unit: str, thresholds: Json, **custom: Any) -> Json:
    return {
        "defaults": {"unit": unit, "thresholds": thresholds, "custom": custom, "links": []},
        "overrides": [],
    }


def timeseries(
    title: str,
    description: str,
    sql: str,
    *,
    unit: str,
    thresholds: Json = OK,
    size: tuple[int, int] = (12, 8),
    stacked: bool = False,
    bars: bool = False,
) -> Json:
    """A time series panel over one SQL query (a sorted ``time`` column)."""
    custom: Json = {"drawStyle": "bars" if bars else "line", "fillOpacity": 20 if stacked else 5}
    if stacked:
        custom["stacking"] = {"mode": "normal", "group": "A"}
    if thresholds is not OK:
        custom["thresholdsStyle"] = {"mode": "line"}
    return _panel(
        "timeseries",
        title,
        description,
        size,
        datasource=PG,
        targets=[sql_target(sql)],
        fieldConfig=_field_config(unit, thresholds, **custom),
        options={
            "legend": {"displayMode": "list", "placement": "bottom"},
            "tooltip": {"mode": "multi"},
        },
    )


def stat(
    title: str,
    description: str,
    sql: str,
    *,
    unit: str,
    thresholds: Json = OK,
    size: tuple[int, int] = (6, 4),
    mappings: list[Json] | None = None,
    per_row: bool = False,
) -> Json:
    """A single value per numeric column, or (``per_row``) one tile per row of the query."""
    config = _field_config(unit, thresholds)
    config["defaults"]["mappings"] = mappings or []
    return _panel(
        "stat",
        title,
        description,
        size,
        datasource=PG,
        targets=[sql_target(sql, "table")],
        fieldConfig=config,
        options={
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": per_row},
            "colorMode": "background" if thresholds is not OK else "value",
            "graphMode": "none",
            "textMode": "auto",
        },
    )


def table(
    title: str,
    description: str,
    sql: str,
    *,
    units: dict[str, str] | None = None,
    links: dict[str, tuple[str, str]] | None = None,
    thresholds: dict[str, Json] | None = None,
    size: tuple[int, int] = (24, 9),
) -> Json:
    """A table with named columns; ``links`` maps a column to (title, url) data links."""
    overrides: list[Json] = []
    for column, unit in (units or {}).items():
        overrides.append(_override(column, {"id": "unit", "value": unit}))
    for column, (label, url) in (links or {}).items():
        overrides.append(
            _override(column, {"id": "links", "value": [{"title": label, "url": url}]})
        )
    for column, steps_ in (thresholds or {}).items():
        overrides.append(
            _override(
                column,
                {"id": "thresholds", "value": steps_},
                {"id": "custom.cellOptions", "value": {"type": "color-background"}},
            )
        )
    config = _field_config("none", OK, filterable=True)
    config["overrides"] = overrides
    return _panel(
        "table",
        title,
        description,
        size,
        datasource=PG,
        targets=[sql_target(sql, "table")],
        fieldConfig=config,
        options={"showHeader": True, "cellHeight": "sm", "footer": {"show": False}},
    )


def _override(column: str, *properties: Json) -> Json:
    return {"matcher": {"id": "byName", "options": column}, "properties": list(properties)}


def bargauge(
    title: str,
    description: str,
    sql: str,
    *,
    unit: str,
    thresholds: Json = OK,
    size: tuple[int, int] = (12, 8),
) -> Json:
    """Horizontal bars, one per row of a table query (a label column and a value column)."""
    return _panel(
        "bargauge",
        title,
        description,
        size,
        datasource=PG,
        targets=[sql_target(sql, "table")],
        fieldConfig=_field_config(unit, thresholds),
        options={
            "orientation": "horizontal",
            "displayMode": "gradient",
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": True},
        },
    )


def piechart(
    title: str, description: str, sql: str, *, unit: str, size: tuple[int, int] = (8, 8)
) -> Json:
    """Shares of a whole, one slice per row (a label column and a value column)."""
    return _panel(
        "piechart",
        title,
        description,
        size,
        datasource=PG,
        targets=[sql_target(sql, "table")],
        fieldConfig=_field_config(unit, OK),
        options={
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": True},
            "pieType": "donut",
            "legend": {"displayMode": "table", "placement": "right", "values": ["value"]},
        },
    )


def nodegraph(
    title: str, description: str, nodes_sql: str, edges_sql: str, size: tuple[int, int] = (12, 10)
) -> Json:
    """A node graph: frames ``nodes`` (id, title, mainstat) and ``edges`` (id, source, target)."""
    return _panel(
        "nodeGraph",
        title,
        description,
        size,
        datasource=PG,
        targets=[sql_target(nodes_sql, "table", "nodes"), sql_target(edges_sql, "table", "edges")],
        fieldConfig=_field_config("short", OK),
        options={"nodes": {}, "edges": {}},
    )


def traces(title: str, description: str, query: str, size: tuple[int, int] = (24, 12)) -> Json:
    """Grafana's trace view of one trace fetched by id from the Jaeger data source."""
    target = {"refId": "A", "datasource": JAEGER, "query": query}
    return _panel("traces", title, description, size, datasource=JAEGER, targets=[target])


def text(title: str, description: str, markdown: str, size: tuple[int, int] = (24, 3)) -> Json:
    """Static help text (markdown)."""
    return _panel(
        "text", title, description, size, options={"mode": "markdown", "content": markdown}
    )


def layout(panels: list[Json]) -> list[Json]:
    """Assigns ids and grid positions, left to right, wrapping at 24 columns."""
    out: list[Json] = []
    x = y = row_height = 0
    for number, panel in enumerate(panels, start=1):
        width, height = panel["_size"]
        if x + width > GRID_COLUMNS:
            x, y, row_height = 0, y + row_height, 0
        placed = {k: v for k, v in panel.items() if k != "_size"}
        placed["id"] = number
        placed["gridPos"] = {"x": x, "y": y, "w": width, "h": height}
        out.append(placed)
        x += width
        row_height = max(row_height, height)
    return out
