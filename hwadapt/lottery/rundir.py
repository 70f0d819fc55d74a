"""A lottery or supermask run folder: its settings and state in one JSON file, and the
refusal to resume a run with other settings, naming what differs."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hwadapt.adapt.rundir import write_json
from hwadapt.errors import HwadaptError


class RunError(HwadaptError):
    """An output folder that holds something else, or a run with other settings."""


def differences(recorded: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Each setting whose value differs, as ``--name: <in the run> in DIR, <now> now``."""
    names = sorted(set(recorded) | set(current))
    return [f"--{name.replace('_', '-')}: {recorded.get(name)!r} in the run, {current.get(name)!r} now"
            for name in names if recorded.get(name) != current.get(name)]


def open_run(out: Path, state_file: str, identity: dict[str, Any], what: str) -> dict[str, Any]:
    """The state of the ``what`` run in ``out`` (a fresh state holding ``identity`` for a new
    folder); refuses a folder holding something else, or this kind of run with other
    settings (naming each difference)."""
    path = out / state_file
    if path.is_file():
        state = json.loads(path.read_text())
        changed = differences(state["identity"], identity)
        if changed:
            raise RunError(f"{out} holds a {what} run with other settings ({'; '.join(changed)}); "
                           "re-run with its settings to resume it, or choose another --out")
        return state
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise RunError(f"{out} exists and is not a {what} run; choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    state = {"identity": identity}
    write_json(path, state)
    return state
