"""Generates the semconv constants and reference docs from the YAML model.

Usage (from the repository root or anywhere; paths are relative to this package)::

    python -m semconv._generate          # (re)write the generated files
    python -m semconv._generate --check  # exit 1 with a unified diff if they are stale

Outputs, each starting with the "generated ... do not edit" header:

- ``semconv/attributes/<namespace>.py``: a ``Final`` constant per attribute (its docstring
  gives brief, note, type, stability and examples) and a ``StrEnum`` per enum attribute;
- ``semconv/metrics/<namespace>.py``: a ``Final`` constant per metric (instrument, unit and
  attributes in its docstring) and a ``create_<metric>(meter)`` factory that sets the unit
  and description;
- ``semconv/events/<namespace>.py``: a ``Final`` constant per event name;
- ``docs/semconv.md``: the reference, one section per namespace.

Generated modules import only the standard library at run time (the OpenTelemetry types
of the factories are imported under ``TYPE_CHECKING``). Generated files whose namespace
has gone are deleted (reported by ``--check``). Exit status: 0 done or up to date,
1 stale (``--check``), 2 invalid model.
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import sys
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Final

import yaml

from semconv._model import (
    Attribute,
    AttributeRef,
    Metric,
    ModelError,
    Namespace,
    load_model,
)
from semconv._validate import constant_name

ROOT: Final = Path(__file__).resolve().parent.parent
MODEL_DIR: Final = Path("semconv/model")
DOCS_PATH: Final = "docs/semconv.md"
NOTICE: Final = "generated from semconv/model by semconv/_generate.py, do not edit"
PY_HEADER: Final = f"# {NOTICE}\n"
MD_HEADER: Final = f"<!-- {NOTICE} -->\n"
PACKAGES: Final = {
    "attributes": "Attribute names and enums",
    "metrics": "Metric names and instrument factories",
    "events": "Event names",
}
WIDTH: Final = 100
# instrument -> (Meter method, return type in opentelemetry.metrics)
FACTORIES: Final = {
    "counter": ("create_counter", "Counter"),
    "updowncounter": ("create_up_down_counter", "UpDownCounter"),
    "histogram": ("create_histogram", "Histogram"),
    "gauge": ("create_gauge", "_Gauge"),
}


def enum_class_name(attribute_id: str) -> str:
    """``mosaic.task_run.status`` -> ``MosaicTaskRunStatusValues``."""
    return "".join(part.capitalize() for part in re.split(r"[._]", attribute_id)) + "Values"


def generate(model: Sequence[Namespace]) -> dict[str, str]:
    """Every generated file: repository-relative POSIX path -> content."""
    files: dict[str, str] = {}
    for package, render in (
        ("attributes", _attributes_module),
        ("metrics", _metrics_module),
        ("events", _events_module),
    ):
        names = [ns.name for ns in model if getattr(ns, package)]
        files[f"semconv/{package}/__init__.py"] = _package_init(package, names)
        for ns in model:
            if getattr(ns, package):
                files[f"semconv/{package}/{ns.name}.py"] = render(ns)
    files[DOCS_PATH] = render_docs(model)
    return files


# --- Python -----------------------------------------------------------------------------


def _docstring(paragraphs: Iterable[str], indent: str = "") -> str:
    """A docstring at ``indent``, each paragraph wrapped to fit ``WIDTH`` with its quotes."""
    width = WIDTH - len(indent) - len('"""')
    lines: list[str] = []
    for paragraph in paragraphs:
        if lines:
            lines.append("")
        lines += textwrap.wrap(paragraph, width, break_long_words=False, break_on_hyphens=False)
    if len(lines) == 1 and len(lines[0]) <= width - len('"""'):
        return f'{indent}"""{lines[0]}"""\n'
    body = "".join(f"{indent}{line}\n" if line else "\n" for line in lines[1:])
    return f'{indent}"""{lines[0]}\n{body}{indent}"""\n'


def _module_head(paragraphs: Sequence[str], imports: Sequence[str]) -> str:
    head = PY_HEADER + _docstring(paragraphs) + "\nfrom __future__ import annotations\n"
    return head + ("\n" + "\n".join(imports) + "\n" if imports else "")


def _package_init(package: str, modules: Sequence[str]) -> str:
    title = f"{PACKAGES[package]} of the AEOS semantic conventions, one module per namespace."
    return _module_head([title, f"Modules: {', '.join(modules)}."], [])


def _examples(examples: Sequence[object]) -> str:
    return ", ".join(f"`{json.dumps(e, ensure_ascii=False)}`" for e in examples)


