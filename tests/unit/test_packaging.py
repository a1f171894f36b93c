"""The built distribution carries the data files the service reads at run time."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
IGNORED = shutil.ignore_patterns(".venv", "build", "*.egg-info", ".git", "__pycache__", ".*_cache")


@pytest.mark.slow
def test_wheel_contains_runtime_data(tmp_path: Path) -> None:
    source = tmp_path / "src"  # a clean copy: a stale build/ directory must not help
    shutil.copytree(ROOT, source, ignore=IGNORED)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "-w",
            str(tmp_path),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    [wheel] = tmp_path.glob("aeos_observability-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    versions = (ROOT / "storage/migrations/versions").glob("0*.*")
    expected = {
        "storage/data/model_prices.csv",
        "storage/migrations/env.py",
        "storage/migrations/script.py.mako",
        "semconv/model/mosaic/registry.yaml",
        "storage/py.typed",
        *(f"storage/migrations/versions/{p.name}" for p in versions),
    }
    assert expected <= names, sorted(expected - names)
    # An SPDX expression (PEP 639), not the deprecated TOML table.
    [meta] = [n for n in names if n.endswith(".dist-info/METADATA")]
    metadata = zipfile.ZipFile(wheel).read(meta).decode()
    assert "License-Expression: LicenseRef-Proprietary" in metadata.splitlines()
