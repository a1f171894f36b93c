"""The semantic-convention model: the YAML files under ``semconv/model``, loaded and checked.

One directory per namespace, named after it, holding ``registry.yaml`` (attributes,
required) and optionally ``metrics.yaml`` and ``events.yaml``::

    # registry.yaml
    namespace: mosaic                 # the directory's name
    brief: What the namespace covers.
    attributes:
      - id: mosaic.task_run.status    # <namespace>.<lower_snake>[.<lower_snake>...]
        type: enum                    # one of TYPES
        stability: development        # development | stable | deprecated
        brief: One sentence.
        note: Optional longer text.
        examples: [succeeded]         # required unless the type is boolean or enum
        members:                      # enum only; id is the Python member name, lower-case
          - {id: succeeded, value: succeeded, brief: Finished successfully.}
        replaced_by: mosaic.other.id  # deprecated only, and required there

    # metrics.yaml
    metrics:
      - name: damn.queue.depth
        instrument: gauge             # one of INSTRUMENTS
        unit: "{task}"                # UCUM, or a {annotation} for counts
        stability: development
        brief: At most 76 characters; it becomes the instrument's description.
        attributes:
          - {ref: damn.queue.name, requirement_level: recommended}

    # events.yaml
    events:
      - name: damn.agent.heartbeat
        stability: development
        brief: One sentence.
        attributes: [...]             # as for metrics

``semconv._validate`` checks it. This module imports PyYAML; nothing that ``import semconv``
loads imports it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from semconv._validate import RawModel, validate


class ModelError(ValueError):
    """The model is invalid; the message lists every problem, one per line."""


@dataclass(frozen=True, slots=True)
class Member:
    """A member of an enum attribute."""

    id: str
    value: str
    brief: str


@dataclass(frozen=True, slots=True)
class Attribute:
    """An attribute of the registry."""

    id: str
    type: str
    stability: str
    brief: str
    note: str | None
    examples: tuple[object, ...]
    members: tuple[Member, ...]
    replaced_by: str | None


@dataclass(frozen=True, slots=True)
class AttributeRef:
    """An attribute a metric or an event carries."""

    ref: str
    requirement_level: str
    condition: str | None


@dataclass(frozen=True, slots=True)
class Metric:
    """A metric (one instrument)."""

    name: str
    instrument: str
    unit: str
    stability: str
    brief: str
    note: str | None
    attributes: tuple[AttributeRef, ...]


@dataclass(frozen=True, slots=True)
class Event:
    """An event (a log record, or span event, with an event name)."""

    name: str
    stability: str
    brief: str
    note: str | None
    attributes: tuple[AttributeRef, ...]


@dataclass(frozen=True, slots=True)
class Namespace:
    """Everything one namespace directory defines, sorted by id or name."""

    name: str
    brief: str
    attributes: tuple[Attribute, ...]
    metrics: tuple[Metric, ...]
    events: tuple[Event, ...]


def load_model(model_dir: Path) -> list[Namespace]:
    """Loads, validates and parses the model.

    Raises:
        ModelError: the model is invalid (every problem is listed).
    """
    raw = load_raw(model_dir)
    errors = validate(raw)
    if errors:
        raise ModelError("\n".join(errors))
    return parse(raw)


def load_raw(model_dir: Path) -> RawModel:
    """Reads every ``*.yaml`` file of every namespace directory, without checking it."""
    raw: RawModel = {}
    for directory in sorted(p for p in model_dir.iterdir() if p.is_dir()):
        raw[directory.name] = {
            path.name: yaml.safe_load(path.read_text(encoding="utf-8"))
            for path in sorted(directory.glob("*.yaml"))
        }
    return raw


def parse(raw: RawModel) -> list[Namespace]:
    """The namespaces of a model that ``validate`` accepted, in name order."""
    return [_parse_namespace(ns, files) for ns, files in sorted(raw.items())]


def _parse_namespace(ns: str, files: Mapping[str, Any]) -> Namespace:
    registry = files["registry.yaml"]
    metrics = (files.get("metrics.yaml") or {}).get("metrics", [])
    events = (files.get("events.yaml") or {}).get("events", [])
    return Namespace(
        name=ns,
        brief=_text(registry["brief"]),
        attributes=tuple(
            sorted((_parse_attribute(a) for a in registry["attributes"]), key=lambda a: a.id)
        ),
        metrics=tuple(sorted((_parse_metric(m) for m in metrics), key=lambda m: m.name)),
        events=tuple(sorted((_parse_event(e) for e in events), key=lambda e: e.name)),
    )


def _parse_attribute(entry: Mapping[str, Any]) -> Attribute:
    return Attribute(
        id=entry["id"],
        type=entry["type"],
        stability=entry["stability"],
        brief=_text(entry["brief"]),
        note=_squash(entry.get("note")),
        examples=tuple(entry.get("examples") or ()),
        members=tuple(
            Member(m["id"], m["value"], _text(m["brief"])) for m in entry.get("members") or ()
        ),
        replaced_by=entry.get("replaced_by"),
    )


def _parse_refs(entry: Mapping[str, Any]) -> tuple[AttributeRef, ...]:
    return tuple(
        AttributeRef(r["ref"], r["requirement_level"], _squash(r.get("condition")))
        for r in entry.get("attributes") or ()
    )


def _parse_metric(entry: Mapping[str, Any]) -> Metric:
    return Metric(
        name=entry["name"],
        instrument=entry["instrument"],
        unit=entry["unit"],
        stability=entry["stability"],
        brief=_text(entry["brief"]),
        note=_squash(entry.get("note")),
        attributes=_parse_refs(entry),
    )


def _parse_event(entry: Mapping[str, Any]) -> Event:
    return Event(
        name=entry["name"],
        stability=entry["stability"],
        brief=_text(entry["brief"]),
        note=_squash(entry.get("note")),
        attributes=_parse_refs(entry),
    )


def _text(text: str) -> str:
    """Whitespace runs (folded YAML lines) to single spaces."""
    return " ".join(text.split())


def _squash(text: str | None) -> str | None:
    return _text(text) if text is not None else None
