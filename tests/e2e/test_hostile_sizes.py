"""Hostile input, class "sizes": bodies, item counts and values too large for a column.

Issue 9, finding 2 (a 6,000-character ``service.name`` read as "database down") and
finding 3 (one request taking a worker's whole queue) are reproduced here.
"""

from __future__ import annotations

import gzip
import secrets
import time

import httpx
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from tests.e2e._hostile import (
    HostileService,
    alongside,
    assert_partial,
    assert_refused,
    hostile,
    post,
    spans_body,
)
from tests.unit._otlp import kvs

__all__ = ["hostile"]  # the fixture


def test_a_body_over_the_size_limit_is_413(hostile: HostileService) -> None:
    _, key = hostile.new_org()
    body = spans_body(1, {"pad": "x" * (5 * 1024 * 1024)})
    response = alongside(hostile, lambda: post(f"{hostile.url}/v1/traces", key, body))
    assert_refused(response, 413, "larger than 4194304 bytes")


def test_a_request_over_the_item_limit_is_413_whatever_the_queue_holds(
    hostile: HostileService,
) -> None:
    """Finding 3: the queue bound was skipped for a request arriving at an empty queue."""
    org, key = hostile.new_org()
    body = spans_body(2001)
    response = alongside(hostile, lambda: post(f"{hostile.url}/v1/traces", key, body))
    assert_refused(response, 413, "the request has 2001 items; at most 2000")
    assert hostile.scalar("SELECT count(*) FROM spans WHERE org_id = :o", o=org) == 0


def test_a_gzip_bomb_is_413(hostile: HostileService) -> None:
    _, key = hostile.new_org()
    bomb = gzip.compress(bytes(64 * 1024 * 1024), 9)
    response = alongside(
        hostile,
        lambda: post(f"{hostile.url}/v1/traces", key, bomb, content_encoding="gzip"),
    )
    assert_refused(response, 413, "larger than")


def _logs(service_name: str) -> bytes:
    records = [LogRecord(time_unix_nano=time.time_ns(), body=AnyValue(string_value="hello"))]
    request = ExportLogsServiceRequest(
        resource_logs=[
            ResourceLogs(
                resource=Resource(attributes=kvs({"service.name": service_name})),
                scope_logs=[ScopeLogs(log_records=records)],
            )
        ]
    )
    return bytes(request.SerializeToString())


def test_an_indexed_field_over_the_btree_limit_is_a_partial_success(
    hostile: HostileService,
) -> None:
    """Finding 2: refused by the btree index, read as unavailable; 503 for other orgs."""
    org, key = hostile.new_org()
    body = _logs(secrets.token_hex(3000))  # 6,000 incompressible characters
    response = alongside(hostile, lambda: post(f"{hostile.url}/v1/logs", key, body))
    assert response.status_code == 200
    answer = ExportLogsServiceResponse()
    answer.ParseFromString(response.content)
    assert answer.partial_success.rejected_log_records == 1
    assert "'service.name' is longer than 256 bytes" in answer.partial_success.error_message
    assert hostile.scalar("SELECT count(*) FROM events WHERE org_id = :o", o=org) == 0


def test_mapped_span_fields_over_their_bounds_reject_only_their_spans(
    hostile: HostileService,
) -> None:
    org, key = hostile.new_org()
    body = spans_body(1, {"mosaic.task_run.id": secrets.token_hex(3000)})
    response = alongside(hostile, lambda: post(f"{hostile.url}/v1/traces", key, body))
    assert_partial(response, 1, "'mosaic.task_run.id' is longer than 256 bytes")
    long_name = spans_body(2, name="n" * 5000)
    assert_partial(post(f"{hostile.url}/v1/traces", key, long_name), 2, "name is longer")
    assert hostile.scalar("SELECT count(*) FROM spans WHERE org_id = :o", o=org) == 0


def test_oversize_and_too_many_attributes_are_partial_successes(
    hostile: HostileService,
) -> None:
    _, key = hostile.new_org()
    big = spans_body(1, {"blob": "b" * 70_000})
    response = alongside(hostile, lambda: post(f"{hostile.url}/v1/traces", key, big))
    assert_partial(response, 1, "larger than 65536 bytes")
    many = spans_body(1, {f"k{i}": i for i in range(300)})
    assert_partial(post(f"{hostile.url}/v1/traces", key, many), 1, "more than 256 attributes")


def test_metrics_endpoint_counts_size_refusals(hostile: HostileService) -> None:
    _, key = hostile.new_org()
    before = hostile.refusals("too_many_items")
    response = post(f"{hostile.url}/v1/traces", key, spans_body(2500))
    assert response.status_code == 413
    assert hostile.refusals("too_many_items") == before + 1
    assert isinstance(hostile.metrics(), str)
    assert httpx.get(f"{hostile.url}/healthz").status_code == 200
