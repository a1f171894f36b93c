"""The API's pure parts: cursors, instants, the rate limiter, CSV cells."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from pydantic import BaseModel

from query_api import paging
from query_api.errors import ApiError
from query_api.params import parse_instant
from query_api.ratelimit import RateLimiter, retry_after_seconds
from query_api.tabular import to_csv


def test_cursor_round_trip_keeps_types() -> None:
    values = {
        "t": datetime(2026, 12, 1, 9, 30, 0, 123456, tzinfo=UTC),
        "id": uuid.UUID("4f1c2a9e-3b7d-4e8a-9c1f-2d5e6f7a8b9c"),
        "cost": Decimal("0.000123"),
        "n": 7,
        "s": "a/b+c",
        "none": None,
    }
    token = paging.encode_cursor(values)
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert paging.decode_cursor(token) == values


def test_cursor_refused_when_changed_or_from_another_deployment() -> None:
    paging.configure("one secret")
    token = paging.encode_cursor({"n": 1})
    for i in range(len(token)):
        changed = token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1 :]
        with pytest.raises(ApiError) as err:
            paging.decode_cursor(changed)
        assert err.value.kind == "invalid-cursor"
    paging.configure("another secret")
    with pytest.raises(ApiError):
        paging.decode_cursor(token)
    paging.configure("one secret")
    assert paging.decode_cursor(token) == {"n": 1}
    with pytest.raises(TypeError):
        paging.encode_cursor({"x": object()})


def test_instants() -> None:
    expect = datetime(2025, 12, 1, 0, 0, tzinfo=UTC)
    assert parse_instant("1764547200000", "start") == expect
    assert parse_instant("2025-12-01T00:00:00Z", "start") == expect
    assert parse_instant("2025-12-01T01:00:00+01:00", "start") == expect
    assert parse_instant("2025-12-01t00:00:00z", "start") == expect
    assert parse_instant("2025-12-01T01:00:00+01:00", "x").tzinfo == UTC
    for bad in ("", "yesterday", "2025-12-01T00:00:00", "-5", "1e12", "99999999999999999"):
        with pytest.raises(ApiError) as err:
            parse_instant(bad, "end")
        assert err.value.status == 422
        assert err.value.errors is not None
        assert err.value.errors[0].param == "end"
    assert parse_instant("0", "s") == datetime(1970, 1, 1, tzinfo=UTC)
    assert parse_instant("2025-12-01T00:00:00-05:00", "s") == expect + timedelta(hours=5)


def test_rate_limiter_refills_at_its_rate() -> None:
    now = [100.0]
    limiter = RateLimiter(60, 2, clock=lambda: now[0])  # one a second, bursts of two
    assert [limiter.acquire("k") for _ in range(2)] == [0.0, 0.0]
    wait = limiter.acquire("k")
    assert wait == pytest.approx(1.0)
    assert retry_after_seconds(wait) == 1
    assert limiter.acquire("other") == 0.0
    now[0] += 0.5
    assert limiter.acquire("k") == pytest.approx(0.5)
    now[0] += 0.5
    assert limiter.acquire("k") == 0.0
    now[0] += 3600
    assert [limiter.acquire("k") for _ in range(3)][:2] == [0.0, 0.0]
    assert RateLimiter(0, 1).acquire("k") == 0.0


class _Row(BaseModel):
    a: int
    b: str | None
    c: dict[str, int]
    d: bool


def test_csv_cells() -> None:
    rows = [_Row(a=1, b="x,y", c={"z": 1}, d=True), _Row(a=2, b=None, c={}, d=False)]
    assert to_csv(rows, _Row) == 'a,b,c,d\r\n1,"x,y","{""z"":1}",true\r\n2,,{},false\r\n'


def test_job_log_summary_is_one_short_line() -> None:
    from storage.jobs.scheduler import SHORT_SUMMARY_CHARS, short_summary

    summary = {
        "now": "2026-12-01T20:45:22+00:00",
        "total_rows": 12,
        "relations": [{"name": f"spans_p{i}", "rows": i} for i in range(200)],
        "orgs": {"a": {"spans": 1}},
        "note": "x" * 500,
    }
    line = short_summary(summary)
    assert line.startswith(": now=2026-12-01T20:45:22+00:00 total_rows=12 note=xxx")
    assert len(line) <= SHORT_SUMMARY_CHARS + 2
    assert "\n" not in line
    assert line.endswith("…")
    assert short_summary({"nested": {"only": 1}}) == ""
    assert short_summary({"ok": True, "n": 1}) == ": ok=True n=1"


def test_api_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    from query_api.settings import ApiSettings

    monkeypatch.setenv("AEOS_API_OIDC_JWKS_URL", "https://api.workos.com/sso/jwks/client_1")
    with pytest.raises(ValidationError, match="AEOS_API_OIDC_ISSUERS"):
        ApiSettings()
    monkeypatch.setenv("AEOS_API_OIDC_ISSUERS", "https://a.example, https://b.example")
    assert ApiSettings().oidc_issuers == ["https://a.example", "https://b.example"]
    monkeypatch.setenv("AEOS_API_OIDC_ISSUERS", '["https://c.example"]')
    assert ApiSettings().oidc_issuers == ["https://c.example"]
    monkeypatch.setenv("AEOS_API_RATE_PER_MINUTE", "-1")
    with pytest.raises(ValidationError, match="rate_per_minute"):
        ApiSettings()
