"""Hostile input, class "encodings": compression, content types, corrupt or odd bodies.

Issue 9, finding 6 (two concatenated gzip members, or a stream cut at a flush point
without its trailer: 200 with part of the data missing) is reproduced here.
"""

from __future__ import annotations

import gzip
import json
import zlib

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.e2e._hostile import (
    HostileService,
    alongside,
    assert_partial,
    assert_refused,
    hostile,
    post,
    spans_body,
)

__all__ = ["hostile"]  # the fixture


def _trace_id(body: bytes) -> bytes:
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    return bytes(request.resource_spans[0].scope_spans[0].spans[0].trace_id)


def test_every_gzip_member_is_decompressed(hostile: HostileService) -> None:
    """Finding 6: only the first of two concatenated members was read."""
    org, key = hostile.new_org()
    first, second = spans_body(2), spans_body(3)
    # Two members, each a complete protobuf message: concatenated messages merge their
    # repeated fields (protobuf encoding), so the body is one request of 5 spans.
    body = gzip.compress(first) + gzip.compress(second)
    response = alongside(
        hostile, lambda: post(f"{hostile.url}/v1/traces", key, body, content_encoding="gzip")
    )
    assert_partial(response, 0, "")
    assert hostile.spans_of(org, _trace_id(first)) == 2
    assert hostile.spans_of(org, _trace_id(second)) == 3


def test_a_gzip_stream_cut_at_a_flush_point_is_400(hostile: HostileService) -> None:
    """Finding 6: a stream without its trailer was accepted with part of the data."""
    org, key = hostile.new_org()
    body = spans_body(50)
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    cut = packer.compress(body[: len(body) // 2]) + packer.flush(zlib.Z_SYNC_FLUSH)
    response = alongside(
        hostile, lambda: post(f"{hostile.url}/v1/traces", key, cut, content_encoding="gzip")
    )
    assert_refused(response, 400, "gzip body is truncated")
    assert hostile.scalar("SELECT count(*) FROM spans WHERE org_id = :o", o=org) == 0


def test_a_truncated_deflate_stream_is_400(hostile: HostileService) -> None:
    _, key = hostile.new_org()
    packer = zlib.compressobj(9)
    cut = packer.compress(spans_body(50)) + packer.flush(zlib.Z_SYNC_FLUSH)
    response = alongside(
        hostile, lambda: post(f"{hostile.url}/v1/traces", key, cut, content_encoding="deflate")
    )
    assert_refused(response, 400, "deflate body is truncated")
    whole = zlib.compress(spans_body(2))
    assert (
        post(f"{hostile.url}/v1/traces", key, whole, content_encoding="deflate").status_code == 200
    )


def test_corrupt_gzip_and_unknown_encodings_are_400(hostile: HostileService) -> None:
    _, key = hostile.new_org()
    corrupt = bytearray(gzip.compress(spans_body(5)))
    corrupt[20] ^= 0xFF
    response = alongside(
        hostile,
        lambda: post(f"{hostile.url}/v1/traces", key, bytes(corrupt), content_encoding="gzip"),
    )
    assert_refused(response, 400, "")
    brotli = post(f"{hostile.url}/v1/traces", key, b"x", content_encoding="br")
    assert_refused(brotli, 400, "unsupported content-encoding")


def test_garbage_protobuf_and_bad_json_are_400(hostile: HostileService) -> None:
    _, key = hostile.new_org()
    response = alongside(hostile, lambda: post(f"{hostile.url}/v1/traces", key, b"\xff" * 64))
    assert_refused(response, 400, "invalid protobuf")
    bad_utf8 = b'{"resourceSpans": [{"resource": {"attributes": [{"key": "\xff\xfe"}]}}]}'
    json_answer = post(f"{hostile.url}/v1/traces", key, bad_utf8, content_type="application/json")
    assert json_answer.status_code == 400
    assert json_answer.headers["content-type"] == "application/json"
    assert json.loads(json_answer.content)["message"]


def test_an_unsupported_content_type_is_415(hostile: HostileService) -> None:
    _, key = hostile.new_org()
    response = alongside(
        hostile, lambda: post(f"{hostile.url}/v1/traces", key, b"{}", content_type="text/plain")
    )
    assert_refused(response, 415, "unsupported content type")


def test_nul_characters_and_invalid_ids_are_cleaned_or_rejected(hostile: HostileService) -> None:
    org, key = hostile.new_org()
    body = spans_body(2, {"k\x00ey": "v\x00al"}, name="na\x00me")
    response = alongside(hostile, lambda: post(f"{hostile.url}/v1/traces", key, body))
    assert_partial(response, 0, "")
    stored = hostile.scalar("SELECT min(name) FROM spans WHERE org_id = :o", o=org)
    assert stored == "na\ufffdme"
    zero_ids = spans_body(1, trace_id=bytes(16))
    assert_partial(post(f"{hostile.url}/v1/traces", key, zero_ids), 1, "trace_id must be 16 bytes")
