"""Building a LUT: measure every grid point of every shape class a family reaches, plus
whole networks that calibrate the predictor (:mod:`hwadapt.lut.calibration_set`); then
more windows for the calibration networks and for grid points that look spoiled.

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

from device_agents.base import DeviceAgent, ModelSession
from hwadapt.arch.spec import Arch
from hwadapt.lut.calibrate import fit_calibration
from hwadapt.lut.calibration_set import (calibration_set, calibration_weights, default_calibration_models, new_draw,
                                         table_draw)
from hwadapt.lut.outliers import TOLERANCE, fastest, merge_windows, suspect_rows, window_levels, windows
from hwadapt.lut.space import grid_settings, shape_classes, standalone_op
from hwadapt.lut.store import (ROW_KEY, Journal, LutError, LutMeta, journal_path, load_lut, load_sidecar,
                               read_journal, row_key, save_lut, sidecar_path)
from hwadapt.materialize import export, save_ops
from hwadapt.materialize.weights import random_weights
from hwadapt.measure import (BATCH_SIZE, MAX_WINDOWS, TARGET_FIELDS, WINDOWS, MeasurePlan, Measurement,
                             default_plan, default_probe, measure_sessions, median_level, settled, target_fingerprint)
from hwadapt.ops import OP_KINDS, Op, OpKind
from hwadapt.progress import QUIET, Reporter

log = logging.getLogger(__name__)
PROBE_SCALED_COLUMNS = ("ms", "p10_ms", "p90_ms", "std_ms")  # on the probe's time base
# rounds an op row takes at most in one window (a whole network: the plan's max_rounds).
# In a calm stretch nearly every op row stops at the plan's minimum; in a noisy one a fifth
# to a third ran to 24 rounds, and stopped at 16, two passes over the same rows sat as far
# apart as they did at 24, for 5-13% fewer rounds. A network's window needs its rounds: at
# 224 px a round holds 3-5 of its inferences.
OP_MAX_ROUNDS = 16


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


def check_forms(forms: tuple[str, ...] | list[str]) -> list[str]:
    """``forms`` as a table records them; an error naming the kinds that have stand-ins
    for any other."""
    offered = sorted(name for name, kind in OP_KINDS.items() if type(kind).stand_ins is not OpKind.stand_ins)
    unknown = sorted(set(forms) - set(offered))
    if unknown:
        raise LutError(f"--forms {','.join(unknown)}: no such export form; the op kinds with stand-ins are "
                       f"{', '.join(offered)}")
    return sorted(set(forms))


def op_row_key(op: Op) -> dict[str, Any]:
    return {"kind": op.kind, "size": op.size, "kernel": op.kernel, "stride": op.stride,
            "act": op.act, "cin": op.cin, "cout": op.cout, "arch": ""}


def model_row_key(arch: Arch) -> dict[str, Any]:
    return {"kind": "model", "size": arch.resolution, "kernel": 0, "stride": 0, "act": "",
            "cin": 0, "cout": 0, "arch": arch.to_json(indent=None)}


def plan_jobs(meta: LutMeta) -> list[Job]:
    """Every row the table ``meta`` describes: its grid points and its calibration networks."""
    draw = table_draw(meta)
    jobs = [Job(row_key(op_row_key(op)), op=op)
            for cls in shape_classes(meta.family, meta.resolution, meta.num_classes, meta.grid, meta.forms)
            for op in cls.ops()]
    jobs += [Job(row_key(model_row_key(arch)), arch=arch) for arch, _ in calibration_set(
        meta.family, meta.resolution, meta.num_classes, draw["count"], draw["seed"], draw["shrunk"])]
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


def _start(path: Path, fresh: LutMeta, reporter: Reporter) -> tuple[LutMeta, list[dict[str, Any]]]:
    """The table to finish: the one at ``path`` (with its journal's rows), or a fresh one.

    A table whose parquet is gone but whose sidecar is there resumes from the sidecar and
    the journal; a journal without either is moved aside (nothing is lost) and the table
    starts afresh. Each case says which it did."""
    journal = journal_path(path)
    if path.exists():
        meta, frame = load_lut(path)
        rows = frame.to_dict("records")
        how = f"resuming {path}: {len(rows)} rows in the table"
    elif sidecar_path(path).exists():
        meta, rows = load_sidecar(path), []
        how = f"resuming {path} from its sidecar and journal (the table file was missing)"
    else:
        if journal.exists():
            aside = journal.with_name(f"{journal.name}.orphan-{int(time.time())}")
            journal.replace(aside)
            reporter.note(f"{journal} had no table beside it: moved to {aside}; starting afresh")
        path.parent.mkdir(parents=True, exist_ok=True)
        save_lut(path, fresh, [])
        return fresh, []
    _check_same_target(meta, fresh, path)
    seen = {row_key(r) for r in rows}
    recovered = []
    for row in read_journal(path):  # rows measured after the last table write
        if row_key(row) not in seen:
            seen.add(row_key(row))
            recovered.append(row)
    reporter.note(f"{how}, {len(recovered)} more in its journal")
    return meta, rows + recovered


def build_lut(agent: DeviceAgent, family: str, resolution: int, out_path: str | Path, *,
              num_classes: int = 10, calibration_models: int | None = None, seed: int = 0,
              plan: MeasurePlan | None = None, batch_size: int = 12, reporter: Reporter = QUIET,
              grid: dict[str, int] | None = None, forms: tuple[str, ...] | list[str] = ()) -> LutMeta:
    """Measure (or finish measuring) the LUT of ``family`` at ``resolution`` on ``agent``
    (``grid``: overrides of the family's grid settings; ``calibration_models``: None for
    :func:`~hwadapt.lut.calibration_set.default_calibration_models`; ``forms``: op kinds
    whose stand-in ops the table measures too, so that it prices those export forms)."""
    path, plan = Path(out_path), plan or default_plan(agent)
    count = default_calibration_models(resolution) if calibration_models is None else calibration_models
    probe = default_probe(resolution)
    fresh = LutMeta(family, resolution, num_classes, agent.backend, target_fingerprint(agent, plan),
                    probe.arch.to_dict(), grid={**grid_settings(family, agent.backend), **(grid or {})},
                    calibration_draw=new_draw(count, seed), forms=check_forms(forms))
    meta, rows = _start(path, fresh, reporter)
    # the jobs below are planned on the current grid and forms; a resumed table keeps its draw
    meta.grid, meta.forms = fresh.grid, sorted(set(meta.forms) | set(fresh.forms))
    done = {row_key(r) for r in rows}
    jobs = [j for j in plan_jobs(meta) if j.key not in done]
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
                          journal, rows, reporter)
                _more_windows(agent, rows, probe_session, meta.reference_ms, plan, Path(tmp), batch_size,
                              lambda: save_lut(path, meta, rows), reporter)
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
                  plan: MeasurePlan, workdir: Path, batch_size: int, checkpoint: Callable[[], None],
                  reporter: Reporter) -> None:
    """Measure again the rows one window cannot be trusted with: grid points costing far
    more than a wider op (``outliers``; a second window, the faster kept), and the
    calibration networks, which get the windows every end-to-end figure gets
    (:func:`hwadapt.measure.measure_in_windows`: the median of ``WINDOWS``, two more while
    the windows beside the median disagree, in batches of whole models) so that the fit
    and the validation share one estimator (else the predictor carries a level shift)."""
    suspects = suspect_rows(rows)
    stages = [(f"grid points over {TOLERANCE:.1f}x a wider op", lambda: suspects, batch_size, 2, fastest),
              ("calibration networks", lambda: _models(rows), BATCH_SIZE, WINDOWS, median_level)]
    stages += [("unsettled calibration networks", lambda: [r for r in _models(rows) if not settled(window_levels(r))],
                BATCH_SIZE, wanted, median_level) for wanted in range(WINDOWS + 2, MAX_WINDOWS + 1, 2)]
    for label, targets, size, wanted, choose in stages:
        jobs = [(_job_of(r), wanted - windows(r)) for r in targets() if windows(r) < wanted]
        if not jobs:
            continue
        task = reporter.start(f"windows for {label}", total=len(jobs))
        changed = 0
        for start in range(0, len(jobs), size):
            batch = [job for job, _ in jobs[start:start + size]]
            passes = [_measure_batch(agent, batch, probe, reference_ms, plan, workdir)
                      for _ in range(max(extra for _, extra in jobs[start:start + size]))]
            changed += merge_windows(rows, passes, choose)
            checkpoint()
            reporter.advance(task, len(batch))
        reporter.finish(task)
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
              workdir: Path, batch_size: int, journal: Journal, rows: list[dict[str, Any]],
              reporter: Reporter) -> None:
    task = reporter.start("profiling", total=len(jobs))
    for batch in _batches(jobs, batch_size):
        new_rows = _measure_batch(agent, batch, probe, reference_ms, plan, workdir)
        journal.append(new_rows)
        rows.extend(new_rows)
        for row in new_rows:
            log.info("measured %s %s: %.4f ms", row["kind"], row_key(row)[1:7], row["ms"])
        reporter.advance(task, len(batch))
    reporter.finish(task)


def _batches(jobs: list[Job], size: int) -> list[list[Job]]:
    """``jobs`` in batches of ``size``, ops and networks apart (they take different plans),
    each kind in the given order, the network batches spread evenly among the op batches."""
    def chunks(kind: list[Job]) -> list[list[Job]]:
        return [kind[start:start + size] for start in range(0, len(kind), size)]

    ops, nets = chunks([j for j in jobs if j.op is not None]), chunks([j for j in jobs if j.op is None])
    order = sorted([(k / len(ops), 0, batch) for k, batch in enumerate(ops)]
                   + [((k + 0.5) / len(nets), 1, batch) for k, batch in enumerate(nets)], key=lambda t: t[:2])
    return [batch for *_, batch in order]
