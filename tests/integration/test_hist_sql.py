"""The SQL histogram functions (``storage.hist.SQL_FUNCTIONS``) agree with the Python ones.

Rollup rows are merged with ``aeos_hist_add`` and their p-columns computed by
``aeos_hist_quantile_n`` (PostgreSQL engine) or ``aeos_hist_quantile`` (continuous
aggregates, readers), while the rollup tests' reference recomputes from raw rows in
Python: any disagreement between the two sides would show up as a wrong percentile.
Both branches of ``aeos_hist_add`` (merge, and binary search into a larger histogram) and
both directions of ``aeos_hist_quantile_n`` (from the bottom, from the top) are reached.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from storage import hist
from storage.database import Database

pytestmark = pytest.mark.usefixtures("pg_server")

QS = (0.0, 0.01, 0.25, 0.5, 0.75, 0.95, 0.99, 1.0)
_values = st.lists(
    st.one_of(
        st.just(0.0),
        st.floats(1e-3, 1e6, allow_nan=False),
        st.sampled_from([1.0, 2.5, 10.0, 100.0]),  # repeated values: counts above 1
    ),
    min_size=1,
    max_size=300,
)


def _sql(conn: Any, statement: str, **params: Any) -> Any:
    return conn.execute(text(statement), params).one()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(values=_values, split=st.floats(0, 1), extra_q=st.floats(0, 1))
def test_sql_merge_and_quantiles_equal_python(
    database: Database, values: list[float], split: float, extra_q: float
) -> None:
    cut = int(len(values) * split)
    a, b = hist.of_values(values[:cut]), hist.of_values(values[cut:])
    whole = hist.of_values(values)
    qs = [*QS, extra_q]
    with database.admin_engine().connect() as conn:
        ab, ba = _sql(conn, "SELECT aeos_hist_add(:a, :b), aeos_hist_add(:b, :a)", a=a, b=b)
        assert list(ab) == whole == hist.merge(a, b)
        assert list(ba) == whole
        n = sum(e & hist.COUNT_MASK for e in whole)
        for q in qs:
            got = _sql(
                conn,
                "SELECT aeos_hist_quantile(:h, :q), aeos_hist_quantile_n(:h, :n, :q), "
                "aeos_hist_quantile_n(:h, NULL, :q), aeos_hist_quantile_n(:h, 0, :q), "
                "aeos_hist_quantile_n(:h, 9223372036854775807, :q)",
                h=whole,
                n=n,
                q=q,
            )
            assert len(set(got)) == 1, (q, got)  # every form, and every count given
            # The same bucket as Python; its representative can differ in the last bit
            # (SQL multiplies by the constant in numeric): never a neighbouring bucket's.
            assert got[0] == pytest.approx(hist.quantile(whole, q), rel=1e-12, abs=0), q


def test_binary_search_path_adds_into_existing_and_new_buckets(database: Database) -> None:
    """A handful of buckets into a large histogram: some existing, some new, at both ends."""
    big = hist.of_values([1.0 + i / 10 for i in range(400)])
    small = hist.of_values([0.0, 0.5, 1.0, 7.77, 20.0, 1e6])
    assert len(small) * 4 < len(big)  # the search branch, not the merge
    with database.admin_engine().connect() as conn:
        (merged,) = _sql(conn, "SELECT aeos_hist_add(:a, :b)", a=big, b=small)
    assert list(merged) == hist.merge(big, small)


def test_empty_histograms(database: Database) -> None:
    with database.admin_engine().connect() as conn:
        row = _sql(
            conn,
            "SELECT aeos_hist_quantile('{}', 0.5), aeos_hist_quantile(NULL, 0.5), "
            "aeos_hist_quantile_n('{}', 3, 0.5), aeos_hist_quantile_n(NULL, 3, 0.5), "
            "aeos_hist_add('{}', :h), aeos_hist_add(:h, NULL)",
            h=hist.of_values([3.0]),
        )
    assert list(row[:4]) == [None] * 4
    assert list(row[4]) == list(row[5]) == hist.of_values([3.0])
