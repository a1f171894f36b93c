"""The Jaeger API answers Grafana's Jaeger data source as it sends its requests (upper-
floors notes §A1: URL encodings, µs search bounds, µs or ms trace-by-id bounds, ms
dependency bounds, Go durations, tags as a JSON object), and every answer decodes into
Jaeger's v1 UI model. Tenancy: another org's trace is 404, search never leaks, staff
read every org or the one they name."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest

from tests import _jaeger_model as model
from tests.api.conftest import RunningApi
from tests.integration.test_trace_core import for_org, ingest, span, task_trace, us

TA = bytes.fromhex("0af7651916cd43dd8448eb211c80319c")
TB = bytes.fromhex("1bf7651916cd43dd8448eb211c80319d")


def enc(value: str) -> str:
    """JavaScript's encodeURIComponent, as Grafana's frontend encodes parameters."""
    return quote(value, safe="-_.!~*'()")


@pytest.fixture
def world(api: RunningApi) -> dict[str, Any]:
    a, b = api.make_org(), api.make_org()
    base = us(datetime.now(UTC) - timedelta(minutes=10))
    batch_a = for_org(task_trace(TA, base), a.org_id)
    batch_a.spans.append(span(TA, 9, 1, base + 1_000, base + 2_000, name="read file",
                              service_name="svc a/b", resource_attributes={"service.name": "svc a/b"}))  # fmt: skip
    ingest(api.db, batch_a, for_org(task_trace(TB, base), b.org_id))
    return {"a": a, "b": b, "base": base}


def get(api: RunningApi, key: str, url: str, **headers: str) -> Any:
    return api.client.get(url, headers=api.headers(key, **headers))


def test_data_source_setup_dropdowns_and_search(api: RunningApi, world: dict[str, Any]) -> None:
    key = world["a"].admin_key
    r = get(api, key, "/jaeger/api/services")
    assert r.status_code == 200
    assert model.strings(r.json()) == ["llm", "planner", "svc a/b", "tools"]
    r = get(api, key, f"/jaeger/api/services/{enc('svc a/b')}/operations")
    assert model.strings(r.json()) == ["read file"]
    r = get(api, key, "/jaeger/api/services/planner/operations")
    assert model.strings(r.json()) == ["async job", "task_run plan"]
    r = get(api, key, "/jaeger/api/operations?service=planner&spanKind=producer")
    ops = [model.OperationItem.model_validate(o) for o in r.json()["data"]]
    assert [(o.name, o.spanKind) for o in ops] == [("async job", "producer")]

    end_us = int(time.time() * 1_000_000)
    start_us = end_us - 3_600_000_000
    tags = enc('{"mosaic.task_run.id":"run-1"}')
    url = (f"/jaeger/api/traces?service=planner&operation={enc('task_run plan')}&tags={tags}"
           f"&minDuration=50ms&maxDuration=1.5s&limit=20&start={start_us}&end={end_us}"
           "&lookback=custom")  # fmt: skip
    r = get(api, key, url)
    assert r.status_code == 200, r.text
    (found,) = model.traces(r.json())
    assert found.traceID == TA.hex()
    assert len(found.spans) == 5
    # The same search with a span duration no span of that operation has: nothing.
    r = get(api, key, url.replace("maxDuration=1.5s", "maxDuration=99ms"))
    assert model.traces(r.json()) == []
    # Service only, operation "All" (omitted), default limit, lookback instead of start.
    r = get(api, key, "/jaeger/api/traces?service=llm&lookback=1h")
    assert [t.traceID for t in model.traces(r.json())] == [TA.hex()]
    # A tag matched through the span.kind convention and an attribute of another type.
    kind_tags = enc('{"span.kind":"client","http.status_code":"200"}')
    r = get(api, key, f"/jaeger/api/traces?service=llm&tags={kind_tags}&lookback=1h")
    assert len(model.traces(r.json())) == 1


def test_trace_by_id_with_grafanas_time_units(api: RunningApi, world: dict[str, Any]) -> None:
    key = world["a"].member_key
    now_us = int(time.time() * 1_000_000)
    for query in (
        "",
        f"?start={now_us - 3_600_000_000}&end={now_us}",  # frontend: µs
        f"?start={now_us // 1000 - 3_600_000}&end={now_us // 1000}",
    ):  # backend: ms
        for tid in (TA.hex(), TA.hex().upper()):
            r = get(api, key, f"/jaeger/api/traces/{tid}{query}")
            assert r.status_code == 200, r.text
            (trace,) = model.traces(r.json())
            assert trace.traceID == TA.hex()
            assert len(trace.spans) == 5
    spans = {s.operationName: s for s in trace.spans}
    chat = spans["chat gpt-4o"]
    assert chat.startTime == world["base"] + 10_000
    assert chat.duration == 50_000
    assert [r.refType for r in chat.references] == ["CHILD_OF", "FOLLOWS_FROM"]
    assert chat.logs[0].fields[0].value == "retrying"
    tool = {t.key: t.value for t in spans["tool"].tags}
    assert tool["error"] is True
    assert tool["otel.status_code"] == "ERROR"
    assert trace.processes[chat.processID].serviceName == "llm"
    assert len(trace.processes) == 4  # planner, llm, tools, svc a/b


def test_dependencies_and_v3(api: RunningApi, world: dict[str, Any]) -> None:
    key = world["a"].admin_key
    end_ms = int(time.time() * 1000)
    r = get(api, key, f"/jaeger/api/dependencies?endTs={end_ms}&lookback=3600000")
    deps = {(d.parent, d.child): d.callCount for d in model.dependencies(r.json())}
    assert deps == {("planner", "llm"): 1, ("planner", "tools"): 1, ("planner", "svc a/b"): 1}
    r = get(api, key, "/jaeger/api/v3/services")
    assert r.json() == {"services": ["llm", "planner", "svc a/b", "tools"]}
    r = get(api, key, "/jaeger/api/v3/operations?service=llm")
    assert r.json() == {"operations": [{"name": "chat gpt-4o", "spanKind": "client"}]}
    now = datetime.now(UTC)
    bounds = f"start_time={enc((now - timedelta(hours=1)).isoformat().replace('+00:00', 'Z'))}"
    r = get(api, key, f"/jaeger/api/v3/traces/{TA.hex()}?{bounds}")
    assert r.status_code == 200, r.text
    spans = [s for rs in r.json()["result"]["resourceSpans"] for ss in rs["scopeSpans"]
             for s in ss["spans"]]  # fmt: skip
    assert sorted(s["spanId"] for s in spans) == sorted(f"{n:016x}" for n in (1, 2, 3, 4, 9))
    lo = enc((now - timedelta(hours=1)).isoformat())
    hi = enc(now.isoformat())
    r = get(api, key, f"/jaeger/api/v3/traces?query.serviceName=tools&query.startTimeMin={lo}"
                      f"&query.startTimeMax={hi}")  # fmt: skip
    assert r.status_code == 200, r.text
    r = get(api, key, f"/jaeger/api/v3/traces?query.serviceName=nobody&query.start_time_min={lo}"
                      f"&query.start_time_max={hi}")  # fmt: skip
    assert r.status_code == 404
    assert r.json()["error"]["message"] == "No traces found"


def test_bad_and_broad_requests_answer_in_the_envelope(
    api: RunningApi, world: dict[str, Any]
) -> None:
    key = world["a"].admin_key
    for url, needle in (
        ("/jaeger/api/traces?service=llm&minDuration=5", "minDuration"),
        ("/jaeger/api/traces?service=llm&tags=not-json", "tags"),
        ("/jaeger/api/traces?service=llm&start=yesterday", "start"),
        ("/jaeger/api/traces", "name a service"),  # 48 h without a service
        ("/jaeger/api/traces/xyz", "traceID"),
        ("/jaeger/api/operations?service=llm&spanKind=sideways", "spanKind"),
        ("/jaeger/api/dependencies?lookback=2592000000", "at most"),
    ):
        r = get(api, key, url)
        assert r.status_code == 400, url
        env = model.Envelope.model_validate(r.json())
        assert env.errors, url
        assert needle in env.errors[0].msg, (url, env.errors)
    r = get(api, key, "/jaeger/api/v3/traces/not-an-id")
    assert r.status_code == 400
    assert r.json()["error"]["httpCode"] == 400


def test_tenancy_in_both_apis(api: RunningApi, world: dict[str, Any]) -> None:
    a, b = world["a"], world["b"]
    for path in (f"/jaeger/api/traces/{TB.hex()}", f"/jaeger/api/v3/traces/{TB.hex()}"):
        assert get(api, a.admin_key, path).status_code == 404
        assert get(api, b.admin_key, path).status_code == 200
    r = get(api, a.admin_key, "/jaeger/api/traces?service=planner&lookback=1h")
    assert [t.traceID for t in model.traces(r.json())] == [TA.hex()]
    assert get(api, a.admin_key, "/jaeger/api/traces?service=planner&lookback=1h",
               **{"X-AEOS-Org-ID": str(b.org_id)}).status_code == 403  # fmt: skip
    assert get(api, a.admin_key, "/jaeger/api/services").json()["data"].count("planner") == 1
    staff = api.staff_key("alias_support")
    r = get(api, staff, "/jaeger/api/traces?service=planner&lookback=1h")
    assert sorted(t.traceID for t in model.traces(r.json())) == sorted([TA.hex(), TB.hex()])
    r = get(api, staff, f"/jaeger/api/traces?service=planner&lookback=1h&org_id={b.org_id}")
    assert [t.traceID for t in model.traces(r.json())] == [TB.hex()]
    r = get(api, staff, f"/jaeger/api/traces/{TA.hex()}", **{"X-AEOS-Org-ID": str(b.org_id)})
    assert r.status_code == 404
    assert get(api, staff, f"/jaeger/api/traces/{TA.hex()}").status_code == 200
    r = get(api, staff, "/jaeger/api/services", **{"X-AEOS-Org-ID": str(uuid.uuid4())})
    assert model.strings(r.json()) == []
    assert get(api, "aeos_ak_bogus", "/jaeger/api/services").status_code == 401
