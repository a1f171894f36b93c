"""The committed dashboards are the generator's output and valid Grafana dashboard JSON."""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

import pytest

from dashboards_json._gen import DATASOURCE_UIDS, FOLDERS, OUTPUT_DIR, build_all, render
from dashboards_json._gen.macros import Request, expand, interval_text, replace_variables

BOARDS = build_all()
ROLLUP_NAME = re.compile(
    r"(?<!aeos_)\b(span_red|org_red|platform_red|uce_ops|mosaic_routes|mosaic_handoffs|"
    r"damn_heartbeats|metric_rollup)_(1m|1h|1d)\b|(?<!aeos_)\bcost_daily\b"
)
USE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")
BUILTIN = {"__interval", "__interval_ms", "__timeFilter", "__timeFrom", "__timeTo",
           "__timeGroup", "__timeGroupAlias", "__data", "__url_time_range", "__all", "__value",
           "__field", "__series"}  # fmt: skip
KINDS = {"timeseries", "stat", "table", "bargauge", "piechart", "nodeGraph", "traces", "text"}


def _panels() -> list[tuple[str, dict[str, Any]]]:
    return [(path, p) for path, board in BOARDS.items() for p in board["panels"]]


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _texts(v)]
    if isinstance(value, list):
        return [t for v in value for t in _texts(v)]
    return []


def test_committed_json_equals_the_generator_output() -> None:
    committed = {
        str(p.relative_to(OUTPUT_DIR)): p.read_text("utf-8")
        for folder in FOLDERS
        for p in sorted((OUTPUT_DIR / folder).glob("*.json"))
    }
    generated = {path: render(board) for path, board in BOARDS.items()}
    assert sorted(committed) == sorted(generated), "run: aeos dashboards export"
    for path, text in generated.items():
        assert committed[path] == text, f"{path} differs from the generator: aeos dashboards export"


def test_every_view_of_the_issue_has_a_dashboard() -> None:
    titles = {b["title"] for b in BOARDS.values()}
    assert titles == {
        "Global Overview", "Org Explorer", "Fleet Explorer", "Anomalies & Incidents",
        "Platform Health", "Org Overview", "Agents & Fleets", "Task Runs", "Costs",
        "Alerts & Notifications", "MOSAIC", "DAMN", "UCE",
    }  # fmt: skip


def test_dashboard_envelope() -> None:
    uids = [b["uid"] for b in BOARDS.values()]
    assert len(set(uids)) == len(uids)
    for path, board in BOARDS.items():
        assert 39 <= board["schemaVersion"] <= 43, path
        assert board["id"] is None
        assert board["uid"]
        assert len(board["uid"]) <= 40
        assert board["time"]["from"].startswith("now-")
        assert board["time"]["to"] == "now"
        assert "aeos" in board["tags"]
        assert board["description"]
        json.loads(render(board))  # serialisable as it is


@pytest.mark.parametrize("path", sorted(BOARDS))
def test_panel_ids_unique_and_grid_positions_do_not_overlap(path: str) -> None:
    panels = BOARDS[path]["panels"]
    ids = [p["id"] for p in panels]
    assert len(set(ids)) == len(ids)
    assert all(isinstance(i, int) and i > 0 for i in ids)
    cells: dict[tuple[int, int], int] = {}
    for p in panels:
        g = p["gridPos"]
        assert g["w"] > 0
        assert g["h"] > 0
        assert g["x"] >= 0
        assert g["y"] >= 0
        assert g["x"] + g["w"] <= 24, f"{p['title']} is wider than the grid"
        for cell in itertools.product(
            range(g["x"], g["x"] + g["w"]), range(g["y"], g["y"] + g["h"])
        ):
            assert cell not in cells, f"{p['title']} overlaps panel {cells[cell]}"
            cells[cell] = p["id"]


def test_every_panel_is_described_typed_and_has_a_unit() -> None:
    for path, p in _panels():
        assert p["type"] in KINDS, (path, p["type"])
        assert p["description"].strip(), (path, p["title"])
        if p["type"] in ("timeseries", "stat", "bargauge", "piechart"):
            assert p["fieldConfig"]["defaults"]["unit"], (path, p["title"])
            assert p["fieldConfig"]["defaults"]["thresholds"]["steps"], (path, p["title"])


def test_every_data_source_reference_resolves_to_a_provisioned_uid() -> None:
    refs = []
    for _path, board in BOARDS.items():
        for p in board["panels"]:
            refs += [p.get("datasource"), *(t["datasource"] for t in p.get("targets", []))]
        refs += [v["datasource"] for v in board["templating"]["list"] if "datasource" in v]
    refs = [r for r in refs if r is not None]
    assert refs
    for ref in refs:
        assert ref["uid"] in DATASOURCE_UIDS, ref
        assert (
            ref["type"]
            == {"aeos-pg": "grafana-postgresql-datasource", "aeos-jaeger": "jaeger"}[ref["uid"]]
        )


