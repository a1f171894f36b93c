"""bench/api.py runs end to end on a tiny load and ends with its JSON summary.

A smoke test only: every part runs (load, the API in its own process at 1 and 8
clients, the rollups-against-raw comparison) and the views agree with raw spans; how
fast anything is is never asserted (timings on a shared machine prove nothing).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--spans", "3000", "--orgs", "4", "--days", "3", "--requests", "4", "--raw-runs", "1",
        "--rollup-runs", "2"]  # fmt: skip
VIEWS = {"org_overview", "query_30d_hourly", "task_run_search", "agent_list",
         "staff_global_overview", "staff_org_explorer"}  # fmt: skip


@pytest.mark.slow
def test_bench_api_tiny_prints_a_summary(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "api.py"), *TINY, "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["spans"] == 3000
    assert set(summary["http"]) == VIEWS
    assert all(set(v) == {"c1", "c8"} for v in summary["http"].values())
    assert set(summary["rollups_vs_raw"]) == VIEWS - {"task_run_search"}
    assert summary["problems"] == []
    assert set(summary["targets"]) == {"p95_under_100ms_at_8", "ratio_at_least_50"}
