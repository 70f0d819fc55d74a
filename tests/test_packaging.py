"""An installed hwadapt (a wheel, not the editable checkout) carries every module: a
registry module left out would silently lose its op kind, block kind, family or method."""
from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGED_TREES = ("hwadapt", "device_agents")


def source_files() -> set[str]:
    return {path.relative_to(REPO).as_posix() for tree in PACKAGED_TREES for path in (REPO / tree).rglob("*")
            if path.suffix == ".py" and "__pycache__" not in path.parts}


def test_wheel_carries_every_module(tmp_path):
    source = tmp_path / "src"  # a copy, so the build leaves nothing in the checkout
    for tree in PACKAGED_TREES:
        shutil.copytree(REPO / tree, source / tree, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(tmp_path / "dist"), str(source)], check=True, capture_output=True)
    (wheel,) = (tmp_path / "dist").glob("hwadapt-*.whl")
    packaged = set(zipfile.ZipFile(wheel).namelist())
    expected = source_files()
    assert "hwadapt/families/mobilenet_v1.py" in expected and "hwadapt/ops/conv.py" in expected
    assert expected - packaged == set()
