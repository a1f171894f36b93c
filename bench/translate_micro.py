"""Micro-benchmark of the receiver's pure path: decode (protobuf, JSON) and translate.

Builds one traces request of 1,000 spans with ~20 attributes each (strings, ints, doubles,
a bool, an array; one span in ten is an LLM call, one in fifty a task run's own span)
and prints the best and median microseconds per span over several rounds.

Run from the repository root: ``PYTHONPATH=. .venv/bin/python bench/translate_micro.py``
(options ``--spans 1000 --rounds 15``).
"""

from __future__ import annotations

import argparse
import base64
import json
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

from google.protobuf import json_format  # type: ignore[import-untyped]
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from otlp_receiver._decode import JSON, PROTOBUF, decode_traces
from otlp_receiver._json_traces import JsonRequest
from otlp_receiver._lite import decode_traces_fast
from otlp_receiver._translate import translate_traces
from otlp_receiver.server import tune_gc

T0 = 1_700_000_000_000_000_000
ORG = uuid.UUID(int=1)


def _kv(key: str, value: Any) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    if isinstance(value, list):
        values = [AnyValue(string_value=v) for v in value]
        return KeyValue(key=key, value=AnyValue(array_value=ArrayValue(values=values)))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def _attributes(i: int) -> list[KeyValue]:
    attrs: dict[str, Any] = {
        "http.request.method": "POST",
        "http.route": "/v1/tasks/{id}",
        "http.response.status_code": 200,
        "url.full": f"https://api.example.com/v1/tasks/{i}?expand=steps",
        "server.address": "api.example.com",
        "server.port": 443,
        "user_agent.original": "aeos-agent/1.4.2 python/3.11",
        "network.protocol.version": "1.1",
        "mosaic.plan.id": f"plan-{i // 50}",
        "mosaic.plan.step": i % 7,
        "uce.context.id": f"ctx-{i // 10}",
        "uce.cache.hit": i % 3 == 0,
        "retry.count": i % 2,
        "queue.wait_s": 0.0125 * (i % 9),
        "thread.name": "worker-3",
        "code.function": "handle_task",
        "code.namespace": "agents.planner.steps",
        "tags": ["alpha", "beta"],
        "tenant.tier": "pro",
        "payload.size": 1024 + i,
    }
    if i % 10 == 0:
        attrs |= {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.usage.input_tokens": 1200 + i,
            "gen_ai.usage.output_tokens": 80,
        }
    if i % 50 == 0:
        attrs |= {"mosaic.task_run.id": f"run-{i}", "mosaic.task.id": f"task-{i}"}
    return [_kv(k, v) for k, v in attrs.items()]


def build_request(n_spans: int) -> ExportTraceServiceRequest:
    """A request as an agent's SDK would send it: one resource, one scope."""
    trace_id = bytes(range(1, 17))
    spans = [
        Span(
            trace_id=trace_id,
            span_id=(i + 1).to_bytes(8, "big"),
            parent_span_id=b"" if i == 0 else (1).to_bytes(8, "big"),
            name=f"step {i % 12}",
            kind=Span.SPAN_KIND_INTERNAL,
            start_time_unix_nano=T0 + i * 1000,
            end_time_unix_nano=T0 + i * 1000 + 500,
            attributes=_attributes(i),
        )
        for i in range(n_spans)
    ]
    resource = Resource(
        attributes=[
            _kv("service.name", "planner"),
            _kv("service.version", "1.4.2"),
            _kv("aeos.agent.id", "agent-7"),
            _kv("aeos.subsystem", "MOSAIC"),
            _kv("aeos.fleet.id", "fleet-eu"),
        ]
    )
    scope_spans = ScopeSpans(spans=spans)
    scope_spans.scope.name = "agents.planner"
    return ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(resource=resource, scope_spans=[scope_spans])]
    )


def to_otlp_json(request: ExportTraceServiceRequest) -> bytes:
    """OTLP/JSON (hex ids) of the request."""
    as_dict = json_format.MessageToDict(request, use_integers_for_enums=True)
    for span in as_dict["resourceSpans"][0]["scopeSpans"][0]["spans"]:
        for key in ("traceId", "spanId", "parentSpanId"):
            if key in span:
                span[key] = base64.b64decode(span[key]).hex()
    return json.dumps(as_dict).encode()


def us_per_span(run: Callable[[], object], n_spans: int, rounds: int) -> tuple[float, float]:
    """Best and median µs per span over ``rounds`` runs (the best is the least noisy)."""
    run()  # warm-up
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times) / n_spans * 1e6, statistics.median(times) / n_spans * 1e6


def main() -> None:
    """Prints µs/span for each stage."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spans", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    tune_gc()  # as a receiver worker runs (otlp_receiver.server.worker_main)
    request = build_request(args.spans)
    body = request.SerializeToString()
    json_body = to_otlp_json(request)
    decoded = decode_traces(body, PROTOBUF)
    assert decode_traces(json_body, JSON) == decoded
    result = translate_traces(decoded, ORG)
    assert len(result.batch.spans) == args.spans
    assert result.rejected == 0
    lite = decode_traces_fast(body, PROTOBUF)
    assert translate_traces(lite, ORG) == result
    fast_json = decode_traces_fast(json_body, JSON)
    assert isinstance(fast_json, JsonRequest)  # the msgspec decoder's, not the reference's
    assert translate_traces(fast_json, ORG) == result
    stages = {
        "reference: decode protobuf": lambda: decode_traces(body, PROTOBUF),
        "reference: decode JSON": lambda: decode_traces(json_body, JSON),
        "reference: translate": lambda: translate_traces(decoded, ORG),
        "receiver: decode protobuf": lambda: decode_traces_fast(body, PROTOBUF),
        "receiver: translate (protobuf)": lambda: translate_traces(lite, ORG),
        "receiver: decode JSON": lambda: decode_traces_fast(json_body, JSON),
        "receiver: translate (JSON)": lambda: translate_traces(fast_json, ORG),
        "receiver: protobuf, both": lambda: translate_traces(
            decode_traces_fast(body, PROTOBUF), ORG
        ),
        "receiver: JSON, both": lambda: translate_traces(decode_traces_fast(json_body, JSON), ORG),
    }
    print(
        f"{args.spans} spans, ~20 attributes each; "
        f"protobuf {len(body) / 1024:.0f} KiB, JSON {len(json_body) / 1024:.0f} KiB"
    )
    for name, run in stages.items():
        best, median = us_per_span(run, args.spans, args.rounds)
        print(f"{name:>32}: {best:7.2f} µs/span best, {median:7.2f} median")


if __name__ == "__main__":
    main()
