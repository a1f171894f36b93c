"""Retention windows and cutoffs without a database: overrides, groups, boundaries, types."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
import pytest

from storage.errors import InvalidInputError
from storage.retention._export import export_column
from storage.retention._targets import RelationKind, Target
from storage.retention.run import OrgWindows, merge_overrides, plan_target, validate_overrides

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
US = timedelta(microseconds=1)


def org(plan_days: dict[str, int]) -> OrgWindows:
    return OrgWindows(uuid.uuid4(), "o", "free", {}, plan_days)


def target(relation: str, kind: RelationKind = RelationKind.TABLE, **kw: object) -> Target:
    return Target(relation, "spans", "t", kind, f"public.{relation}", **kw)  # type: ignore[arg-type]


def test_valid_overrides_pass_through() -> None:
    assert validate_overrides({"spans": 30, "rollup_1d": 36500}) == {
        "spans": 30,
        "rollup_1d": 36500,
    }


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"spanz": 3}, "unknown data class 'spanz'; expected one of events, spans"),
        ({"spans": 0}, "spans: 0 days is outside 1..36500"),
        ({"spans": 36501}, "outside 1..36500"),
        ({"spans": 1.5}, "not a whole number of days"),
        ({"spans": "7"}, "not a whole number of days"),
        ({"spans": True}, "not a whole number of days"),
        ({"spans": None}, "not a whole number of days"),
    ],
)
def test_bad_overrides_say_what_is_wrong(raw: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        validate_overrides(raw)


def test_merging_overrides_sets_and_removes() -> None:
    assert merge_overrides({"spans": 30, "events": 2}, {"events": None, "rollup_1h": 40}) == {
        "spans": 30,
        "rollup_1h": 40,
    }
    with pytest.raises(InvalidInputError, match="unknown data class 'nope'"):
        merge_overrides({}, {"nope": None})


def test_orgs_with_the_same_window_share_a_group_and_the_longest_window_drops() -> None:
    a, b, c = org({"spans": 3}), org({"spans": 3}), org({"spans": 14})
    plan = plan_target(target("spans", RelationKind.PARTITIONED), [a, b, c], NOW)
    assert plan.groups == {
        NOW - timedelta(days=3): (a.org_id, b.org_id),
        NOW - timedelta(days=14): (c.org_id,),
    }
    assert plan.drop_before == NOW - timedelta(days=14)


def test_plain_tables_and_one_org_runs_drop_nothing_whole() -> None:
    a, b = org({"spans": 3}), org({"spans": 14})
    assert plan_target(target("spans"), [a, b], NOW).drop_before is None
    one = plan_target(target("spans", RelationKind.HYPERTABLE), [a, b], NOW, a.org_id)
    assert one.drop_before is None
    assert one.groups == {NOW - timedelta(days=3): (a.org_id,)}


def test_an_org_without_a_window_keeps_everything_and_blocks_whole_drops() -> None:
    a, forever = org({"spans": 3}), org({})
    plan = plan_target(target("spans", RelationKind.PARTITIONED), [a, forever], NOW)
    assert plan.groups == {NOW - timedelta(days=3): (a.org_id,)}
    assert plan.drop_before is None
    assert plan_target(target("spans", RelationKind.PARTITIONED), [], NOW).drop_before is None


def test_relations_without_org_go_by_the_longest_window_in_whole_runs_only() -> None:
    a, b = org({"spans": 3}), org({"spans": 14})
    platform = target("platform_red_1h", per_org=False)
    cutoff = NOW - timedelta(days=14) - timedelta(hours=1) + US
    assert plan_target(platform, [a, b], NOW).groups == {cutoff: ()}
    assert plan_target(platform, [a, b], NOW, a.org_id).groups == {}


@pytest.mark.parametrize(
    ("relation", "last_gone", "first_kept"),
    [
        ("spans", NOW - timedelta(days=3) - US, NOW - timedelta(days=3)),
        # A bucket goes when it ends by the window's start.
        (
            "span_red_1m",
            NOW - timedelta(days=3, minutes=1),
            NOW - timedelta(days=3, minutes=1) + US,
        ),
        ("span_red_1h", NOW - timedelta(days=3, hours=1), NOW - timedelta(days=3, hours=1) + US),
        ("span_red_1d", NOW - timedelta(days=4), NOW - timedelta(days=4) + US),
    ],
)
def test_cutoffs_to_the_microsecond(
    relation: str, last_gone: datetime, first_kept: datetime
) -> None:
    plan = plan_target(target(relation), [org({"spans": 3})], NOW)
    [cutoff] = plan.groups
    assert last_gone < cutoff <= first_kept


@pytest.mark.parametrize(
    ("cutoff", "first_kept_day"),
    [
        (datetime(2026, 8, 30, 12, 0, tzinfo=UTC), date(2026, 8, 31)),  # day 30 ends after it
        (datetime(2026, 8, 30, 0, 0, tzinfo=UTC), date(2026, 8, 30)),
        (datetime(2026, 8, 30, 0, 0, 0, 1, tzinfo=UTC), date(2026, 8, 31)),
    ],
)
def test_date_columns_round_the_cutoff_up_to_a_day(cutoff: datetime, first_kept_day: date) -> None:
    daily = target("cost_daily", time_is_date=True)
    assert daily.width == timedelta(days=1)
    assert daily.cutoff_value(cutoff) == first_kept_day


def test_cost_daily_keeps_the_day_the_window_starts_in() -> None:
    daily = target("cost_daily", time_is_date=True)
    [cutoff] = plan_target(daily, [org({"spans": 90})], NOW).groups
    start = NOW - timedelta(days=90)  # 2026-08-30 12:00
    assert daily.cutoff_value(cutoff) == start.date()  # that day is kept, the one before goes


@pytest.mark.parametrize(
    ("pg_type", "arrow", "select"),
    [
        ("bytea", pa.binary(), 'r."c"'),
        ("uuid", pa.string(), 'r."c"::text AS "c"'),
        ("jsonb", pa.string(), 'r."c"::text AS "c"'),
        ("timestamp with time zone", pa.timestamp("us", tz="UTC"), 'r."c"'),
        ("date", pa.date32(), 'r."c"'),
        ("numeric(20,10)", pa.decimal128(20, 10), 'r."c"'),
        ("numeric(60,2)", pa.decimal256(60, 2), 'r."c"'),
        ("numeric", pa.string(), 'r."c"::text AS "c"'),
        ("bytea[]", pa.list_(pa.binary()), 'r."c"'),
        ("double precision[]", pa.list_(pa.float64()), 'r."c"'),
        ("smallint", pa.int16(), 'r."c"'),
        ("interval", pa.string(), 'r."c"::text AS "c"'),
    ],
)
def test_export_types(pg_type: str, arrow: pa.DataType, select: str) -> None:
    column = export_column("c", pg_type)
    assert column.arrow_type == arrow
    assert column.select == select
