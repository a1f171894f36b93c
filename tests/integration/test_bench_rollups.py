"""bench/rollups.py runs end to end on a tiny load and ends with its JSON summary.

A smoke test only: it checks that every part runs and that the rollups agree with the
raw spans, never how fast anything is (timings on a shared machine prove nothing). The
end-to-end ingest part is left out (``--ingest-rounds 0``): it starts two ``aeos serve``
processes, which would triple the test's time, and tests/e2e already start that server.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TINY = [
    "--quick", "--spans", "3000", "--orgs", "5", "--days", "2", "--rollup-runs", "2",
    "--raw-runs", "1", "--ingest-rounds", "0",
    "--backfill-spans", "1000",
]  # fmt: skip


@pytest.mark.slow
def test_bench_rollups_quick_prints_a_summary(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "rollups.py"), *TINY, "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["spans"] == 3000
    assert set(summary["latency_ms"]) == {"org_rollups", "global_rollups", "org_raw", "global_raw"}
    assert all(set(v) == {"p50", "p95", "max"} for v in summary["latency_ms"].values())
    assert set(summary["speedup"]) == {"org", "global"}
    assert summary["agreement"]["ok"]
    assert summary["agreement"]["buckets"] > 0
    assert "ingest" not in summary
    backfill = summary["ingest_backfill_shaped"]
    assert set(backfill) == {"rollups_on_spans_per_s", "rollups_off_spans_per_s", "cost"}
    assert "org_rollups_p95_under_25ms" in summary["targets_met"]
