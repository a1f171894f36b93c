"""A mergeable latency (or size) distribution: sparse log-scale buckets, 1 % relative error.

A value ``v > 0`` falls in bucket ``k = ceil(ln(v) / ln(g))`` with ``g = 1.01 / 0.99``,
the bucket covering ``(g^(k-1), g^k]``; zero (and negative values, which durations never
are) fall in a bucket of their own. A quantile is answered with the bucket's
representative ``2*g^k / (g + 1)``, which is within ``RELATIVE_ERROR`` (1 %) of every value
in the bucket, so the estimate of the nearest-rank quantile of the raw values is within
1 % of it, however many histograms were merged (merging is adding counts bucket by
bucket, so it is exact). The buckets cover every positive double without clamping.

Encoding, the same in Python and in SQL (``aeos_hist_*`` functions, migration 0006): a
``bigint[]`` sorted by bucket, each element ``(k + OFFSET) << 40 | count``, no zero counts.
Python and PostgreSQL compute ``ln`` with the same C library and the same constant, so a
value lands in the same bucket whichever side computed it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

RELATIVE_ERROR = 0.01
GAMMA = (1 + RELATIVE_ERROR) / (1 - RELATIVE_ERROR)
#: ``ln(g)`` written out, so that SQL and Python divide by the very same double.
LN_GAMMA = 0.020000666706669
OFFSET = 1 << 20  # bucket k is stored as k + OFFSET (> 0 for every positive double)
SHIFT = 40
COUNT_MASK = (1 << SHIFT) - 1
ZERO_BUCKET = 0


def bucket_of(value: float) -> int:
    """The stored bucket number (``k + OFFSET``, or 0 for values <= 0)."""
    if value > 0:
        return math.ceil(math.log(value) / LN_GAMMA) + OFFSET
    return ZERO_BUCKET


def encode(counts: Mapping[int, int]) -> list[int]:
    """Stored buckets → the ``bigint[]`` encoding (sorted, zero counts left out)."""
    return [(k << SHIFT) | c for k, c in sorted(counts.items()) if c]


def decode(hist: Iterable[int]) -> dict[int, int]:
    """The ``bigint[]`` encoding → stored bucket → count."""
    return {e >> SHIFT: e & COUNT_MASK for e in hist}


def of_values(values: Iterable[float]) -> list[int]:
    """The histogram of ``values``."""
    counts: dict[int, int] = {}
    for v in values:
        k = bucket_of(v)
        counts[k] = counts.get(k, 0) + 1
    return encode(counts)


def merge(*hists: Iterable[int]) -> list[int]:
    """The histogram of the union of the inputs' values."""
    counts: dict[int, int] = {}
    for hist in hists:
        for k, c in decode(hist).items():
            counts[k] = counts.get(k, 0) + c
    return encode(counts)


def representative(bucket: int) -> float:
    """The value a quantile in ``bucket`` is answered with."""
    if bucket == ZERO_BUCKET:
        return 0.0
    return 2 * math.exp((bucket - OFFSET) * LN_GAMMA) / (1 + math.exp(LN_GAMMA))


def quantile(hist: Iterable[int], q: float) -> float | None:
    """The nearest-rank ``q`` quantile (within 1 %), None for an empty histogram."""
    entries = list(hist)
    total = sum(e & COUNT_MASK for e in entries)
    if total == 0:
        return None
    rank = max(math.ceil(q * total), 1)
    seen = 0
    for e in entries:
        seen += e & COUNT_MASK
        if seen >= rank:
            return representative(e >> SHIFT)
    return representative(entries[-1] >> SHIFT)  # pragma: no cover - rank <= total