@pytest.mark.parametrize("path", sorted(BOARDS))
def test_every_variable_used_is_defined_before_it_is_used(path: str) -> None:
    board = BOARDS[path]
    defined: list[str] = []
    for var in board["templating"]["list"]:
        for text in _texts({k: var.get(k) for k in ("query", "definition")}):
            used = {a or b for a, b in USE.findall(text)} - BUILTIN
            assert used <= set(defined), f"{var['name']} uses {used - set(defined)}"
        defined.append(var["name"])
    everything = _texts(board["panels"]) + _texts(board["links"])
    used = {a or b for t in everything for a, b in USE.findall(t)} - BUILTIN
    assert used <= set(defined), f"undefined: {used - set(defined)}"


def test_links_point_at_dashboards_that_exist() -> None:
    uids = {b["uid"] for b in BOARDS.values()}
    texts = [t for b in BOARDS.values() for t in _texts(b["panels"]) + _texts(b["links"])]
    targets = {m for t in texts for m in re.findall(r"/d/([\w-]+)/", t)}
    assert targets
    assert targets <= uids
    explorer = BOARDS["console/global-overview.json"]
    assert "/d/aeos-org-explorer/" in json.dumps(explorer)  # org → its explorer
    runs = BOARDS["client/task-runs.json"]
    assert "var-trace_id=${__data.fields.trace_id}" in json.dumps(runs)  # run → its trace


def test_panels_never_name_a_rollup_relation() -> None:
    for path, p in _panels():
        for t in p.get("targets", []):
            sql = t.get("rawSql", "")
            assert not ROLLUP_NAME.search(sql), (path, p["title"], ROLLUP_NAME.search(sql))


def test_time_series_queries_name_a_sorted_time_column() -> None:
    for path, p in _panels():
        for t in p.get("targets", []):
            if t.get("format") == "time_series":
                sql = t["rawSql"]
                assert re.search(r'\$__timeGroupAlias\(|AS "?time"?\b', sql), (path, p["title"])
                assert re.search(r"ORDER BY (1|bucket)\s*$", sql), (path, p["title"])


def test_client_dashboards_never_read_staff_only_relations() -> None:
    for path, p in _panels():
        if path.startswith("console/"):
            continue
        for t in p.get("targets", []):
            sql = t.get("rawSql", "")
            for staff_only in ("platform_red", "platform_health", "scheduler_runs"):
                assert staff_only not in sql, (path, p["title"])


def test_interval_text_as_grafana_writes_it() -> None:
    assert [interval_text(ms) for ms in (500, 1000, 60_000, 600_000, 3_600_000, 86_400_000)] == [
        "500ms", "1s", "1m", "10m", "1h", "1d",
    ]  # fmt: skip


def test_variables_are_formatted_like_grafana() -> None:
    variables: list[dict[str, Any]] = [
        {"name": "org", "multi": False, "includeAll": False},
        {"name": "agent", "multi": True, "includeAll": True, "allValue": "'__all'"},
        {"name": "q", "type": "textbox"},
    ]
    text = "${org:sqlstring} $agent ${agent:sqlstring} '$q' ${q}"
    values = {"org": ["o'1"], "agent": ["a", "b'c"], "q": ["it's"]}
    assert replace_variables(text, variables, values) == (
        "'o''1' 'a','b''c' 'a','b''c' 'it''s' it''s"
    )
    values_all = {"org": ["o"], "agent": None, "q": [""]}
    assert replace_variables("${agent:sqlstring}", variables, values_all) == "'__all'"
    with pytest.raises(KeyError):
        replace_variables("$nope", variables, values)


def test_macros_expand_like_grafana() -> None:
    from datetime import UTC, datetime

    r = Request(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 2, 0, 0, 1, 500000, UTC),
                600_000, {})  # fmt: skip
    sql = "SELECT $__timeGroupAlias(b, $__interval), $__interval_ms WHERE $__timeFilter(b) AND x > $__timeFrom()"
    assert expand(sql, [], r) == (
        'SELECT floor(extract(epoch from b)/600)*600 AS "time", 600000 WHERE b BETWEEN '
        "'2026-11-01T00:00:00Z' AND '2026-11-02T00:00:01.5Z' AND x > '2026-11-01T00:00:00Z'"
    )
    ts = Request(r.start, r.end, 3_600_000, {}, timescaledb=True)
    assert expand("$__timeGroup(b, 1d)", [], ts) == "time_bucket('86400s',b)"
