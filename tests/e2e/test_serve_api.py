"""``aeos serve`` serves the query API from several processes sharing the port."""

from __future__ import annotations

import httpx
import psutil

from tests.e2e.conftest import RunningService


def _listeners(port: int) -> set[int]:
    return {
        c.pid
        for c in psutil.net_connections(kind="tcp")
        if c.laddr and c.laddr.port == port and c.status == psutil.CONN_LISTEN and c.pid
    }


def test_api_processes_share_the_port_and_the_metrics(service: RunningService) -> None:
    pids = _listeners(service.api_port)
    assert len(pids) == 2  # AEOS_API_WORKERS=2 (tests/e2e/conftest.py)
    children = {p.pid for p in psutil.Process(service.proc.pid).children()}
    assert pids <= children
    _, key = service.new_org()
    service.wait_for(
        "SELECT count(*) FROM scheduler_runs WHERE job = 'partitions' AND status = 'ok'", 1
    )
    # Whichever process a new connection reaches, /metrics sums every API process.
    for _ in range(12):
        with httpx.Client(base_url=f"http://127.0.0.1:{service.api_port}") as client:
            metrics = client.get("/metrics", timeout=10).text
            assert 'aeos_scheduler_runs_total{job="partitions",status="ok"}' in metrics
            assert (
                client.get("/v1/me", headers={"Authorization": f"Bearer {key}"}).status_code == 403
            )
