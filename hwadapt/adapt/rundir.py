"""A NetAdapt run directory: settings, progress state and every kept network.

Layout::

    state.json          settings (identity), phase, one row per kept network, stop reason
    family/NNN/         the network chosen at iteration NNN (000 is the base network)
    proposals/NNN/G/    proposals of the running iteration, kept until it finishes (resume)
    final/              the long-term fine-tuned network, with model.onnx and model.tflite

State is rewritten atomically after every proposal, so an interrupted run resumes where
it stopped when the same command is run again.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from hwadapt.errors import HwadaptError

STATE_FILE = "state.json"


class RunDirError(HwadaptError):
    """An output directory that belongs to something else."""


def write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)


class RunDir:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @property
    def state_path(self) -> Path:
        return self.root / STATE_FILE

    def member(self, iteration: int) -> Path:
        return self.root / "family" / f"{iteration:03d}"

    def proposal(self, iteration: int, group: str) -> Path:
        return self.root / "proposals" / f"{iteration:03d}" / group

    @property
    def final(self) -> Path:
        return self.root / "final"

    def open(self, identity: dict) -> dict | None:
        """The saved state of this run (None before its first save); an error for another run's."""
        if not self.state_path.is_file():
            return None
        state = json.loads(self.state_path.read_text())
        if state.get("identity") != identity:
            raise RunDirError(f"{self.root} holds a run with other settings; use another --out "
                              "(or the original arguments to resume it)")
        return state

    def save(self, state: dict) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        write_json(self.state_path, state)

    def adopt(self, iteration: int, group: str) -> Path:
        """Move the winning proposal into the family and drop the iteration's other proposals."""
        target = self.member(iteration)
        if target.exists():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        self.proposal(iteration, group).replace(target)
        shutil.rmtree(self.root / "proposals" / f"{iteration:03d}", ignore_errors=True)
        return target
