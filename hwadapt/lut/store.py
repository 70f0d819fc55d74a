"""LUT storage: a parquet table of measured rows plus a JSON sidecar of metadata.

Rows are appended to a JSON-lines journal as they are measured (flushed and fsynced),
so an interrupted profile loses nothing; the parquet and sidecar are rewritten
atomically from all rows. The sidecar records the parquet's SHA-256 so an edited or
truncated table is refused instead of silently mispricing networks.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import MISSING, asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from hwadapt.errors import HwadaptError
from hwadapt.lut.space import GridPeriods
from hwadapt.measure.target import Target

LUT_FORMAT = 1
ROW_KEY = ["kind", "size", "kernel", "stride", "act", "cin", "cout", "arch"]
VALUE_COLUMNS = ["ms", "raw_ms", "probe_ms", "p10_ms", "p90_ms", "std_ms", "n", "rounds",
                 "energy_mj", "throttled", "conditions", "measured_at", "windows", "window_ms"]


class LutError(HwadaptError):
    """A LUT that is missing, corrupt, or does not fit what it is used for."""


@dataclass
class LutMeta:
    family: str
    resolution: int
    num_classes: int
    backend: str
    fingerprint: dict[str, Any]
    probe: dict[str, Any]  # the probe architecture (JSON form)
    reference_ms: float | None = None  # the probe's level while the table was built
    grid: dict[str, int] = field(default_factory=dict)
    calibration: dict[str, Any] = field(default_factory=dict)
    # how the calibration networks were drawn: scheme, count, seed, shrunk
    calibration_draw: dict[str, Any] = field(default_factory=dict)
    # op kinds whose stand-ins the table also measures, to price export forms (``--forms``)
    forms: list[str] = field(default_factory=list)
    format: int = LUT_FORMAT
    digest: str = ""
    rows: int = 0

    def target(self, force: bool = False) -> Target:
        """Where the table was measured: end-to-end figures against it are taken there."""
        return Target(self.backend, self.fingerprint, self.probe, self.reference_ms, force)

    @property
    def periods(self) -> GridPeriods:
        """The grid's residue periods (0: tables measured before residue points)."""
        return GridPeriods.of(self.grid)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LutMeta:
        if not isinstance(data, dict):
            raise LutError("not a hwadapt LUT sidecar (expected a JSON object)")
        fields = cls.__dataclass_fields__
        missing = sorted(n for n, f in fields.items()
                         if f.default is MISSING and f.default_factory is MISSING and n not in data)
        unknown = sorted(set(data) - set(fields))
        if missing or unknown:
            raise LutError(f"not a hwadapt LUT sidecar (missing: {', '.join(missing) or '-'}; "
                           f"unknown: {', '.join(unknown) or '-'})")
        return cls(**data)


def sidecar_path(path: Path) -> Path:
    return path.with_suffix(".json")


def journal_path(path: Path) -> Path:
    return path.with_suffix(".journal.jsonl")


def row_key(row: dict[str, Any]) -> tuple:
    return tuple(row.get(k) for k in ROW_KEY)


def read_journal(path: Path) -> list[dict[str, Any]]:
    """Rows of the journal; a torn last line (interrupted write) is dropped."""
    journal = journal_path(path)
    if not journal.is_file():
        return []
    rows = []
    for line in journal.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


class Journal:
    """Append-only, fsynced record of measured rows."""

    def __init__(self, path: Path) -> None:
        self.path = journal_path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a")

    def append(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            self._file.write(json.dumps(row) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def save_lut(path: Path, meta: LutMeta, rows: list[dict[str, Any]]) -> None:
    """Write table and sidecar atomically (the table first; the sidecar names its digest)."""
    frame = pd.DataFrame(rows, columns=ROW_KEY + VALUE_COLUMNS)
    tmp = path.with_name(path.name + ".tmp")
    frame.to_parquet(tmp, index=False)
    data = tmp.read_bytes()
    os.replace(tmp, path)
    meta.digest, meta.rows = hashlib.sha256(data).hexdigest(), len(frame)
    _atomic_write(sidecar_path(path), (json.dumps(asdict(meta), indent=2) + "\n").encode())


def load_sidecar(path: Path) -> LutMeta:
    """The metadata of the LUT at ``path`` (its ``.json`` sidecar), checked."""
    side = sidecar_path(path)
    if not side.is_file():
        raise LutError(f"LUT {path} has no sidecar {side.name}")
    try:
        meta = LutMeta.from_dict(json.loads(side.read_text()))
    except json.JSONDecodeError as exc:
        raise LutError(f"LUT sidecar {side} is not valid JSON: {exc}") from exc
    except LutError as exc:
        raise LutError(f"{side}: {exc}") from exc
    if meta.format != LUT_FORMAT:
        raise LutError(f"LUT {path} has format {meta.format}; this hwadapt reads format {LUT_FORMAT}")
    return meta


def load_lut(path: str | Path) -> tuple[LutMeta, pd.DataFrame]:
    """Read and check a LUT; every failure is a one-line :class:`LutError`."""
    path = Path(path)
    if not path.is_file():
        hint = " (its sidecar is there: `hwadapt profile` with the same --out resumes it)" \
            if sidecar_path(path).exists() else ""
        raise LutError(f"no LUT at {path}{hint}")
    meta = load_sidecar(path)
    if hashlib.sha256(path.read_bytes()).hexdigest() != meta.digest:
        raise LutError(f"LUT {path} does not match its sidecar's digest: the table was edited or is corrupt")
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise LutError(f"LUT {path} is not a readable parquet file: {exc}") from exc
    missing = set(ROW_KEY + ["ms"]) - set(frame.columns)
    if missing:
        raise LutError(f"LUT {path} lacks columns {sorted(missing)}")
    return meta, frame
