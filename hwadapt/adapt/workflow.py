"""``hwadapt adapt`` as a library call: any registered method, from a trained checkpoint
and a LUT to a measured, exported network and its ``report.json``.

Everything that can be checked is checked before the run folder is touched: the method
and its settings, the checkpoint, the LUT (family, resolution, classes), the data, and the
budget (a budget below what the narrowest network reaches is refused, naming that
latency). Then the method runs (it resumes if the folder holds this job already), and
the base network, the networks it kept and its result are measured end to end together
on the LUT's target, each figure with its windows' spread.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from hwadapt.adapt.plot import pareto_png
from hwadapt.adapt.proposals import minimum_widths
from hwadapt.adapt.registry import AdaptJob, Outcome, get_method
from hwadapt.adapt.report import REPORT_FILE, AdaptReport
from hwadapt.adapt.rundir import write_json
from hwadapt.arch.spec import Arch
from hwadapt.data import Splits, load_dataset
from hwadapt.data.splits import HOLDOUT_FRACTION
from hwadapt.errors import HwadaptError
from hwadapt.lut.predictor import LatencyPredictor
from hwadapt.materialize import FORMATS, export
from hwadapt.materialize.torch_net import WEIGHTS_FILE, load_checkpoint
from hwadapt.measure import EndToEnd, MeasurePlan, noisy_note
from hwadapt.progress import QUIET, Reporter
from hwadapt.train import evaluate
from hwadapt.train.device import resolve_device

JOB_FILE, WALL_FILE, FAMILY_FILE, PLOT_FILE = "job.json", "wall.json", "family.csv", "pareto.png"
NARROWEST = 8  # channels per group of the narrowest network a method can reach


class AdaptError(HwadaptError):
    """Settings an adaptation cannot work with."""


def file_identity(path: Path) -> dict[str, Any]:
    """A file by its path and content: rewritten with the same content, it is the same file."""
    return {"path": str(path.resolve()), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


def resolve_budget(base_ms: float, floor_ms: float, budget_ms: float | None, budget_ratio: float | None) -> float:
    """The budget in ms from exactly one of an absolute value and a ratio of the base's
    predicted latency; an error when there is nothing to do or nothing can reach it."""
    if (budget_ms is None) == (budget_ratio is None):
        raise AdaptError("give exactly one of --budget-ms and --budget-ratio")
    budget = budget_ms if budget_ms is not None else budget_ratio * base_ms
    if budget >= base_ms:
        raise AdaptError(f"nothing to do: the network is predicted at {base_ms:.4g} ms, "
                         f"already within the {budget:.4g} ms budget")
    if budget < floor_ms:
        raise AdaptError(f"budget {budget:.4g} ms is out of reach: the narrowest network ({NARROWEST} channels per "
                         f"group) is predicted at {floor_ms:.4g} ms ({floor_ms / base_ms:.2f} x the base)")
    return budget


def prepare_job(method: str, checkpoint: Path, lut: Path, data: str, out: Path, *, budget_ms: float | None = None,
                budget_ratio: float | None = None, settings: dict[str, Any] | None = None, seed: int = 0,
                holdout: float = HOLDOUT_FRACTION, train_images: int | None = None,
                holdout_images: int | None = None, force: bool = False, device: str = "auto",
                reporter: Reporter = QUIET) -> tuple[AdaptJob, Any]:
    """Load and check everything a method needs; touches nothing on disk. ``train_images``
    and ``holdout_images``: seeded, class-stratified subsets of those splits (a CPU budget);
    ``device``: where the method trains (:func:`~hwadapt.train.device.resolve_device`)."""
    chosen = get_method(method)
    config = chosen.settings(**(settings or {}))
    where = resolve_device(device)
    base, _ = load_checkpoint(checkpoint, where)
    chosen.check(base, config)
    predictor = LatencyPredictor.load(lut, force=force)
    predictor.check(base.arch)
    splits = load_dataset(data, base.arch.resolution, seed=seed, holdout_fraction=holdout)
    if splits.num_classes != base.arch.num_classes:
        raise AdaptError(f"{data} has {splits.num_classes} classes, the network {base.arch.num_classes}")
    splits = subsets(splits, train_images, holdout_images, seed)
    refuse_off_grid(predictor, base.arch, f"{checkpoint}")
    base_ms = predictor.predict_ms(base.arch)
    budget = resolve_budget(base_ms, predictor.predict_ms(minimum_widths(base.arch, NARROWEST)), budget_ms,
                            budget_ratio)
    identity = {"method": method, "settings": json.loads(json.dumps(dataclasses.asdict(config))),
                "checkpoint": file_identity(checkpoint / WEIGHTS_FILE), "lut": file_identity(lut),
                "data": splits.source, "holdout": holdout, "train_images": train_images,
                "holdout_images": holdout_images, "budget_ms": budget, "seed": seed}
    job = AdaptJob(base, splits, predictor, budget, Path(out), identity, Path(checkpoint), seed, reporter, where)
    return job, config


def refuse_off_grid(predictor: LatencyPredictor, arch: Arch, what: str) -> None:
    """An error when ``arch`` has widths off the LUT's channel grid (see
    :meth:`~hwadapt.lut.predictor.LatencyPredictor.off_grid`): its price would not hold."""
    found = predictor.off_grid(arch)
    if found:
        step = predictor.meta.grid.get("granularity", 8)
        raise AdaptError(f"{what} has widths off the LUT's grid of multiples of {step} ({', '.join(found[:3])}"
                         f"{', ...' if len(found) > 3 else ''}): a runtime can run them far slower than priced")


def subsets(splits: Splits, train_images: int | None, holdout_images: int | None, seed: int) -> Splits:
    """``splits`` with its train and holdout images cut to the given counts (None: all)."""
    if train_images:
        splits = replace(splits, train=splits.train.subset(train_images, seed))
    if holdout_images:
        splits = replace(splits, holdout=splits.holdout.subset(holdout_images, seed))
    return splits


def claim(out: Path, identity: dict[str, Any], what: str = "an adapt run") -> None:
    """Make ``out`` this job's folder, or check that it is: a folder holding another job,
    or files of something else (not ``what``), is refused untouched."""
    job_file = out / JOB_FILE
    if job_file.is_file():
        if json.loads(job_file.read_text()) != identity:
            raise AdaptError(f"{out} holds a run with other settings; use another --out "
                             "(or the original arguments to resume it)")
        return
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise AdaptError(f"{out} exists and is not {what}; choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    write_json(job_file, identity)


def adapt_network(job: AdaptJob, config: Any, *, plan: MeasurePlan | None = None,
                  baseline: pd.DataFrame | None = None) -> AdaptReport:
    """Run ``job``'s method (or resume it), then measure, export and report."""
    claim(job.out, job.identity)
    report_path = job.out / REPORT_FILE
    if report_path.is_file():
        return AdaptReport.load(report_path)
    method = get_method(job.identity["method"])
    started = time.perf_counter()
    outcome = method.run(job, config)
    wall = _add_wall_time(job.out, time.perf_counter() - started)
    for line in outcome.notes:
        job.reporter.note(line)
    report = _finish(job, outcome, wall, plan, baseline)
    report.save(report_path)
    return report


