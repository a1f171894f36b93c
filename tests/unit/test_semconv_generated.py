"""The semconv model is well-formed and the committed generated files are current."""

from __future__ import annotations

import copy
import importlib
import shutil
import subprocess
import sys
from enum import Enum
from pathlib import Path
from typing import Any

import pytest

from semconv import _generate
from semconv._model import load_model, load_raw
from semconv._validate import RawModel, constant_name, validate

ROOT = Path(__file__).resolve().parents[2]
MODEL_DIR = ROOT / "semconv" / "model"
NAMESPACES = {"aeos", "mosaic", "damn", "uce", "gen_ai"}
TYPES = {"string", "int", "double", "boolean", "string[]", "int[]", "double[]", "boolean[]", "enum"}
STABILITIES = {"development", "stable", "deprecated"}
INSTRUMENTS = {"counter", "updowncounter", "histogram", "gauge"}


@pytest.fixture(scope="module")
def raw() -> RawModel:
    return load_raw(MODEL_DIR)


def _items(raw: RawModel, file_name: str, key: str) -> list[tuple[str, dict[str, Any]]]:
    return [
        (ns, item)
        for ns, files in sorted(raw.items())
        for item in (files.get(file_name) or {}).get(key, [])
    ]


# --- the committed outputs ---------------------------------------------------------------


def test_committed_files_equal_a_fresh_generation() -> None:
    files = _generate.generate(load_model(MODEL_DIR))
    assert "docs/semconv.md" in files
    assert {f"semconv/attributes/{ns}.py" for ns in NAMESPACES} <= set(files)
    for rel, content in files.items():
        assert (ROOT / rel).read_text(encoding="utf-8") == content, f"{rel} is stale"
    assert _generate.stale_diff(ROOT, files) == ""


def test_generated_files_carry_the_header() -> None:
    files = _generate.generate(load_model(MODEL_DIR))
    header = "generated from semconv/model by semconv/_generate.py, do not edit"
    for rel, content in files.items():
        assert header in content.splitlines()[0], rel


def _copy_model(tmp_path: Path) -> Path:
    shutil.copytree(MODEL_DIR, tmp_path / "semconv" / "model")
    return tmp_path


def test_check_fails_with_a_diff_when_stale_and_passes_after_writing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _copy_model(tmp_path)
    assert _generate.main(["--check"], root=root) == 1
    assert "+++ b/semconv/attributes/mosaic.py" in capsys.readouterr().out
    assert _generate.main([], root=root) == 0
    assert _generate.main(["--check"], root=root) == 0

    target = root / "semconv" / "attributes" / "uce.py"
    target.write_text(target.read_text().replace("uce.context.id", "uce.ctx.id"))
    capsys.readouterr()
    assert _generate.main(["--check"], root=root) == 1
    out = capsys.readouterr().out
    assert "--- a/semconv/attributes/uce.py" in out
    assert '+UCE_CONTEXT_ID: Final = "uce.context.id"' in out


def test_orphaned_generated_modules_are_reported_then_deleted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _copy_model(tmp_path)
    assert _generate.main([], root=root) == 0
    orphan = root / "semconv" / "metrics" / "gone.py"
    orphan.write_text(_generate.PY_HEADER + '"""Old."""\n')
    hand_written = root / "semconv" / "metrics" / "notes.py"
    hand_written.write_text('"""Not generated."""\n')
    capsys.readouterr()
    assert _generate.main(["--check"], root=root) == 1
    assert "+++ /dev/null" in capsys.readouterr().out
    assert _generate.main([], root=root) == 0
    assert not orphan.exists()
    assert hand_written.exists()


def test_an_invalid_model_exits_2_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _copy_model(tmp_path)
    registry = root / "semconv" / "model" / "damn" / "registry.yaml"
    registry.write_text(registry.read_text().replace("type: int", "type: integer", 1))
    assert _generate.main([], root=root) == 2
    assert "'type' must be one of" in capsys.readouterr().err
    assert not (root / "semconv" / "attributes").exists()


def test_the_generator_runs_as_a_module_in_check_mode() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "semconv._generate", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- the YAML entries --------------------------------------------------------------------


def test_the_model_has_exactly_the_expected_namespaces(raw: RawModel) -> None:
    assert set(raw) == NAMESPACES
    for ns, files in raw.items():
        assert files["registry.yaml"]["namespace"] == ns
        assert set(files) <= {"registry.yaml", "metrics.yaml", "events.yaml"}


def test_the_validator_accepts_the_model(raw: RawModel) -> None:
    assert validate(raw) == []


