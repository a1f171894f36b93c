"""Anomaly rules on the hourly rollups, on both engines: quiet over a normal seasonal
week, firing on an injected spike."""

from __future__ import annotations

import math
import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from alerting.cycle import run_cycle
from storage import Batch
from storage.database import Database
from tests.integration.alerting._world import add_rule, make_org, rows, span, write

START = datetime(2026, 11, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAYS = 11  # 4 days of history, then the evaluated week

pytestmark = [pytest.mark.usefixtures("pg_server"), pytest.mark.slow]


def _hourly(hour: int, rng: random.Random) -> int:
    """A daily pattern (busy afternoons), with a little noise."""
    return round(20 + 12 * math.sin(2 * math.pi * (hour % 24) / 24) + rng.uniform(-2, 2))


def _write_weeks(db: Database, org: uuid.UUID, spike_at: int | None) -> None:
    rng = random.Random(7)
    batches = []
    for h in range(DAYS * 24):
        n = _hourly(h, rng) * (8 if h == spike_at else 1)
        t = START + h * HOUR
        batches.append(
            Batch(org, spans=[span(t + timedelta(seconds=30 * i % 3600)) for i in range(n)])
        )
    write(db, batches)


def _rule(db: Database, org: uuid.UUID) -> uuid.UUID:
    return add_rule(db.app_engine(), org, name="traffic anomaly", type="anomaly", interval_s=3600,
                    params={"measure": "span_count", "seasonality": "daily", "z": 3})  # fmt: skip


def test_quiet_over_a_normal_seasonal_week_and_fires_on_a_spike(database: Database) -> None:
    engine = database.app_engine()
    quiet, spiky = make_org(database, "quiet"), make_org(database, "spiky")
    spike_hour = (DAYS - 2) * 24 + 3  # 03:00 two days before the end: a quiet hour
    _write_weeks(database, quiet, None)
    _write_weeks(database, spiky, spike_hour)
    quiet_rule, spiky_rule = _rule(database, quiet), _rule(database, spiky)
    for h in range(4 * 24 + 1, DAYS * 24 + 1):  # every hour of the last week (+1 min)
        run_cycle(engine, START + h * HOUR + timedelta(minutes=1))
    quiet_states = rows(engine, "SELECT state, details FROM alert_evaluations WHERE rule_id = :r",
                        r=quiet_rule)  # fmt: skip
    assert len(quiet_states) == 7 * 24
    assert {s["state"] for s in quiet_states} == {"normal"}
    assert max(abs(s["details"]["score"]) for s in quiet_states) < 3  # not even below
    fired = rows(engine, "SELECT time, value, details FROM alert_evaluations "
                 "WHERE rule_id = :r AND state = 'alerting' ORDER BY time", r=spiky_rule)  # fmt: skip
    # The spike hour is scored at the next hour; it fires there and only there.
    assert [f["time"] for f in fired] == [START + (spike_hour + 1) * HOUR + timedelta(minutes=1)]
    assert fired[0]["details"]["score"] > 3
    assert fired[0]["value"] > 3 * fired[0]["details"]["expected"]
