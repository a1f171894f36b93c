"""Landed migrations never change, and the rollup declarations match the newest frozen DDL.

Migrations are forward-only: once a file has landed, databases have run it, and editing
it would leave them different from new ones. ``storage/migrations/landed.sha256`` (the
``sha256sum`` format, so ``sha256sum -c`` checks it too) lists every migration file with
its checksum; a new migration file goes into that list when it lands.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from storage.ingest import rollups

ROOT = Path(__file__).resolve().parents[2]
VERSIONS = ROOT / "storage" / "migrations" / "versions"
LANDED = ROOT / "storage" / "migrations" / "landed.sha256"


def _landed() -> dict[str, str]:
    sums: dict[str, str] = {}
    for line in LANDED.read_text("utf-8").splitlines():
        digest, name = line.split(maxsplit=1)
        sums[name.lstrip("*")] = digest
    return sums


def _migration_files(versions: Path) -> list[Path]:
    """Every file a migration consists of: the revision modules and their frozen data."""
    return sorted(p for p in versions.iterdir() if p.name[:4].isdigit() and p.is_file())


def test_no_landed_migration_file_has_changed() -> None:
    landed = _landed()
    assert len(landed) >= 9, "the list must cover at least 0001..0008 (and 0006's JSON)"
    for name, digest in landed.items():
        path = VERSIONS / name
        assert path.is_file(), f"{name} landed and is gone: migrations are never removed"
        actual = hashlib.sha256(path.read_bytes()).hexdigest()
        assert actual == digest, f"{name} changed after it landed: add a new migration instead"


def test_every_migration_file_is_in_the_landed_list() -> None:
    missing = {p.name for p in _migration_files(VERSIONS)} - set(_landed())
    assert not missing, (
        f"add {sorted(missing)} to storage/migrations/landed.sha256 "
        "(cd storage/migrations/versions && sha256sum FILE >> ../landed.sha256)"
    )


def newest_frozen_ddl(versions: Path, keys: set[str]) -> tuple[str, dict[str, Any]]:
    """The frozen rollup DDL of the highest revision that froze one (file name, content).

    A migration that changes the rollups freezes ``declared_ddl()`` next to itself as
    ``<revision>_<topic>.json``; a JSON file with other top-level keys is something else.
    """
    frozen: list[tuple[str, dict[str, Any]]] = []
    for path in _migration_files(versions):
        if path.suffix == ".json":
            content = json.loads(path.read_text("utf-8"))
            if isinstance(content, dict) and set(content) == keys:
                frozen.append((path.name, content))
    if not frozen:
        raise LookupError(f"no frozen rollup DDL in {versions}")
    return max(frozen, key=lambda item: int(item[0][:4]))


def test_rollup_declarations_match_the_newest_frozen_ddl() -> None:
    """Changing a rollup declaration needs a new migration that freezes the new DDL."""
    declared = rollups.declared_ddl()
    name, frozen = newest_frozen_ddl(VERSIONS, set(declared))
    assert declared == frozen, (
        f"the rollup declarations no longer match {name}: write a migration that moves "
        "existing databases to them and freeze its DDL (<revision>_<topic>.json) beside it"
    )


def test_the_newest_frozen_ddl_is_the_highest_revision(tmp_path: Path) -> None:
    keys = {"relations", "postgres"}
    (tmp_path / "0006_rollups.json").write_text(json.dumps({"relations": 6, "postgres": 6}))
    (tmp_path / "0012_rollups_v2.json").write_text(json.dumps({"relations": 12, "postgres": 12}))
    (tmp_path / "0013_other.json").write_text(json.dumps({"something": "else"}))
    (tmp_path / "0009_x.py").write_text("")
    assert newest_frozen_ddl(tmp_path, keys) == (
        "0012_rollups_v2.json",
        {"relations": 12, "postgres": 12},
    )
    (tmp_path / "0012_rollups_v2.json").unlink()
    assert newest_frozen_ddl(tmp_path, keys)[0] == "0006_rollups.json"
    (tmp_path / "0006_rollups.json").unlink()
    with pytest.raises(LookupError):
        newest_frozen_ddl(tmp_path, keys)


def test_0017_recreates_exactly_the_aggregates_whose_query_changed() -> None:
    """0017 recreates the continuous aggregates whose DDL differs from 0006's, no more."""
    import importlib.util

    def creates(path: Path) -> dict[str, str]:
        statements = json.loads(path.read_text("utf-8"))["timescale"]
        return {s.split()[3]: s for s in statements if s.startswith("CREATE MATERIALIZED VIEW")}

    before = creates(VERSIONS / "0006_rollups.json")
    after = creates(VERSIONS / "0017_saturating_rollup_sums.json")
    changed = {name for name in after if before.get(name) != after[name]}
    path = VERSIONS / "0017_saturating_rollup_sums.py"
    spec = importlib.util.spec_from_file_location("aeos_migration_0017", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert set(module._RECREATED) == changed
    assert set(before) == set(after)


def _migration(name: str) -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"aeos_migration_{name[:4]}", VERSIONS / name)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_0020_computes_each_p_column_item_of_a_view_and_refuses_other_uses() -> None:
    m = _migration("0020_read_time_quantiles.py")
    plain = " SELECT bucket,\n    span_count,\n    duration_hist,\n    duration_p99_ms\n   FROM t;"
    assert m.computed_body("v", plain) == (
        " SELECT bucket,\n    span_count,\n    duration_hist,\n"
        "    aeos_hist_quantile_n(duration_hist, span_count, 0.99) AS duration_p99_ms\n   FROM t;"
    )
    qualified = "    x_1m.context_size_p50,\n    x_1m.bucket\n"
    assert m.computed_body("v", qualified) == (
        "    aeos_hist_quantile_n(x_1m.context_size_hist, x_1m.context_size_count, 0.5) "
        "AS context_size_p50,\n    x_1m.bucket\n"
    )
    with pytest.raises(RuntimeError, match="duration_p95_ms"):
        m.computed_body("v", " SELECT bucket\n   FROM t\n  WHERE (duration_p95_ms > 1);")
