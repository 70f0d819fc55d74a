"""An installed hwadapt (a wheel, not the editable checkout) carries every module and the
grid settings of ``lut/spaces``: without them ``hwadapt profile`` would silently fall
back to the default grid."""
from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGED_TREES = ("hwadapt", "device_agents", "lut")


def source_files() -> set[str]:
    return {path.relative_to(REPO).as_posix() for tree in PACKAGED_TREES for path in (REPO / tree).rglob("*")
            if path.suffix in (".py", ".json") and "__pycache__" not in path.parts}


def test_wheel_carries_every_module_and_space_file(tmp_path):
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
    assert any(name.startswith("lut/spaces/") for name in expected)
    assert expected - packaged == set()
