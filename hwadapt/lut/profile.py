"""Building a LUT: measure every grid point of every shape class a family reaches,
plus a few whole random-width models that calibrate the predictor; then more windows
for the calibration models and for grid points that look spoiled.

Resumable: finished rows go to a journal as they are measured, and a re-run skips every
key already in the table or the journal.
"""
from __future__ import annotations

import hashlib
import json
import logging
import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from device_agents.base import DeviceAgent, ModelSession
from hwadapt.arch.families import build, family_space
from hwadapt.arch.groups import random_widths
from hwadapt.arch.ops import Op
from hwadapt.arch.spec import Arch
from hwadapt.lut.calibrate import fit_calibration
from hwadapt.lut.outliers import TOLERANCE, fastest, merge_windows, suspect_rows, window_levels, windows
from hwadapt.lut.space import grid_settings, shape_classes, standalone_op
from hwadapt.lut.store import (ROW_KEY, TARGET_FIELDS, Journal, LutError, LutMeta, journal_path, load_lut, read_journal,
                               row_key, save_lut, sidecar_path)
from hwadapt.materialize import export, save_ops
from hwadapt.materialize.weights import random_weights
from hwadapt.measure import BATCH_SIZE as WINDOW_BATCH
from hwadapt.measure import (MAX_WINDOWS, WINDOWS, MeasurePlan, Measurement, default_probe, median_level, settled,
                             target_fingerprint)
from hwadapt.measure.protocol import default_plan, measure_sessions

log = logging.getLogger(__name__)
PROBE_SCALED_COLUMNS = ("ms", "p10_ms", "p90_ms", "std_ms")  # on the probe's time base
CALIBRATION_STREAM = 0  # validation samples use another stream of the same seed
CALIBRATION_SCHEMES = ("balanced", "independent")
NARROW_STREAM = 1  # narrow calibration networks: their own stream, so the others are drawn as before
SHRUNK_WEIGHT = 0.5  # of a shrunk calibration network in the fit (a member's: 1)
NARROW_WEIGHT = 0.5  # of a narrow one (run 34's tables; new tables draw none: calibration_set)
CALIBRATION_MODELS = 60  # whole networks a table below LARGE_INPUT_PX measures: the base, 40 members, 19 shrunk
LARGE_INPUT_PX = 128  # from this input side on, tables measure LARGE_INPUT_MODELS
LARGE_INPUT_MODELS = 40  # the base, 26 members, 13 shrunk
# rounds an op row takes at most in one window (a whole network: the plan's max_rounds).
# Why fewer: in a calm stretch nearly every op row stops at the plan's minimum (run 30:
# 96% at 6 rounds), in a noisy one a fifth to a third ran to 24 rounds and the table's op
# rounds doubled; stopped at 16, two passes over the same rows sat as far apart as they
# did at 24, for 5-13% fewer rounds (benchmarks/round_cap.py). A network's window needs
# its rounds: at 224 px a round holds 3-5 of its inferences.
OP_MAX_ROUNDS = 16


def default_calibration_models(resolution: int) -> int:
    """How many whole networks a new table measures to calibrate: ``CALIBRATION_MODELS``
    for small inputs, ``LARGE_INPUT_MODELS`` from ``LARGE_INPUT_PX`` on.

    Why fewer for large inputs: a 224 px network's window runs to 20-24 rounds (its rounds
    hold 3-5 inferences), about 0.5 s, and with 60 networks ONNX Runtime's MobileNetV1 +
    V2 tables took 11-13 min (run 31; target 10). The 20 extra networks were for the
    32 px fits, biased 1-3% low with 40 (run 30); with 40, the 224 px cells were biased
    -1.1 to +0.7% and all four priced 92.5-100% of the validation networks within 5%
    (run 30), and refitted on 40 of their own 60, run 31's 224 px tables priced their
    validation networks about as well (``benchmarks/calibration_subsets.py``). Only 32
    and 224 px were measured; the boundary between them is a choice."""
    return LARGE_INPUT_MODELS if resolution >= LARGE_INPUT_PX else CALIBRATION_MODELS


