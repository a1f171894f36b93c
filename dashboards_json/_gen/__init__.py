"""The dashboard generator: plain dictionaries built by one small function per panel kind.

Why plain data and not a library: the panels are raw SQL on PostgreSQL and a Jaeger trace
view, for which neither grafanalib (unmaintained since 2024) nor grafana-foundation-sdk
(no PostgreSQL or Jaeger query builders; its default install is the Grafana 10.1 flavour)
has builders, so a library would add a dependency and still leave us writing the targets
by hand. Dictionaries keep full control of ``rawSql``, ``schemaVersion`` and the data
source uids, and the committed JSON is checked against a regeneration.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from dashboards_json._gen.client import all_client
from dashboards_json._gen.console import all_console
from dashboards_json._gen.panels import JAEGER_UID, PG_UID
from dashboards_json._gen.subsystems import all_subsystems

# Folder -> dashboards. Clients get "client" and "subsystems"; staff get all three.
FOLDERS: Final[dict[str, Callable[[], dict[str, dict[str, Any]]]]] = {
    "console": all_console,
    "client": all_client,
    "subsystems": all_subsystems,
}
FOLDER_TITLES: Final = {"console": "ALIAS console", "client": "AEOS", "subsystems": "Subsystems"}
CLIENT_FOLDERS: Final = ("client", "subsystems")
DATASOURCE_UIDS: Final = (PG_UID, JAEGER_UID)
OUTPUT_DIR: Final = Path(__file__).resolve().parents[1]

__all__ = [
    "CLIENT_FOLDERS",
    "DATASOURCE_UIDS",
    "FOLDERS",
    "FOLDER_TITLES",
    "OUTPUT_DIR",
    "build_all",
    "export",
    "render",
]


def build_all() -> dict[str, dict[str, Any]]:
    """Every dashboard by relative path (``console/global-overview.json``)."""
    out: dict[str, dict[str, Any]] = {}
    for folder, build in FOLDERS.items():
        for name, board in build().items():
            out[f"{folder}/{name}.json"] = board
    return out


def render(board: dict[str, Any]) -> str:
    """The committed text of one dashboard."""
    return json.dumps(board, indent=2, ensure_ascii=False) + "\n"


def export(out_dir: Path) -> list[Path]:
    """Writes every dashboard under ``out_dir/<folder>/<name>.json``; returns the paths."""
    written: list[Path] = []
    for relative, board in build_all().items():
        path = out_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(board), "utf-8")
        written.append(path)
    return written