def _add_wall_time(out: Path, seconds: float) -> float:
    """The method's time over every run of this job, this one's ``seconds`` added."""
    path = out / WALL_FILE
    total = (json.loads(path.read_text())["seconds"] if path.is_file() else 0.0) + seconds
    write_json(path, {"seconds": total})
    return total


def _finish(job: AdaptJob, outcome: Outcome, wall_s: float, plan: MeasurePlan | None,
            baseline: pd.DataFrame | None) -> AdaptReport:
    final, _ = load_checkpoint(outcome.checkpoint, job.device)
    refuse_off_grid(job.predictor, final.arch, f"method {job.identity['method']}'s result")
    kept = [m for m in outcome.members if m.checkpoint is not None]
    members = [load_checkpoint(m.checkpoint)[0] for m in kept]
    job.reporter.note(f"measuring {2 + len(members)} networks end to end on {job.predictor.meta.backend} ...")
    figures = job.predictor.target.measure([job.base.arch, *[m.arch for m in members], final.arch],
                                           [job.base, *members, final], plan)
    base_figure, final_figure = figures[0], figures[-1]
    by_member = dict(zip(map(id, kept), figures[1:-1]))
    member_figures = [by_member.get(id(m), base_figure) for m in outcome.members]
    note = noisy_note(figures)
    if note:
        job.reporter.note(note)
    exports = {"checkpoint": str(outcome.checkpoint)}
    for fmt in FORMATS:
        exports[fmt] = str(export(final.arch, fmt, outcome.checkpoint / f"model.{fmt}", net=final))
    method = job.identity["method"]
    _write_family(job, outcome, member_figures, final_figure, baseline, method)
    return AdaptReport(
        method=method, budget_ms=job.budget_ms, predicted_ms=outcome.predicted_ms, measured_ms=final_figure.ms,
        measured_spread_pct=final_figure.spread_pct, base_predicted_ms=job.predictor.predict_ms(job.base.arch),
        base_measured_ms=base_figure.ms, base_measured_spread_pct=base_figure.spread_pct,
        test_accuracy=evaluate(final, job.splits.test, job.splits),
        base_test_accuracy=evaluate(job.base, job.splits.test, job.splits), wall_s=wall_s,
        arch=final.arch.to_dict(), exports=exports, details=outcome.details)


def _write_family(job: AdaptJob, outcome: Outcome, figures: list[EndToEnd], final: EndToEnd,
                  baseline: pd.DataFrame | None, method: str) -> None:
    """``family.csv`` and the Pareto plot of the networks the method kept (none: nothing)."""
    if not outcome.members:
        return
    rows = [{**row, "measured_ms": f.ms, "measured_spread_pct": f.spread_pct,
             "arch": json.dumps(row["arch"], separators=(",", ":"))}
            for row, f in zip([m.row for m in outcome.members] + [outcome.result_row], [*figures, final]) if row]
    frame = pd.DataFrame(rows)
    frame.to_csv(job.out / FAMILY_FILE, index=False)
    family = job.base.arch.family
    pareto_png(job.out / PLOT_FILE, frame, baseline, job.budget_ms, title=f"{family}: {method} to {job.budget_ms:.3g} ms",
               method=method)


def baseline_frame(folder: Path | None) -> pd.DataFrame | None:
    """A ``hwadapt baseline`` folder's table, to draw beside a method's family."""
    if folder is None:
        return None
    if not (folder / "baseline.csv").is_file():
        raise AdaptError(f"no baseline.csv in {folder} (run `hwadapt baseline` first)")
    return pd.read_csv(folder / "baseline.csv")

