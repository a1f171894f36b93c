"""The sampling decision on the trace id, pinned: changing it would change which stored
traces the sweep prunes, so any change must be deliberate (and made in SQL too)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from storage.jobs.sampling import keep_bucket, keep_threshold, trace_keep, trace_sampled


def test_the_bucket_is_the_first_four_bytes_of_sha256_mod_10000() -> None:
    # sha256(b"\x00") starts with 6e 34 0b 9c: 0x6e340b9c = 1848904604.
    assert keep_bucket(b"\x00") == 1848904604 % 10_000 == 4604
    # sha256(b"") starts with e3 b0 c4 42: 0xe3b0c442 = 3820012610 (> 2**31: unsigned).
    assert keep_bucket(b"") == 3820012610 % 10_000 == 2610


@pytest.mark.parametrize(
    ("percent", "threshold"),
    [
        ("0", 0),
        (0, 0),
        ("0.01", 1),
        ("0.005", 1),  # half away from zero, as PostgreSQL's round(numeric)
        ("0.004", 0),
        (10, 1000),
        (12.5, 1250),
        (Decimal("33.33"), 3333),
        ("12.345", 1235),
        ("100", 10_000),
    ],
)
def test_threshold_in_basis_points(percent: str | int | float | Decimal, threshold: int) -> None:
    assert keep_threshold(percent) == threshold


@pytest.mark.parametrize("percent", ["-1", "100.01", "ten", "NaN", "Infinity", ""])
def test_bad_percentages_are_refused(percent: str) -> None:
    with pytest.raises(ValueError, match="percentage"):
        keep_threshold(percent)


def test_the_bucket_compares_strictly() -> None:
    trace_id = b"\x00"  # bucket 4604
    assert not trace_keep(trace_id, "46.04")
    assert trace_keep(trace_id, "46.05")


@given(st.binary(max_size=32))
def test_nothing_at_zero_everything_at_one_hundred(trace_id: bytes) -> None:
    assert not trace_keep(trace_id, 0)
    assert trace_keep(trace_id, 100)


@given(st.binary(min_size=16, max_size=16), st.integers(0, 10_000), st.integers(0, 10_000))
def test_a_trace_kept_at_some_percent_is_kept_at_any_higher_one(
    trace_id: bytes, low: int, high: int
) -> None:
    low, high = min(low, high), max(low, high)
    if trace_keep(trace_id, Decimal(low) / 100):
        assert trace_keep(trace_id, Decimal(high) / 100)


def test_errors_are_always_kept() -> None:
    assert trace_sampled(b"\x00", 1, 0)
    assert not trace_sampled(b"\x00", 0, 0)