def _attribute_constant(attribute: Attribute) -> str:
    facts = f"Type: {attribute.type}. Stability: {attribute.stability}."
    if attribute.examples:
        facts += f" Examples: {_examples(attribute.examples)}."
    if attribute.members:
        facts += f" Values: {enum_class_name(attribute.id)}."
    paragraphs = [attribute.brief, *([attribute.note] if attribute.note else []), facts]
    if attribute.replaced_by:
        replacement = constant_name(attribute.replaced_by)
        paragraphs.append(f"Deprecated: use {replacement} (`{attribute.replaced_by}`) instead.")
    return f'{constant_name(attribute.id)}: Final = "{attribute.id}"\n' + _docstring(paragraphs)


def _enum_class(attribute: Attribute) -> str:
    out = f"class {enum_class_name(attribute.id)}(StrEnum):\n"
    out += _docstring([f"Values of `{attribute.id}`."], "    ")
    for member in attribute.members:
        out += f'\n    {member.id.upper()} = "{member.value}"\n'
        out += _docstring([member.brief], "    ")
    return out


def _attributes_module(ns: Namespace) -> str:
    has_enum = any(a.members for a in ns.attributes)
    imports = ["from enum import StrEnum"] if has_enum else []
    imports.append("from typing import Final")
    out = _module_head([f"Attributes of the `{ns.name}` namespace.", ns.brief], imports)
    for attribute in ns.attributes:
        out += "\n" + _attribute_constant(attribute)
    for attribute in ns.attributes:
        if attribute.members:
            out += "\n\n" + _enum_class(attribute)
    return out


def _refs(refs: Sequence[AttributeRef]) -> str:
    parts = []
    for ref in refs:
        level = ref.requirement_level.replace("_", " ")
        parts.append(f"`{ref.ref}` ({level}{': ' + ref.condition if ref.condition else ''})")
    return ", ".join(parts)


def _metric_constant(metric: Metric) -> str:
    facts = f"Instrument: {metric.instrument}. Unit: `{metric.unit}`."
    facts += f" Stability: {metric.stability}."
    if metric.attributes:
        facts += f" Attributes: {_refs(metric.attributes)}."
    paragraphs = [metric.brief, *([metric.note] if metric.note else []), facts]
    return f'{constant_name(metric.name)}: Final = "{metric.name}"\n' + _docstring(paragraphs)


def _metric_factory(metric: Metric) -> str:
    method, returns = FACTORIES[metric.instrument]
    function = f"create_{constant_name(metric.name).lower()}"
    return (
        f"def {function}(meter: Meter) -> {returns}:\n"
        + _docstring([f"Creates the `{metric.name}` {metric.instrument} on ``meter``."], "    ")
        + f"    return meter.{method}(\n"
        f"        name={constant_name(metric.name)},\n"
        f'        unit="{metric.unit}",\n'
        f'        description="{metric.brief}",\n'
        "    )\n"
    )


def _metrics_module(ns: Namespace) -> str:
    types = sorted({FACTORIES[m.instrument][1] for m in ns.metrics} | {"Meter"}, key=_isort_key)
    imports = [
        "from typing import TYPE_CHECKING, Final",
        "",
        "if TYPE_CHECKING:",
        f"    from opentelemetry.metrics import {', '.join(types)}",
    ]
    out = _module_head([f"Metrics of the `{ns.name}` namespace.", ns.brief], imports)
    for metric in ns.metrics:
        out += "\n" + _metric_constant(metric)
    for metric in ns.metrics:
        out += "\n\n" + _metric_factory(metric)
    return out


def _isort_key(name: str) -> tuple[int, str]:
    """isort's order-by-type: CONSTANTS, then Classes, then everything else."""
    return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)


def _events_module(ns: Namespace) -> str:
    imports = ["from typing import Final"]
    out = _module_head([f"Events of the `{ns.name}` namespace.", ns.brief], imports)
    for event in ns.events:
        facts = f"Stability: {event.stability}."
        if event.attributes:
            facts += f" Attributes: {_refs(event.attributes)}."
        paragraphs = [event.brief, *([event.note] if event.note else []), facts]
        out += f'\n{constant_name(event.name)}: Final = "{event.name}"\n' + _docstring(paragraphs)
    return out


# --- Markdown ---------------------------------------------------------------------------

