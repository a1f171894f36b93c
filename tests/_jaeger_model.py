"""Jaeger's v1 UI model (jaegertracing/jaeger ``internal/uimodel/model.go``) as strict
pydantic models: a response that decodes here decodes into Jaeger UI's and Grafana's
model (Go's json decoder would reject the same type errors), plus the two things
Grafana's frontend relies on without checking (``logs`` is a list; ``processID`` names
a process of the trace)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

HEX16 = r"^[0-9a-f]{16}$"
HEX32 = r"^[0-9a-f]{32}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class KeyValue(_Strict):
    key: StrictStr
    type: Literal["string", "bool", "int64", "float64", "binary"]
    value: Any

    def model_post_init(self, _ctx: Any) -> None:
        expected: dict[str, Any] = {"string": str, "bool": bool, "int64": int,
                                    "float64": (int, float), "binary": str}  # fmt: skip
        ok = isinstance(self.value, expected[self.type])
        if self.type in ("int64", "float64") and isinstance(self.value, bool):
            ok = False
        assert ok, f"tag {self.key}: {self.type} value {self.value!r}"


class Log(_Strict):
    timestamp: StrictInt = Field(ge=0)
    fields: list[KeyValue]


class Reference(_Strict):
    refType: Literal["CHILD_OF", "FOLLOWS_FROM"]
    traceID: StrictStr = Field(pattern=HEX32)
    spanID: StrictStr = Field(pattern=HEX16)


class Process(_Strict):
    serviceName: StrictStr
    tags: list[KeyValue]


class Span(_Strict):
    traceID: StrictStr = Field(pattern=HEX32)
    spanID: StrictStr = Field(pattern=HEX16)
    parentSpanID: StrictStr | None = None
    flags: StrictInt | None = Field(default=None, ge=0, lt=2**32)
    operationName: StrictStr
    references: list[Reference]
    startTime: StrictInt = Field(ge=0)
    duration: StrictInt = Field(ge=0)
    tags: list[KeyValue]
    logs: list[Log]
    processID: StrictStr
    process: Process | None = None
    warnings: list[StrictStr] | None


class Trace(_Strict):
    traceID: StrictStr = Field(pattern=HEX32)
    spans: list[Span]
    processes: dict[str, Process]
    warnings: list[StrictStr] | None


class Error(_Strict):
    code: StrictInt | None = None
    msg: StrictStr
    traceID: StrictStr | None = None


class Envelope(_Strict):
    data: Any
    total: StrictInt
    limit: StrictInt
    offset: StrictInt
    errors: list[Error] | None


class Dependency(_Strict):
    parent: StrictStr
    child: StrictStr
    callCount: StrictInt = Field(ge=0)
    source: StrictStr | None = None


class OperationItem(_Strict):
    name: StrictStr
    spanKind: StrictStr


def traces(body: Any) -> list[Trace]:
    """Decodes a v1 traces answer; fails on anything Jaeger UI or Grafana could not read."""
    env = Envelope.model_validate(body)
    assert isinstance(env.data, list)
    out = [Trace.model_validate(t) for t in env.data]
    for t in out:
        for s in t.spans:
            assert s.processID in t.processes, s.processID
            assert s.traceID == t.traceID
    return out


def strings(body: Any) -> list[str]:
    """Decodes a v1 list of strings (services, operations)."""
    env = Envelope.model_validate(body)
    assert isinstance(env.data, list)
    assert all(isinstance(x, str) for x in env.data)
    return list(env.data)


def dependencies(body: Any) -> list[Dependency]:
    env = Envelope.model_validate(body)
    assert isinstance(env.data, list)
    return [Dependency.model_validate(d) for d in env.data]
