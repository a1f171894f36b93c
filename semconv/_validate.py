"""Validation of the raw semantic-convention model (see ``semconv._model`` for its layout).

``validate`` collects every problem rather than stopping at the first, so that a broken
model is reported in one go; the generator refuses to write anything while there is one.
Rules: ids and names are dot-separated lower_snake segments starting with their
directory's namespace; types, stabilities, instruments and requirement levels come from
fixed sets; enum members have unique ids and values; examples fit the type; deprecated
attributes name a non-deprecated replacement; metric and event attributes exist; no
attribute id is also the namespace of another (an OpenTelemetry naming rule); no two
names share a Python constant.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Final

TYPES: Final = frozenset(
    {"string", "int", "double", "boolean", "string[]", "int[]", "double[]", "boolean[]", "enum"}
)
STABILITIES: Final = frozenset({"development", "stable", "deprecated"})
INSTRUMENTS: Final = frozenset({"counter", "updowncounter", "histogram", "gauge"})
REQUIREMENT_LEVELS: Final = frozenset(
    {"required", "conditionally_required", "recommended", "opt_in"}
)
# Attributes of other registries that our metrics and events may reference.
EXTERNAL_ATTRIBUTES: Final = {"error.type": "OpenTelemetry general attribute (error registry)."}
FILES: Final = {"registry.yaml": "attributes", "metrics.yaml": "metrics", "events.yaml": "events"}
MAX_METRIC_BRIEF: Final = 76

_NAME = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+")
_LEVELS = ", ".join(sorted(REQUIREMENT_LEVELS))
_MEMBER_ID = re.compile(r"[a-z][a-z0-9_]*")
_ATTRIBUTE_KEYS = frozenset(
    {"id", "type", "stability", "brief", "note", "examples", "members", "replaced_by"}
)
_METRIC_KEYS = frozenset({"name", "instrument", "unit", "stability", "brief", "note", "attributes"})
_REF_REQUIRED = frozenset({"ref", "requirement_level"})
_REF_KEYS = _REF_REQUIRED | {"condition"}
_EVENT_KEYS = frozenset({"name", "stability", "brief", "note", "attributes"})
_SCALAR_CHECKS: Final[Mapping[str, Callable[[object], bool]]] = {
    "string": lambda v: isinstance(v, str),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "double": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
}

RawModel = dict[str, dict[str, Any]]
"""Namespace -> file name -> parsed YAML document."""


def constant_name(name: str) -> str:
    """The Python constant of an attribute id, metric or event name."""
    return name.upper().replace(".", "_")


def validate(raw: RawModel) -> list[str]:
    """Every problem of ``raw``, as ``"<namespace>/<file>: <what>"`` lines; empty if valid."""
    index = _attribute_index(raw)
    errors: list[str] = []
    for ns, files in sorted(raw.items()):
        if "registry.yaml" not in files:
            errors.append(f"{ns}: missing registry.yaml")
        for file_name, doc in sorted(files.items()):
            where = f"{ns}/{file_name}"
            if file_name not in FILES:
                errors.append(f"{where}: unexpected file (expected {', '.join(sorted(FILES))})")
                continue
            errors += [f"{where}: {e}" for e in _check_document(ns, file_name, doc, index)]
    return errors + _check_names(raw)


def _attribute_index(raw: RawModel) -> dict[str, str]:
    """Attribute id -> stability, for the entries well-formed enough to have both."""
    index: dict[str, str] = {}
    for entry in _entries(raw, "registry.yaml"):
        if isinstance(entry.get("id"), str):
            index[entry["id"]] = str(entry.get("stability"))
    return index


def _entries(raw: RawModel, file_name: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for files in raw.values():
        doc = files.get(file_name)
        items = doc.get(FILES[file_name]) if isinstance(doc, dict) else None
        if isinstance(items, list):
            out += [item for item in items if isinstance(item, dict)]
    return out


def _check_document(ns: str, file_name: str, doc: object, index: dict[str, str]) -> list[str]:
    key = FILES[file_name]
    allowed = {"namespace", "brief", key} if file_name == "registry.yaml" else {key}
    if not isinstance(doc, dict):
        return ["not a mapping"]
    errors = [f"unknown key {k!r}" for k in sorted(set(doc) - allowed)]
    if file_name == "registry.yaml":
        if doc.get("namespace") != ns:
            errors.append(f"namespace must be {ns!r} (the directory's name)")
        errors += _check_text(doc, "brief", required=True)
    items = doc.get(key)
    if not isinstance(items, list) or not items:
        return [*errors, f"{key!r} must be a non-empty list"]
    check = {"attributes": _check_attribute, "metrics": _check_metric, "events": _check_event}[key]
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            errors.append(f"{key}[{i}]: not a mapping")
            continue
        label = f"{key}[{i}] ({item.get('id') or item.get('name')})"
        errors += [f"{label}: {e}" for e in check(ns, item, index)]
    return errors


def _check_text(entry: Mapping[str, Any], key: str, *, required: bool) -> list[str]:
    value = entry.get(key)
    if value is None:
        return [f"{key!r} is required"] if required else []
    if not isinstance(value, str) or not value.strip():
        return [f"{key!r} must be a non-empty string"]
    if '"' in value or "\\" in value:
        return [f"{key!r} must not contain double quotes or backslashes"]
    return []


def _check_common(
    ns: str, entry: Mapping[str, Any], name_key: str, keys: frozenset[str]
) -> list[str]:
    errors = [f"unknown key {k!r}" for k in sorted(set(entry) - keys)]
    name = entry.get(name_key)
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        errors.append(f"{name_key!r} must be dot-separated lower_snake segments")
    elif not name.startswith(ns + "."):
        errors.append(f"{name_key!r} must start with {ns + '.'!r} (its file's namespace)")
    if entry.get("stability") not in STABILITIES:
        errors.append(f"'stability' must be one of {sorted(STABILITIES)}")
    errors += _check_text(entry, "brief", required=True)
    return errors + _check_text(entry, "note", required=False)


def _check_attribute(ns: str, entry: Mapping[str, Any], index: dict[str, str]) -> list[str]:
    errors = _check_common(ns, entry, "id", _ATTRIBUTE_KEYS)
    type_ = entry.get("type")
    if type_ not in TYPES:
        return [*errors, f"'type' must be one of {sorted(TYPES)}"]
    errors += _check_members(entry)
    errors += _check_examples(entry, str(type_))
    replaced_by = entry.get("replaced_by")
    if entry.get("stability") == "deprecated":
        if replaced_by not in index:
            errors.append("a deprecated attribute needs 'replaced_by' naming an attribute")
        elif index[replaced_by] == "deprecated":
            errors.append(f"'replaced_by' names {replaced_by!r}, which is deprecated too")
    elif replaced_by is not None:
        errors.append("'replaced_by' is only for deprecated attributes")
    return errors


def _check_members(entry: Mapping[str, Any]) -> list[str]:
    members = entry.get("members")
    if entry.get("type") != "enum":
        return [] if members is None else ["'members' is only for enum attributes"]
    if not isinstance(members, list) or not members:
        return ["an enum needs a non-empty 'members' list"]
    errors: list[str] = []
    for i, member in enumerate(members):
        if not isinstance(member, dict) or set(member) != {"id", "value", "brief"}:
            errors.append(f"members[{i}]: needs exactly 'id', 'value' and 'brief'")
        elif not isinstance(member["id"], str) or not _MEMBER_ID.fullmatch(member["id"]):
            errors.append(f"members[{i}]: 'id' must be lower_snake")
        elif not isinstance(member["value"], str) or not member["value"]:
            errors.append(f"members[{i}]: 'value' must be a non-empty string")
        else:
            errors += [f"members[{i}]: {e}" for e in _check_text(member, "brief", required=True)]
    for key in ("id", "value"):
        seen = [m.get(key) for m in members if isinstance(m, dict)]
        errors += [f"duplicate member {key} {v!r}" for v in _duplicates(seen)]
    return errors


def _check_examples(entry: Mapping[str, Any], type_: str) -> list[str]:
    examples = entry.get("examples")
    if examples is None:
        return [] if type_ in {"boolean", "enum"} else ["'examples' is required for this type"]
    if not isinstance(examples, list) or not examples:
        return ["'examples' must be a non-empty list"]
    if type_ == "enum":
        values = {m.get("value") for m in entry.get("members") or [] if isinstance(m, dict)}
        bad = [e for e in examples if e not in values]
    elif type_.endswith("[]"):
        check = _SCALAR_CHECKS[type_[:-2]]
        bad = [e for e in examples if not isinstance(e, list) or not all(check(v) for v in e)]
    else:
        bad = [e for e in examples if not _SCALAR_CHECKS[type_](e)]
    return [f"example {e!r} does not fit type {type_}" for e in bad]


def _check_metric(ns: str, entry: Mapping[str, Any], index: dict[str, str]) -> list[str]:
    errors = _check_common(ns, entry, "name", _METRIC_KEYS)
    if entry.get("instrument") not in INSTRUMENTS:
        errors.append(f"'instrument' must be one of {sorted(INSTRUMENTS)}")
    unit = entry.get("unit")
    if not isinstance(unit, str) or not unit or any(c.isspace() for c in unit):
        errors.append("'unit' must be a non-empty string without spaces")
    brief = entry.get("brief")
    if isinstance(brief, str) and len(brief) > MAX_METRIC_BRIEF:
        errors.append(f"'brief' must be at most {MAX_METRIC_BRIEF} characters (use 'note')")
    return errors + _check_refs(entry.get("attributes"), index)


def _check_event(ns: str, entry: Mapping[str, Any], index: dict[str, str]) -> list[str]:
    return _check_common(ns, entry, "name", _EVENT_KEYS) + _check_refs(
        entry.get("attributes"), index
    )


def _check_refs(refs: object, index: dict[str, str]) -> list[str]:
    if refs is None:
        return []
    if not isinstance(refs, list):
        return ["'attributes' must be a list"]
    errors: list[str] = []
    for i, ref in enumerate(refs):
        if not isinstance(ref, dict) or not _REF_REQUIRED <= set(ref) <= _REF_KEYS:
            errors.append(f"attributes[{i}]: needs 'ref', 'requirement_level' (and 'condition')")
        elif ref["ref"] not in index and ref["ref"] not in EXTERNAL_ATTRIBUTES:
            errors.append(f"attributes[{i}]: unknown attribute {ref['ref']!r}")
        elif ref["requirement_level"] not in REQUIREMENT_LEVELS:
            errors.append(f"attributes[{i}]: 'requirement_level' must be one of {_LEVELS}")
        elif (ref["requirement_level"] == "conditionally_required") != ("condition" in ref):
            errors.append(f"attributes[{i}]: 'condition' goes with conditionally_required, only")
    return errors


def _check_names(raw: RawModel) -> list[str]:
    """Names unique per kind, Python constants unique, no attribute id a namespace of another."""
    errors: list[str] = []
    for file_name, key in (
        ("registry.yaml", "id"),
        ("metrics.yaml", "name"),
        ("events.yaml", "name"),
    ):
        names = [e[key] for e in _entries(raw, file_name) if isinstance(e.get(key), str)]
        errors += [f"{file_name}: duplicate {key} {n!r}" for n in _duplicates(names)]
        by_constant: dict[str, set[str]] = {}
        for name in names:
            by_constant.setdefault(constant_name(name), set()).add(name)
        errors += [
            f"{file_name}: {sorted(group)} share the Python constant {constant}"
            for constant, group in sorted(by_constant.items())
            if len(group) > 1
        ]
    ids = sorted({e["id"] for e in _entries(raw, "registry.yaml") if isinstance(e.get("id"), str)})
    errors += [
        f"registry.yaml: {a!r} is an attribute and the namespace of {b!r}"
        for a in ids
        for b in ids
        if b.startswith(a + ".")
    ]
    return errors


def _duplicates(values: list[object]) -> list[str]:
    return sorted({str(v) for v in values if values.count(v) > 1})