_DOCS_INTRO: Final = """\
# AEOS semantic conventions

The attributes, metrics and events AEOS agents emit and the backend maps. The model is
`semconv/model/<namespace>/{registry,metrics,events}.yaml`; the Python constants
(`semconv.attributes`, `semconv.metrics`, `semconv.events`) and this page are generated
from it with `python -m semconv._generate` (`--check` fails when they are stale).

Stability: `stable` names will not change; `development` names may still change;
`deprecated` names are still accepted by the receiver and name their replacement.
Enums are open where the notes say so (the `gen_ai` ones): other values are kept.
"""


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _attribute_row(a: Attribute) -> str:
    stability = a.stability + (f" (use `{a.replaced_by}`)" if a.replaced_by else "")
    members = ", ".join(f"`{m.value}`" for m in a.members)
    cells = [f"`{a.id}`", a.type, a.brief, _examples(a.examples), stability, members]
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def _notes(items: Iterable[tuple[str, str | None]]) -> list[str]:
    notes = [f"- `{name}`: {_cell(note)}" for name, note in items if note]
    return ["", "Notes:", "", *notes] if notes else []


def _namespace_docs(ns: Namespace) -> list[str]:
    lines = ["", f"## `{ns.name}`", "", ns.brief, "", "### Attributes", ""]
    lines += ["| Attribute | Type | Brief | Examples | Stability | Enum members |"]
    lines += ["|---|---|---|---|---|---|", *(_attribute_row(a) for a in ns.attributes)]
    lines += _notes((a.id, a.note) for a in ns.attributes)
    if ns.metrics:
        lines += ["", "### Metrics", "", "| Metric | Instrument | Unit | Brief | Attributes |"]
        lines += ["|---|---|---|---|---|"]
        for m in ns.metrics:
            cells = [f"`{m.name}`", m.instrument, f"`{m.unit}`", m.brief, _refs(m.attributes)]
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
        lines += _notes((m.name, m.note) for m in ns.metrics)
    if ns.events:
        lines += ["", "### Events", "", "| Event | Brief | Stability | Attributes |"]
        lines += ["|---|---|---|---|"]
        for e in ns.events:
            cells = [f"`{e.name}`", e.brief, e.stability, _refs(e.attributes)]
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
        lines += _notes((e.name, e.note) for e in ns.events)
    return lines


def render_docs(model: Sequence[Namespace]) -> str:
    """The Markdown reference of the whole model."""
    lines = [MD_HEADER + _DOCS_INTRO.rstrip("\n")]
    lines += ["", "Namespaces: " + ", ".join(f"[`{ns.name}`](#{ns.name})" for ns in model) + "."]
    for ns in model:
        lines += _namespace_docs(ns)
    return "\n".join(lines) + "\n"


# --- Files ------------------------------------------------------------------------------


def _existing_generated(root: Path) -> set[str]:
    """Generated files now on disk (those that start with the header)."""
    found: set[str] = set()
    for package in PACKAGES:
        for path in (root / "semconv" / package).glob("*.py"):
            if path.read_text(encoding="utf-8").startswith(PY_HEADER):
                found.add(path.relative_to(root).as_posix())
    return found


def stale_diff(root: Path, files: Mapping[str, str]) -> str:
    """A unified diff from the files under ``root`` to ``files``; empty when up to date."""
    diff: list[str] = []
    for rel in sorted(set(files) | _existing_generated(root)):
        path = root / rel
        old = path.read_text(encoding="utf-8") if path.exists() else ""
        new = files.get(rel, "")
        if old != new:
            diff += difflib.unified_diff(
                old.splitlines(keepends=True),
                new.splitlines(keepends=True),
                fromfile=f"a/{rel}",
                tofile=f"b/{rel}" if rel in files else "/dev/null",
            )
    return "".join(diff)


def write_files(root: Path, files: Mapping[str, str]) -> list[str]:
    """Writes the files that changed and deletes orphaned generated ones; returns both."""
    changed: list[str] = []
    for rel in sorted(_existing_generated(root) - set(files)):
        (root / rel).unlink()
        changed.append(rel)
    for rel, content in sorted(files.items()):
        path = root / rel
        if not path.exists() or path.read_text(encoding="utf-8") != content:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content, encoding="utf-8")
            changed.append(rel)
    return changed


def main(argv: Sequence[str] | None = None, root: Path = ROOT) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m semconv._generate", description=__doc__)
    parser.add_argument("--check", action="store_true", help="diff only; exit 1 when stale")
    args = parser.parse_args(argv)
    try:
        files = generate(load_model(root / MODEL_DIR))
    except (ModelError, yaml.YAMLError) as exc:
        print(f"semconv: invalid model:\n{exc}", file=sys.stderr)
        return 2
    if args.check:
        diff = stale_diff(root, files)
        if diff:
            sys.stdout.write(diff)
            print(f"semconv: stale generated files; run {parser.prog}", file=sys.stderr)
            return 1
        return 0
    for rel in write_files(root, files):
        print(f"semconv: wrote {rel}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