def test_ids_are_namespaced_by_their_file(raw: RawModel) -> None:
    names = [(ns, a["id"]) for ns, a in _items(raw, "registry.yaml", "attributes")]
    names += [(ns, m["name"]) for ns, m in _items(raw, "metrics.yaml", "metrics")]
    names += [(ns, e["name"]) for ns, e in _items(raw, "events.yaml", "events")]
    assert len(names) > 40
    for ns, name in names:
        assert name.startswith(ns + "."), name
        assert name == name.lower(), name
        assert " " not in name, name


def test_attribute_ids_are_unique_and_no_id_is_a_namespace_of_another(raw: RawModel) -> None:
    ids = [a["id"] for _, a in _items(raw, "registry.yaml", "attributes")]
    assert len(ids) == len(set(ids))
    assert not [(a, b) for a in ids for b in ids if b.startswith(a + ".")]


def test_types_stabilities_and_instruments_come_from_fixed_sets(raw: RawModel) -> None:
    for _, attribute in _items(raw, "registry.yaml", "attributes"):
        assert attribute["type"] in TYPES, attribute["id"]
        assert attribute["stability"] in STABILITIES, attribute["id"]
        assert attribute["brief"].strip(), attribute["id"]
    for _, metric in _items(raw, "metrics.yaml", "metrics"):
        assert metric["instrument"] in INSTRUMENTS, metric["name"]
        assert metric["stability"] in STABILITIES, metric["name"]
        assert metric["unit"], metric["name"]


def test_enum_members_are_unique_and_only_on_enums(raw: RawModel) -> None:
    enums = 0
    for _, attribute in _items(raw, "registry.yaml", "attributes"):
        members: list[dict[str, str]] | None = attribute.get("members")
        if attribute["type"] != "enum":
            assert members is None, attribute["id"]
            continue
        enums += 1
        assert members, attribute["id"]
        ids = [m["id"] for m in members]
        values = [m["value"] for m in members]
        assert len(ids) == len(set(ids)), attribute["id"]
        assert len(values) == len(set(values)), attribute["id"]
    assert enums >= 6


def test_deprecated_entries_name_an_existing_current_replacement(raw: RawModel) -> None:
    by_id = {a["id"]: a for _, a in _items(raw, "registry.yaml", "attributes")}
    deprecated = [a for a in by_id.values() if a["stability"] == "deprecated"]
    assert {a["id"] for a in deprecated} >= {
        "gen_ai.system",
        "gen_ai.usage.prompt_tokens",
        "gen_ai.usage.completion_tokens",
    }
    for attribute in deprecated:
        replacement = by_id[attribute["replaced_by"]]
        assert replacement["stability"] != "deprecated", attribute["id"]
    assert all("replaced_by" not in a for a in by_id.values() if a["stability"] != "deprecated")


def test_metric_and_event_attributes_exist(raw: RawModel) -> None:
    ids = {a["id"] for _, a in _items(raw, "registry.yaml", "attributes")} | {"error.type"}
    entries = _items(raw, "metrics.yaml", "metrics") + _items(raw, "events.yaml", "events")
    for _, entry in entries:
        for ref in entry.get("attributes", []):
            assert ref["ref"] in ids, (entry["name"], ref["ref"])


# --- the validator catches what it should ------------------------------------------------


def _minimal() -> RawModel:
    attribute: dict[str, Any] = {"id": "zz.thing.id", "type": "string", "stability": "stable"}
    attribute.update(brief="A thing.", examples=["t-1"])
    registry = {"namespace": "zz", "brief": "Test.", "attributes": [attribute]}
    metric = {
        "name": "zz.things",
        "instrument": "counter",
        "unit": "{thing}",
        "stability": "development",
        "brief": "Things.",
        "attributes": [{"ref": "zz.thing.id", "requirement_level": "required"}],
    }
    return {"zz": {"registry.yaml": registry, "metrics.yaml": {"metrics": [metric]}}}


def _attribute(raw: RawModel) -> dict[str, Any]:
    attribute: dict[str, Any] = raw["zz"]["registry.yaml"]["attributes"][0]
    return attribute


def test_the_minimal_model_is_valid() -> None:
    assert validate(_minimal()) == []


def _break_namespace(raw: RawModel) -> None:
    _attribute(raw)["id"] = "other.thing.id"
    raw["zz"]["metrics.yaml"]["metrics"][0]["attributes"] = []


def _break_enum_duplicate(raw: RawModel) -> None:
    member = {"id": "a", "value": "a", "brief": "A."}
    _attribute(raw).update(type="enum", examples=["a"], members=[member, dict(member)])


def _break_deprecated(raw: RawModel) -> None:
    _attribute(raw)["stability"] = "deprecated"


def _break_replacement(raw: RawModel) -> None:
    _attribute(raw).update(stability="deprecated", replaced_by="zz.nothing")


def _break_chain(raw: RawModel) -> None:
    old = dict(_attribute(raw), id="zz.old.id", stability="deprecated", replaced_by="zz.thing.id")
    older = dict(old, id="zz.older.id", replaced_by="zz.old.id")
    raw["zz"]["registry.yaml"]["attributes"] += [old, older]


