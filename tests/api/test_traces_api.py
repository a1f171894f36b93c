"""``/v1/traces`` on each engine: a pruned trace answers with its summary and says so (in
both APIs), a partial trace marks its orphans, search pages with a cursor and is
bounded, dependencies, bad parameters named, and the staff path."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from query_api.models.traces import TraceViewPublic
from storage import Batch, admin
from storage.jobs.sampling import sweep_traces
from tests import _jaeger_model as model
from tests.api.conftest import RunningApi
from tests.integration.test_trace_core import (
    for_org,
    ingest,
    replace_status,
    span,
    task_trace,
    us,
)

NOW = datetime.now(UTC)


def get(api: RunningApi, key: str, path: str, **params: Any) -> Any:
    return api.client.get(path, params=params, headers=api.headers(key))


def test_pruned_trace_says_its_spans_were_not_kept(api: RunningApi) -> None:
    org = api.make_org()
    with api.db.admin_engine().begin() as conn:
        admin.set_trace_sample_percent(conn, org.name, "0")
    tid = b"\x5a" * 16
    batch = for_org(task_trace(tid, us(NOW - timedelta(hours=30))), org.org_id)
    batch.spans = [replace_status(s) for s in batch.spans]
    ingest(api.db, batch)
    assert sweep_traces(api.db.app_engine(), NOW, window=timedelta(hours=24)).traces_pruned == 1
    r = get(api, org.member_key, f"/v1/traces/{tid.hex()}")
    assert r.status_code == 200, r.text
    body = r.json()
    TraceViewPublic.model_validate(body)
    assert body["spans"] == []
    assert body["summary"]["spans_kept"] is False
    assert body["summary"]["sampled"] is False
    assert "not kept by sampling" in body["notice"]
    assert body["totals"]["span_count"] == 4
    assert body["totals"]["llm_calls"] == 1
    assert body["llm_calls"][0]["model"] == "gpt-4o"
    (trace,) = model.traces(get(api, org.member_key, f"/jaeger/api/traces/{tid.hex()}").json())
    assert trace.warnings
    assert "not kept by sampling" in trace.warnings[0]
    assert len(trace.spans) == 1
    assert trace.spans[0].duration == 150_000


def test_partial_trace_marks_orphans(api: RunningApi) -> None:
    org = api.make_org()
    tid = b"\x77" * 16
    base = us(NOW - timedelta(minutes=5))
    ingest(api.db, for_org(task_trace(tid, base), org.org_id))
    orphan = span(tid, 5, 99, base + 10, base + 20, name="late child")
    ingest(api.db, Batch(org.org_id, spans=[orphan]))
    body = get(api, org.admin_key, f"/v1/traces/{tid.hex()}").json()
    TraceViewPublic.model_validate(body)
    marks = {s["name"]: (s["orphan"], s["depth"]) for s in body["spans"]}
    assert marks["late child"] == (True, 0)
    assert marks["tool"] == (False, 1)
    assert body["orphan_count"] == 1
    (trace,) = model.traces(get(api, org.admin_key, f"/jaeger/api/traces/{tid.hex()}").json())
    late = next(s for s in trace.spans if s.operationName == "late child")
    assert late.warnings
    assert "not in this trace" in late.warnings[0]


def test_search_pages_and_dependencies(api: RunningApi) -> None:
    org, other = api.make_org(), api.make_org()
    base = us(NOW - timedelta(minutes=20))
    ingest(
        api.db,
        *[for_org(task_trace(bytes([i + 1]) * 16, base + i * 1000), org.org_id) for i in range(5)],
        for_org(task_trace(b"\xee" * 16, base), other.org_id),
    )
    seen: list[str] = []
    cursor = None
    for _ in range(3):
        params: dict[str, Any] = {"limit": 2, "service": "llm"}
        if cursor:
            params["cursor"] = cursor
        page = get(api, org.member_key, "/v1/traces", **params).json()
        seen += [t["trace_id"] for t in page["data"]]
        cursor = page["next_cursor"]
    assert seen == [(bytes([i]) * 16).hex() for i in (5, 4, 3, 2, 1)]
    assert cursor is None
    r = get(api, org.member_key, "/v1/traces", cursor="garbage")
    assert r.status_code == 400
    assert r.json()["type"].endswith("/invalid-cursor")
    r = get(api, org.member_key, "/v1/traces", attr="no-colon")
    assert r.status_code == 422
    assert r.json()["errors"][0]["param"] == "attr"
    assert get(api, org.member_key, "/v1/traces/nothex").status_code == 422
    assert get(api, org.member_key, f"/v1/traces/{'ee' * 16}").status_code == 404
    deps = get(api, org.member_key, "/v1/dependencies").json()["data"]
    assert {(d["parent"], d["child"]): (d["call_count"], d["error_count"]) for d in deps} == {
        ("planner", "llm"): (5, 0), ("planner", "tools"): (5, 5)}  # fmt: skip
    r = get(api, org.member_key, "/v1/dependencies", start="2026-01-01T00:00:00Z")
    assert r.json()["type"].endswith("/query-too-broad")
    staff = api.staff_key("alias_support")
    r = get(api, staff, f"/v1/staff/orgs/{other.org_id}/traces", service="llm")
    assert [t["trace_id"] for t in r.json()["data"]] == ["ee" * 16]
    assert get(api, org.admin_key, f"/v1/staff/orgs/{other.org_id}/traces").status_code == 403
