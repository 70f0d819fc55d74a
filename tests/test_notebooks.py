"""The notebooks run as written, against the current API (slow: a real profile)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def notebook_code(path: Path) -> str:
    cells = json.loads(path.read_text())["cells"]
    return "\n\n".join("".join(cell["source"]) for cell in cells if cell["cell_type"] == "code")


@pytest.mark.slow
def test_lut_quickstart_runs(tmp_path, monkeypatch):
    path = NOTEBOOKS / "lut_quickstart.ipynb"
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(notebook_code(path), str(path), "exec"), namespace)
    assert (tmp_path / "luts" / "mobilenet_v1_32_ort.parquet").is_file()
    assert namespace["report"].n == len(namespace["table"]) == 20