def _break_prefix(raw: RawModel) -> None:
    child = dict(_attribute(raw), id="zz.thing.id.kind")
    raw["zz"]["registry.yaml"]["attributes"].append(child)


def _break_ref(raw: RawModel) -> None:
    raw["zz"]["metrics.yaml"]["metrics"][0]["attributes"][0]["ref"] = "zz.missing"


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (_break_namespace, "must start with 'zz.'"),
        (lambda r: _attribute(r).update(type="integer"), "'type' must be one of"),
        (lambda r: _attribute(r).update(stability="beta"), "'stability' must be one of"),
        (lambda r: _attribute(r).update(examples=[3]), "does not fit type string"),
        (lambda r: _attribute(r).pop("examples"), "'examples' is required"),
        (lambda r: _attribute(r).update(colour="red"), "unknown key 'colour'"),
        (lambda r: _attribute(r).update(id="zz.Thing"), "lower_snake"),
        (lambda r: _attribute(r).update(brief='say "hi"'), "double quotes"),
        (_break_enum_duplicate, "duplicate member id 'a'"),
        (lambda r: _attribute(r).update(type="enum", examples=None), "non-empty 'members'"),
        (_break_deprecated, "needs 'replaced_by'"),
        (_break_replacement, "needs 'replaced_by'"),
        (_break_chain, "which is deprecated too"),
        (lambda r: _attribute(r).update(replaced_by="zz.thing.id"), "only for deprecated"),
        (_break_prefix, "is an attribute and the namespace of"),
        (_break_ref, "unknown attribute 'zz.missing'"),
        (lambda r: r["zz"]["metrics.yaml"]["metrics"][0].update(instrument="meter"), "instrument"),
        (lambda r: r["zz"]["metrics.yaml"]["metrics"][0].update(brief="x" * 77), "at most 76"),
        (lambda r: r["zz"]["registry.yaml"].update(namespace="yy"), "namespace must be 'zz'"),
        (lambda r: r["zz"].update({"metric.yaml": {}}), "unexpected file"),
        (lambda r: r["zz"].pop("registry.yaml"), "missing registry.yaml"),
    ],
)
def test_the_validator_reports_each_kind_of_error(mutate: Any, expected: str) -> None:
    raw = copy.deepcopy(_minimal())
    mutate(raw)
    errors = validate(raw)
    assert any(expected in e for e in errors), errors


# --- the generated Python ----------------------------------------------------------------


def test_every_attribute_has_its_constant_and_every_enum_its_str_enum() -> None:
    for ns in load_model(MODEL_DIR):
        module = importlib.import_module(f"semconv.attributes.{ns.name}")
        for attribute in ns.attributes:
            assert getattr(module, constant_name(attribute.id)) == attribute.id
            if attribute.members:
                enum = getattr(module, _generate.enum_class_name(attribute.id))
                assert issubclass(enum, str)
                assert issubclass(enum, Enum)
                assert [m.value for m in enum] == [m.value for m in attribute.members]


def test_metric_factories_create_instruments_with_the_model_units() -> None:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    meter = provider.get_meter("test")
    expected: dict[str, tuple[str, str]] = {}
    for ns in load_model(MODEL_DIR):
        module = importlib.import_module(f"semconv.metrics.{ns.name}") if ns.metrics else None
        for metric in ns.metrics:
            instrument = getattr(module, f"create_{constant_name(metric.name).lower()}")(meter)
            method = {"histogram": "record", "gauge": "set"}.get(metric.instrument, "add")
            getattr(instrument, method)(1)
            expected[metric.name] = (metric.unit, metric.brief)
    data = reader.get_metrics_data()
    assert data is not None
    seen = {
        m.name: (m.unit, m.description)
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
    }
    assert seen == expected
    assert {"damn.queue.depth", "uce.operation.duration", "uce.cache.requests"} <= set(seen)


def test_importing_semconv_loads_only_the_standard_library() -> None:
    code = (
        "import sys, semconv, semconv.helpers, semconv.normalize\n"
        "import semconv.attributes.gen_ai, semconv.metrics.damn, semconv.events.damn\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('opentelemetry', 'yaml')]\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_reference_docs_have_a_table_per_namespace() -> None:
    docs = (ROOT / "docs" / "semconv.md").read_text(encoding="utf-8")
    for ns in NAMESPACES:
        assert f"## `{ns}`" in docs
    assert docs.count("| Attribute | Type | Brief | Examples | Stability | Enum members |") == 5
    assert docs.count("| Metric | Instrument | Unit | Brief | Attributes |") == 2
    assert "| `damn.queue.depth` | gauge | `{task}` |" in docs
