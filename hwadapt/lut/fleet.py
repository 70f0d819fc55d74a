"""``hwadapt profile`` over several targets at once: one LUT per backend and device.

Targets are grouped by the device they measure on. The desktop backends all measure
this machine's CPU, so they form one group and run one after another (two at once would
disturb each other's figures); each phone is a group of its own, its backends in turn.
Each group is a task for an executor (:mod:`hwadapt.cluster`): serially, or one worker
per group at once (``--workers``), always on this machine, where the phones are attached.
Every table resumes on its own, so a re-run finishes whichever were interrupted.
"""
from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from device_agents import make_agent
from hwadapt.cluster import Executor, TaskContext
from hwadapt.errors import HwadaptError
from hwadapt.lut.profile import build_lut
from hwadapt.measure import MeasurePlan

PHONE_BACKENDS = ("android-cpu", "android-gpu")
HOST = "this machine"


class FleetError(HwadaptError):
    """Targets that do not make sense together."""


@dataclass(frozen=True)
class Target:
    backend: str
    device: str | None  # a phone (usb:SERIAL, tcp:HOST:PORT); None: this machine, or the only phone
    out: Path

    @property
    def where(self) -> str:
        """The device it measures on: what two targets must not use at the same time."""
        if self.backend in PHONE_BACKENDS:
            return self.device or "the phone"
        return HOST


@dataclass(frozen=True)
class ProfileSpec:
    """What every table is built with."""

    family: str
    resolution: int
    num_classes: int = 10
    calibration_models: int | None = None
    seed: int = 0
    threads: int = 1
    phone_options: dict[str, Any] = field(default_factory=dict)  # benchmark_binary, energy_secs
    plan: MeasurePlan | None = None  # None: each agent's default
    grid: dict[str, int] | None = None  # overrides of the family's grid settings
    forms: tuple[str, ...] = ()  # op kinds whose export forms' stand-in ops the tables measure too


def plan_targets(backends: Sequence[str], devices: Sequence[str], out: Path, family: str,
                 resolution: int) -> list[Target]:
    """One target per desktop backend and per (phone backend, device). One target writes
    ``out`` (a ``.parquet``); several write ``out/<backend>[_<device>]_<family>_<px>.parquet``."""
    phones = [b for b in dict.fromkeys(backends) if b in PHONE_BACKENDS]
    if devices and not phones:
        raise FleetError("--device names a phone; give an android backend (--backend android-cpu) with it")
    pairs = [(b, d) for b in dict.fromkeys(backends)
             for d in ((devices or [None]) if b in PHONE_BACKENDS else [None])]
    if len(pairs) == 1:
        if out.suffix != ".parquet":
            raise FleetError(f"--out must end in .parquet, got {out}")
        return [Target(*pairs[0], out)]
    if out.suffix == ".parquet":
        raise FleetError(f"{len(pairs)} targets make {len(pairs)} tables: --out must be a folder, not {out}")
    return [Target(b, d, out / f"{b}{'_' + _slug(d) if d else ''}_{family}_{resolution}.parquet") for b, d in pairs]


def _slug(device: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "-", device).strip("-")


def by_device(targets: Sequence[Target]) -> list[list[Target]]:
    """The targets grouped by the device they measure on, in their order."""
    groups: dict[str, list[Target]] = {}
    for target in targets:
        groups.setdefault(target.where, []).append(target)
    return list(groups.values())


def profile_group(spec: ProfileSpec, group: list[Target], context: TaskContext) -> list[dict[str, Any]]:
    """Build (or finish) the tables of one device's targets, one after another."""
    summaries = []
    for target in group:
        options: dict[str, Any] = {"threads": spec.threads}
        if target.backend in PHONE_BACKENDS:
            options |= spec.phone_options | ({"device": target.device} if target.device else {})
        with make_agent(target.backend, **options) as agent:
            meta = build_lut(agent, spec.family, spec.resolution, target.out, num_classes=spec.num_classes,
                             calibration_models=spec.calibration_models, seed=spec.seed, plan=spec.plan,
                             grid=spec.grid, forms=spec.forms, reporter=context.reporter)
        summaries.append({"out": str(target.out), "backend": target.backend, "device": target.device,
                          "rows": meta.rows, "models": meta.calibration.get("models"),
                          "fit_mape": meta.calibration.get("fit_mape")})
    return summaries


def profile_targets(spec: ProfileSpec, targets: Sequence[Target], executor: Executor) -> Iterator[dict[str, Any]]:
    """Every target's table, one device's group per task; a summary per table as its
    group finishes."""
    for _, summaries in executor.map(profile_group, spec, by_device(targets), here=True):
        yield from summaries