@dataclass(frozen=True)
class Job:
    """One model to measure: a standalone op or a whole calibration network."""

    key: tuple
    op: Op | None = None
    arch: Arch | None = None

    def write(self, directory: Path, fmt: str, index: int) -> Path:
        """The job's model file in ``directory``: an op's at a slot of the batch (``index``),
        a network's written once and kept, since it is measured again in later windows
        (at 224 px an export costs a tenth of the window it is measured in)."""
        if self.op is not None:
            return save_ops([self.op], random_weights([self.op], seed=index), fmt, directory / f"m{index}.{fmt}")
        path = directory / f"net-{hashlib.sha1(repr(self.key).encode()).hexdigest()[:16]}.{fmt}"  # key: its JSON
        return path if path.exists() else export(self.arch, fmt, path)


def op_row_key(op: Op) -> dict[str, Any]:
    return {"kind": op.kind, "size": op.size, "kernel": op.kernel, "stride": op.stride,
            "act": op.act, "cin": op.cin, "cout": op.cout, "arch": ""}


def model_row_key(arch: Arch) -> dict[str, Any]:
    return {"kind": "model", "size": arch.resolution, "kernel": 0, "stride": 0, "act": "",
            "cin": 0, "cout": 0, "arch": arch.to_json(indent=None)}


def independent_draw(family: str, resolution: int, num_classes: int, seed: int, index: int) -> tuple[Arch, Arch]:
    """The ``index``-th random member of the family's space, drawn on its own, and the same
    member with any width shrunk down to 8 channels (the draw of tables built before
    balanced calibration sets, which have no ``calibration_draw`` in their sidecar)."""
    rng = np.random.default_rng([seed, CALIBRATION_STREAM, index])
    member = family_space(family).sample(resolution, num_classes, rng)
    return member, random_widths(member, rng, low=0.0)


def default_shrunk(count: int, narrow: int = 0) -> int:
    """How many of ``count`` calibration networks (``narrow`` of them narrow) a new table
    shrinks: a third of the others drawn (the rest, and the base network, are members of
    the space).

    Why not half, as tables until run 30 did: refitted on their own networks measured
    again beside the validation networks, four 32 px tables (19 members, 20 shrunk)
    priced held-out validation networks 1.0-2.2% low on LiteRT and 1.1% low on ONNX
    Runtime's MobileNetV2, and 0.3-1.2% and 0.5% low with 20 more members
    (``benchmarks/calibration_remeasure.py``)."""
    return (count - 1 - narrow) // 3


def calibration_set(family: str, resolution: int, num_classes: int, count: int, seed: int,
                    scheme: str = "balanced", shrunk: int | None = None, narrow: int = 0) -> list[tuple[Arch, str]]:
    """The ``count`` calibration networks, each with its role: ``"base"`` (the base
    network), ``"member"`` (a member of the family's space), ``"shrunk"`` (``shrunk``
    members, None: :func:`default_shrunk`, with any width cut down to 8 channels, so the
    fit holds where NetAdapt goes) and ``"narrow"`` (``narrow`` networks narrow in every
    group, :meth:`Space.sample_narrow`; fewer where the space has no narrow form, and
    then as many more members).

    Why new tables draw no narrow networks (``narrow`` 0), where run 34's tables drew 12
    (8 from 128 px): refitted without them, those tables and three more ONNX Runtime
    MobileNetV1 tables at 32 px priced their validation networks and NetAdapt run H's
    family as well, and the x0.25 base and its single cuts within 2% where the
    networks at half weight put them 3-5% low (``benchmarks/calibration_terms.py``). They had been added for run G's
    table, whose NetAdapt family they did price better (``benchmarks/narrow_calibration.py``).

    ``scheme``: ``"balanced"`` draws the members together so that they cover the space
    evenly (:meth:`Space.sample_many`), and the networks to shrink likewise;
    ``"independent"``: each member drawn on its own (:func:`independent_draw`; every
    other network shrunk, ``shrunk`` and ``narrow`` ignored)."""
    if scheme not in CALIBRATION_SCHEMES:
        raise LutError(f"unknown calibration scheme {scheme!r}; expected one of {', '.join(CALIBRATION_SCHEMES)}")
    drawn = count - 1
    if scheme == "independent":
        pairs = [independent_draw(family, resolution, num_classes, seed, i) for i in range(drawn)]
        rest = [(member, "member") if i % 2 else (cut, "shrunk") for i, (member, cut) in enumerate(pairs)]
    else:
        shrunk = default_shrunk(count, narrow) if shrunk is None else shrunk
        space, rng = family_space(family), np.random.default_rng([seed, CALIBRATION_STREAM])
        narrow_rng = np.random.default_rng([seed, CALIBRATION_STREAM, NARROW_STREAM])
        thin = space.sample_narrow(resolution, num_classes, narrow, narrow_rng)
        members = space.sample_many(resolution, num_classes, drawn - shrunk - len(thin), rng)
        to_shrink = space.sample_many(resolution, num_classes, shrunk, rng)
        rest = ([(arch, "member") for arch in members] + [(random_widths(arch, rng, low=0.0), "shrunk")
                                                          for arch in to_shrink] + [(arch, "narrow") for arch in thin])
    base = build(family, resolution=resolution, num_classes=num_classes)
    return [(base, "base"), *rest]