#: The SQL side of this module (created by migration 0006, usable in any query;
#: ``aeos_array_add`` saturates since 0017; since 0019 ``aeos_hist_quantile_n`` ranks with
#: a known count and ``aeos_hist_add`` searches instead of merging for a few buckets).
SQL_FUNCTIONS = rf"""
CREATE OR REPLACE FUNCTION aeos_hist_unit(v double precision) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
  SELECT (CASE WHEN v > 0 THEN ceil(ln(v) / {LN_GAMMA}) + {OFFSET} ELSE 0 END)::bigint
         * {1 << SHIFT} + 1
$fn$;
COMMENT ON FUNCTION aeos_hist_unit(double precision) IS
  'One observation as an aeos histogram element (feed it to aeos_hist_collect).';

CREATE OR REPLACE FUNCTION aeos_hist_compact(a bigint[]) RETURNS bigint[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
  SELECT coalesce(array_agg(k * {1 << SHIFT} + c ORDER BY k), '{{}}')
    FROM (SELECT e >> {SHIFT} AS k, sum(e & {COUNT_MASK})::bigint AS c
            FROM unnest(a) AS e GROUP BY 1) AS x
$fn$;

CREATE OR REPLACE AGGREGATE aeos_hist_collect(bigint) (
  sfunc = array_append, stype = bigint[], finalfunc = aeos_hist_compact, initcond = '{{}}',
  parallel = safe
);
COMMENT ON AGGREGATE aeos_hist_collect(bigint) IS
  'Histogram of observations: aeos_hist_collect(aeos_hist_unit(value)).';

CREATE OR REPLACE AGGREGATE aeos_hist_merge_agg(bigint[]) (
  sfunc = array_cat, stype = bigint[], finalfunc = aeos_hist_compact, initcond = '{{}}',
  parallel = safe
);
COMMENT ON AGGREGATE aeos_hist_merge_agg(bigint[]) IS
  'Merges aeos histograms (e.g. duration_hist of many rollup rows) into one.';

CREATE OR REPLACE FUNCTION aeos_hist_add(a bigint[], b bigint[]) RETURNS bigint[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $fn$
DECLARE
  r bigint[];
  na integer := coalesce(cardinality(a), 0);
  nb integer := coalesce(cardinality(b), 0);
  i integer := 1;
  j integer := 1;
  hi integer;
  mid integer;
  e bigint;
  k bigint;
BEGIN
  IF na = 0 THEN RETURN coalesce(b, '{{}}'); END IF;
  IF nb = 0 THEN RETURN a; END IF;
  IF nb * 4 < na THEN
    -- A few buckets into a large histogram (a commit's rows into a stored rollup row):
    -- find each by binary search and add in place, instead of copying every bucket.
    r := a;
    FOREACH e IN ARRAY b LOOP
      k := e >> {SHIFT};
      hi := na + 1;
      WHILE i < hi LOOP  -- first position whose bucket >= k; b is sorted, so i only grows
        mid := (i + hi) / 2;
        IF r[mid] >> {SHIFT} < k THEN i := mid + 1; ELSE hi := mid; END IF;
      END LOOP;
      IF i <= na AND r[i] >> {SHIFT} = k THEN
        r[i] := r[i] + (e & {COUNT_MASK});
      ELSE
        r := r[1:i - 1] || e || r[i:na];
        na := na + 1;
      END IF;
      i := i + 1;
    END LOOP;
    RETURN r;
  END IF;
  r := '{{}}';
  WHILE i <= na AND j <= nb LOOP
    IF a[i] >> {SHIFT} = b[j] >> {SHIFT} THEN
      r := r || (a[i] + (b[j] & {COUNT_MASK})); i := i + 1; j := j + 1;
    ELSIF a[i] < b[j] THEN r := r || a[i]; i := i + 1;
    ELSE r := r || b[j]; j := j + 1;
    END IF;
  END LOOP;
  IF i <= na THEN r := r || a[i:na]; END IF;
  IF j <= nb THEN r := r || b[j:nb]; END IF;
  RETURN r;
END
$fn$;
COMMENT ON FUNCTION aeos_hist_add(bigint[], bigint[]) IS 'Merges two aeos histograms.';

CREATE OR REPLACE FUNCTION aeos_hist_quantile_n(h bigint[], n bigint, q double precision)
RETURNS double precision
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $fn$
DECLARE
  m integer := coalesce(cardinality(h), 0);
  seen bigint := 0;
  rank bigint;
  e bigint;
  i integer;
  k bigint;
BEGIN
  IF m = 0 THEN RETURN NULL; END IF;
  IF n IS NULL OR n <= 0 OR n >= {1 << 53} THEN  -- not a count we can rank with: count
    n := 0;
    FOREACH e IN ARRAY h LOOP n := n + (e & {COUNT_MASK}); END LOOP;
  END IF;
  rank := greatest(ceil(q * n)::bigint, 1);
  IF rank <= n - rank THEN
    FOREACH e IN ARRAY h LOOP
      seen := seen + (e & {COUNT_MASK});
      EXIT WHEN seen >= rank;
    END LOOP;
  ELSE  -- from the top: the answer is the first bucket with n - rank observations above it
    i := m;
    LOOP
      seen := seen + (h[i] & {COUNT_MASK});
      EXIT WHEN seen > n - rank OR i = 1;
      i := i - 1;
    END LOOP;
    e := h[i];
  END IF;
  k := e >> {SHIFT};
  IF k = 0 THEN RETURN 0; END IF;
  RETURN 2 * exp((k - {OFFSET}) * {LN_GAMMA}) / (1 + exp({LN_GAMMA}::double precision));
END
$fn$;
COMMENT ON FUNCTION aeos_hist_quantile_n(bigint[], bigint, double precision) IS
  'aeos_hist_quantile(h, q) of a histogram whose total count n is known (a rollup row''s '
  'count): reads only the buckets up to the answer, from the nearer end. NULL n: counts them.';

-- Qualified: TimescaleDB refreshes continuous aggregates with a search_path without public.
CREATE OR REPLACE FUNCTION aeos_hist_quantile(h bigint[], q double precision)
RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
  SELECT public.aeos_hist_quantile_n(h, NULL::bigint, q)
$fn$;
COMMENT ON FUNCTION aeos_hist_quantile(bigint[], double precision) IS
  'Nearest-rank quantile q (0..1) of an aeos histogram, within 1 % relative error.';

CREATE OR REPLACE FUNCTION aeos_hist_count(h bigint[]) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
  SELECT coalesce(sum(e & {COUNT_MASK}), 0)::bigint FROM unnest(h) AS e
$fn$;

CREATE OR REPLACE FUNCTION aeos_array_add(a bigint[], b bigint[]) RETURNS bigint[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
  SELECT CASE
    WHEN a IS NULL THEN b
    WHEN b IS NULL OR cardinality(a) <> cardinality(b) THEN a
    ELSE (SELECT array_agg(LEAST(x::numeric + y, 9223372036854775807)::bigint ORDER BY n)
            FROM unnest(a, b) WITH ORDINALITY AS u(x, y, n))
  END
$fn$;
COMMENT ON FUNCTION aeos_array_add(bigint[], bigint[]) IS
  'Element-wise sum of histogram bucket counts, saturating at 2^63 - 1 (arrays of different '
  'lengths: the first).';

CREATE OR REPLACE AGGREGATE aeos_array_sum_agg(bigint[]) (
  sfunc = aeos_array_add, stype = bigint[], parallel = safe
);
"""