def calibration_archs(family: str, resolution: int, num_classes: int, count: int, seed: int,
                      scheme: str = "balanced", shrunk: int | None = None, narrow: int = 0) -> list[Arch]:
    """The networks of :func:`calibration_set`."""
    return [arch for arch, _ in calibration_set(family, resolution, num_classes, count, seed, scheme, shrunk, narrow)]


def table_draw(meta: LutMeta, seed: int = 0) -> dict[str, Any]:
    """How a table's calibration set was drawn: its sidecar's record (tables without one:
    independently, ``seed``; balanced ones of run 30, without a ``shrunk`` count: half
    of the drawn networks shrunk; balanced ones before narrow networks: none)."""
    draw = meta.calibration_draw or {"scheme": "independent", "seed": seed}
    if draw["scheme"] == "balanced" and "shrunk" not in draw:
        draw = {**draw, "shrunk": (draw["count"] - 1) - (draw["count"] - 1) // 2}
    if draw["scheme"] == "balanced" and "narrow" not in draw:
        draw = {**draw, "narrow": 0}
    return draw


def calibration_roles(archs: list[str], meta: LutMeta) -> np.ndarray:
    """The role (:func:`calibration_set`) of each of a table's calibration networks (JSON,
    in table order); ``"member"`` for any the draw does not name."""
    draw = table_draw(meta)
    shape = (meta.family, meta.resolution, meta.num_classes)
    if draw["scheme"] == "independent":  # any draw's shrunk form: run 28 shrank every third, others every other
        roles = {independent_draw(*shape, draw["seed"], i)[1].to_json(indent=None): "shrunk" for i in range(len(archs))}
        roles[build(meta.family, resolution=meta.resolution, num_classes=meta.num_classes).to_json(indent=None)] = "base"
    else:
        roles = {arch.to_json(indent=None): role for arch, role in calibration_set(
            *shape, draw["count"], draw["seed"], shrunk=draw["shrunk"], narrow=draw["narrow"]) if role != "member"}
    return np.array([roles.get(a, "member") for a in archs], dtype=object)


def shrunk_mask(archs: list[str], meta: LutMeta) -> np.ndarray:
    """Which of a table's calibration networks (JSON, in table order) are shrunk draws."""
    return calibration_roles(archs, meta) == "shrunk"


def calibration_weights(rows: list[dict[str, Any]], meta: LutMeta) -> np.ndarray:
    """The fit's weight of each calibration network (model rows, in table order): the
    shrunk ones count ``SHRUNK_WEIGHT``, the narrow ones ``NARROW_WEIGHT``.

    Why less than the members: the validation networks, and most networks a search
    prices, are members, and on the 12 stored 32 px tables of runs 25-27 the fit with the
    shrunk ones at half weight priced the validation networks within 5% for 85.6-91.2%
    (all alike: 84.4-87.5%), the shrunk ones left out of the fit 0.1-0.3 points of MAPE
    worse (``benchmarks/calibration_mix.py``). Shrinking only every third network
    instead (run 28) left the shrunk ones 5.9% off where twenty of them were 3.5-4.3%.
    The narrow networks of run 34's tables count half, as they did in those tables' fits."""
    roles = calibration_roles([r["arch"] for r in rows if r["kind"] == "model"], meta)
    return np.select([roles == "shrunk", roles == "narrow"], [SHRUNK_WEIGHT, NARROW_WEIGHT], 1.0)


def plan_jobs(family: str, resolution: int, num_classes: int, calibration_models: int, seed: int,
              grid: dict[str, int] | None = None, scheme: str = "balanced", shrunk: int | None = None,
              narrow: int = 0) -> list[Job]:
    jobs = [Job(row_key(op_row_key(op)), op=op)
            for cls in shape_classes(family, resolution, num_classes, grid) for op in cls.ops()]
    jobs += [Job(row_key(model_row_key(a)), arch=a)
             for a in calibration_archs(family, resolution, num_classes, calibration_models, seed, scheme, shrunk,
                                 narrow)]
    unique = {job.key: job for job in jobs}  # a random draw can repeat a network: measure it once
    return list(unique.values())


def _check_same_target(old: LutMeta, new: LutMeta, path: Path) -> None:
    for name in ("family", "resolution", "num_classes", "backend"):
        if getattr(old, name) != getattr(new, name):
            raise LutError(f"{path} holds a {name}={getattr(old, name)!r} table, not {getattr(new, name)!r}; "
                           "choose another --out (nothing was overwritten)")
    for name in TARGET_FIELDS:
        if old.fingerprint.get(name) != new.fingerprint.get(name):
            raise LutError(f"{path} was measured on another target ({name}: "
                           f"{old.fingerprint.get(name)!r} vs {new.fingerprint.get(name)!r}); choose another --out")


def _row(job: Job, m: Measurement, energy: float | None) -> dict[str, Any]:
    key = dict(zip(ROW_KEY, job.key))
    throttled = any(c.get("throttled") for c in m.conditions)
    conditions = m.conditions[-1] if m.conditions else {}
    return {**key, **{k: v for k, v in m.to_row().items() if k != "median_ms"}, "ms": m.median_ms,
            "energy_mj": energy, "throttled": bool(throttled),
            "conditions": json.dumps(conditions, default=str), "measured_at": time.time(), "windows": 1,
            "window_ms": json.dumps([m.median_ms])}


def op_plan(plan: MeasurePlan) -> MeasurePlan:
    """The plan op rows are measured with: ``plan`` with at most ``OP_MAX_ROUNDS`` rounds."""
    return replace(plan, max_rounds=min(plan.max_rounds, OP_MAX_ROUNDS))


def _measure_batch(agent: DeviceAgent, jobs: list[Job], probe: ModelSession, reference_ms: float,
                   plan: MeasurePlan, workdir: Path) -> list[dict[str, Any]]:
    """One window of ``jobs``: all ops or all networks (an op batch takes :func:`op_plan`)."""
    if all(job.op is not None for job in jobs):
        plan = op_plan(plan)
    sessions = []
    try:
        for i, job in enumerate(jobs):
            sessions.append(agent.open(job.write(workdir, agent.model_format, i)))
        results = measure_sessions(agent, sessions, plan, probe, reference_ms)
        return [_row(job, m, agent.energy_mj(s)) for job, m, s in zip(jobs, results, sessions)]
    finally:
        for session in sessions:
            session.close()


def _start(agent: DeviceAgent, path: Path, meta: LutMeta) -> tuple[LutMeta, list[dict[str, Any]]]:
    """The existing table's metadata and rows (with the journal's), or a fresh table."""
    if path.exists() or sidecar_path(path).exists():
        old, frame = load_lut(path)
        _check_same_target(old, meta, path)
        rows = frame.to_dict("records")
        log.info("resuming %s: %d rows in the table, %d in the journal", path, len(rows), len(read_journal(path)))
    elif journal_path(path).exists():
        raise LutError(f"{journal_path(path)} exists without its table; move it away to start afresh")
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        old, rows = meta, []
        save_lut(path, meta, rows)
    seen = {row_key(r) for r in rows}
    for row in read_journal(path):  # rows measured after the last table write
        if row_key(row) not in seen:
            seen.add(row_key(row))
            rows.append(row)
    return old, rows


def build_lut(agent: DeviceAgent, family: str, resolution: int, out_path: str | Path, *,
              num_classes: int = 10, calibration_models: int | None = None, seed: int = 0,
              plan: MeasurePlan | None = None, batch_size: int = 12, show_progress: bool = True,
              grid: dict[str, int] | None = None) -> LutMeta:
    """Measure (or finish measuring) the LUT of ``family`` at ``resolution`` on ``agent``
    (``grid``: overrides of the family's grid settings, :func:`grid_settings`;
    ``calibration_models``: None for :func:`default_calibration_models`)."""
    path, plan = Path(out_path), plan or default_plan(agent)
    if calibration_models is None:
        calibration_models = default_calibration_models(resolution)
    probe = default_probe(resolution)
    fresh = LutMeta(family, resolution, num_classes, agent.backend, target_fingerprint(agent, plan),
                    probe.arch.to_dict(), grid={**grid_settings(family, agent.backend), **(grid or {})},
                    calibration_draw={"scheme": "balanced", "count": calibration_models, "seed": seed,
                                      "shrunk": default_shrunk(calibration_models)})
    meta, rows = _start(agent, path, fresh)
    meta.grid = fresh.grid  # the jobs below are planned on the current grid
    # a resumed table keeps its own calibration set
    meta.calibration_draw = draw = {"count": calibration_models, **table_draw(meta, seed)}
    done = {row_key(r) for r in rows}
    jobs = [j for j in plan_jobs(family, resolution, num_classes, draw["count"], draw["seed"], meta.grid,
                                 draw["scheme"], draw.get("shrunk"), draw.get("narrow", 0)) if j.key not in done]
    random.Random(seed).shuffle(jobs)
    journal = Journal(path)
    try:
        with tempfile.TemporaryDirectory(prefix="hwadapt-lut-") as tmp:
            probe_session = agent.open(export(probe.arch, agent.model_format, Path(tmp) / f"probe.{agent.model_format}"))
            try:
                if meta.reference_ms is None:
                    meta.reference_ms = _reference_level(agent, probe_session, plan)
                    save_lut(path, meta, rows)
                _run_jobs(agent, jobs, probe_session, meta.reference_ms, plan, Path(tmp), batch_size,
                          journal, rows, show_progress)
                _more_windows(agent, rows, probe_session, meta.reference_ms, plan, Path(tmp), batch_size,
                              lambda: save_lut(path, meta, rows))
                _settle_reference(meta, rows)
            finally:
                probe_session.close()
        meta.calibration = fit_calibration(rows, meta.periods, weights=calibration_weights(rows, meta))
    finally:
        journal.close()
        save_lut(path, meta, rows)
    journal_path(path).unlink(missing_ok=True)
    return meta


def _job_of(row: dict[str, Any]) -> Job:
    key = row_key(row)
    if row["kind"] == "model":
        return Job(key, arch=Arch.from_json(row["arch"]))
    return Job(key, op=standalone_op(*key[:7]))


def _more_windows(agent: DeviceAgent, rows: list[dict[str, Any]], probe: ModelSession, reference_ms: float,
                  plan: MeasurePlan, workdir: Path, batch_size: int, checkpoint: Callable[[], None]) -> None:
    """Measure again the rows one window cannot be trusted with: grid points costing far
    more than a wider op (``outliers``; a second window, the faster kept), and the
    calibration models, which get the windows every end-to-end figure gets
    (:func:`hwadapt.measure.measure_in_windows`: the median of ``WINDOWS``, two more while
    the windows beside the median disagree, in batches of whole models) so that the fit
    and the validation share one estimator (else the predictor carries a level shift)."""
    suspects = suspect_rows(rows)
    stages = [(f"grid points over {TOLERANCE:.1f}x a wider op", lambda: suspects, batch_size, 2, fastest),
              ("calibration models", lambda: _models(rows), WINDOW_BATCH, WINDOWS, median_level)]
    stages += [("unsettled calibration models", lambda: [r for r in _models(rows) if not settled(window_levels(r))],
                WINDOW_BATCH, wanted, median_level) for wanted in range(WINDOWS + 2, MAX_WINDOWS + 1, 2)]
    for label, targets, size, wanted, choose in stages:
        jobs = [(_job_of(r), wanted - windows(r)) for r in targets() if windows(r) < wanted]
        changed = 0
        for start in range(0, len(jobs), size):
            batch = [job for job, _ in jobs[start:start + size]]
            passes = [_measure_batch(agent, batch, probe, reference_ms, plan, workdir)
                      for _ in range(max(extra for _, extra in jobs[start:start + size]))]
            changed += merge_windows(rows, passes, choose)
            checkpoint()
        if jobs:
            log.info("up to %d windows for %d %s: %d changed figure", wanted, len(jobs), label, changed)


def _models(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if r["kind"] == "model"]


def _reference_level(agent: DeviceAgent, probe: ModelSession, plan: MeasurePlan) -> float:
    long_plan = replace(plan, min_rounds=2 * plan.min_rounds, max_rounds=2 * plan.max_rounds)
    level = measure_sessions(agent, [probe], long_plan)[0].median_ms
    log.info("probe reference level: %.4f ms", level)
    return level


def _settle_reference(meta: LutMeta, rows: list[dict[str, Any]]) -> None:
    """Put the table on the probe's median level over all its windows, not on the one long
    window measured first: that window can fall in a stretch where the whole host runs
    slow (seen: the probe's fastest inference 17% slow, in a table whose other windows
    agreed within 1%), and would shift every figure of the table and every later
    measurement against it."""
    levels = [r["probe_ms"] for r in rows if r.get("probe_ms") is not None and np.isfinite(r["probe_ms"])]
    if not levels:
        return
    typical = float(np.median(levels))
    factor = typical / meta.reference_ms
    for row in rows:
        row["window_ms"] = json.dumps([level * factor for level in window_levels(row)])
        row.update({name: row[name] * factor for name in PROBE_SCALED_COLUMNS})
    log.info("probe reference level %.4f -> %.4f ms (median over the table's windows)", meta.reference_ms, typical)
    meta.reference_ms = typical


def _run_jobs(agent: DeviceAgent, jobs: list[Job], probe: ModelSession, reference_ms: float, plan: MeasurePlan,
              workdir: Path, batch_size: int, journal: Journal, rows: list[dict[str, Any]], show: bool) -> None:
    columns = (TextColumn("[bold]profiling"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("ETA"), TimeRemainingColumn())
    with Progress(*columns, disable=not show, transient=False) as progress:
        task = progress.add_task("profile", total=len(jobs))
        for batch in _batches(jobs, batch_size):
            new_rows = _measure_batch(agent, batch, probe, reference_ms, plan, workdir)
            journal.append(new_rows)
            rows.extend(new_rows)
            for row in new_rows:
                log.info("measured %s %s: %.4f ms", row["kind"], row_key(row)[1:7], row["ms"])
            progress.advance(task, len(batch))


def _batches(jobs: list[Job], size: int) -> list[list[Job]]:
    """``jobs`` in batches of ``size``, ops and networks apart (they take different plans),
    each kind in the given order, the network batches spread evenly among the op batches."""
    def chunks(kind: list[Job]) -> list[list[Job]]:
        return [kind[start:start + size] for start in range(0, len(kind), size)]

    ops, nets = chunks([j for j in jobs if j.op is not None]), chunks([j for j in jobs if j.op is None])
    order = sorted([(k / len(ops), 0, batch) for k, batch in enumerate(ops)]
                   + [((k + 0.5) / len(nets), 1, batch) for k, batch in enumerate(nets)], key=lambda t: t[:2])
    return [batch for *_, batch in order]
