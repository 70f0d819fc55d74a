"""``hwadapt lottery``: iterative magnitude pruning with rewinding (Frankle & Carbin 2019;
Frankle et al. 2020), and its two controls on the same masks.

Level 0 trains the dense network for the whole schedule (steps 0..T), leaving its
weights at step k behind (the rewind point; k = 0 is the original hypothesis, the
initial weights). Each level L >= 1 prunes ``rate`` of the weights level L-1's ticket
still kept, the smallest by trained magnitude, rewinds the survivors to their values at
step k and trains steps k..T with the mask held (:func:`~hwadapt.lottery.masks.hold_masks`).
The controls train the same steps on the same level's mask: the ticket's mask on a fresh
random initialisation (``reinit``), and a random mask of the same layer-wise sparsity on
the rewound weights (``random_mask``). All three arms of a level see the same batches.

Run folder::

    lottery.json                 the settings (a resumed run must match them)
    init/                        the dense network at step 0
    rewind/                      the dense network at step k (k > 0; else init/ is it)
    level-LL/{ticket,reinit,random_mask}/
                                 each arm's checkpoint (masks in the checkpoint), progress.json;
                                 the ticket's model.onnx/.tflite and their sparse forms
    levels.csv, report.json

Every arm checkpoints each epoch; re-running the same command resumes, and raising
``--levels`` extends a finished run.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from hwadapt.adapt.rundir import write_json
from hwadapt.data import Splits, load_dataset
from hwadapt.errors import HwadaptError
from hwadapt.families import build
from hwadapt.lottery.loop import Schedule, Snapshot, train_from
from hwadapt.lottery.masks import Masks, dense_masks, hold_masks, layer_sparsity, masks_on, sparsity
from hwadapt.lottery.prune import check_rate, magnitude_masks, random_masks
from hwadapt.lottery.rundir import open_run
from hwadapt.lottery.sparse_export import save_form
from hwadapt.materialize import FORMATS, export
from hwadapt.materialize.torch_net import WEIGHTS_FILE, Net, load_checkpoint, save_checkpoint
from hwadapt.progress import QUIET, Reporter
from hwadapt.train import TrainConfig
from hwadapt.train.loop import make_optimizer

RUN_FILE, LEVELS_FILE, REPORT_FILE = "lottery.json", "levels.csv", "report.json"
COLUMNS = ("level", "sparsity", "test_accuracy", "reinit_accuracy", "random_mask_accuracy")


class LotteryError(HwadaptError):
    """Lottery settings that cannot be run."""


@dataclass(frozen=True)
class LotterySettings:
    family: str
    data: str
    width: float = 1.0
    resolution: int = 32
    levels: int = 5  # pruning levels after the dense level 0
    rate: float = 0.2  # fraction of the remaining weights each level prunes
    rewind_steps: int = 0  # k: survivors restart from their values at this step (0: initial weights)
    epochs: int = 10  # the whole schedule, steps 0..T; tickets train steps k..T of it
    layerwise: bool = False  # prune the same fraction of every layer instead of globally
    controls: bool = True  # train the random re-init and random-mask controls at every level
    lr: float = 0.05
    batch_size: int = 128
    weight_decay: float = 1e-4
    seed: int = 0
    train_images: int | None = None  # a stratified subset of the training split (a CPU budget)

    def config(self) -> TrainConfig:
        return TrainConfig(epochs=self.epochs, lr=self.lr, batch_size=self.batch_size,
                           weight_decay=self.weight_decay, seed=self.seed)

    def identity(self, splits: Splits) -> dict[str, Any]:
        """What a resumed run must share: every setting but ``levels`` (more levels extend it)."""
        found = asdict(self)
        found.pop("levels")
        return {**found, "data": splits.source}


@dataclass
class LotteryJob:
    settings: LotterySettings
    splits: Splits
    schedule: Schedule
    out: Path
    device: torch.device
    reporter: Reporter = QUIET

    def folder(self, level: int, arm: str = "ticket") -> Path:
        return self.out / f"level-{level:02d}" / arm

    @property
    def rewind_folder(self) -> Path:
        return self.out / ("rewind" if self.settings.rewind_steps else "init")


def prepare_lottery(settings: LotterySettings, out: str | Path, *, device: torch.device | None = None,
                    reporter: Reporter = QUIET) -> LotteryJob:
    """Check the settings and load the data; touches nothing on disk."""
    check_rate(settings.rate)
    if settings.levels < 0 or settings.epochs < 1:
        raise LotteryError(f"--levels must be >= 0 and --epochs >= 1 (got {settings.levels}, {settings.epochs})")
    splits = load_dataset(settings.data, settings.resolution, seed=settings.seed)
    if settings.train_images:
        splits = replace(splits, train=splits.train.subset(settings.train_images, settings.seed))
    schedule = Schedule.of(settings.config(), splits)
    if not 0 <= settings.rewind_steps < schedule.total:
        raise LotteryError(f"--rewind-steps {settings.rewind_steps} is past the end of training: {settings.epochs} "
                           f"epochs of {schedule.per_epoch} steps make {schedule.total} steps (0 .. "
                           f"{schedule.total - 1})")
    return LotteryJob(settings, splits, schedule, Path(out), device or torch.device("cpu"), reporter)


def seeded_net(job: LotteryJob, seed: int) -> Net:
    """The family's base network, initialised from ``seed``."""
    s = job.settings
    torch.manual_seed(seed)
    return Net(build(s.family, width=s.width, resolution=s.resolution, num_classes=job.splits.num_classes))


def train_arm(job: LotteryJob, net: Net, masks: Masks, level: int, arm: str, *, start: int,
              snapshot: Snapshot | None = None, folder: Path | None = None) -> float:
    """Train ``net`` with ``masks`` held over steps ``start``..T on level ``level``'s
    batches, into ``folder`` (default: the level's arm; resumable); its test accuracy."""
    net = net.to(job.device)
    optimizer = make_optimizer(net, job.schedule.config)
    hold_masks(optimizer, net, masks)
    return train_from(net, optimizer, job.splits, job.schedule, folder or job.folder(level, arm), start=start,
                      stream=(level,), label=f"level {level} {arm}", snapshot=snapshot, extra={"masks": masks},
                      reporter=job.reporter)


def trained_arm(job: LotteryJob, level: int, arm: str = "ticket") -> tuple[Net, Masks]:
    """A finished arm's network and masks."""
    net, extra = load_checkpoint(job.folder(level, arm), job.device)
    return net, masks_on(extra["masks"], job.device)


def rewound(job: LotteryJob) -> Net:
    net, _ = load_checkpoint(job.rewind_folder, job.device)
    return net


def dense_level(job: LotteryJob) -> float:
    """Level 0: the dense network from its initialisation, leaving the rewind point behind."""
    net = seeded_net(job, job.settings.seed)
    if not (job.out / "init" / WEIGHTS_FILE).is_file():
        save_checkpoint(net, job.out / "init")
    k = job.settings.rewind_steps
    snapshot = Snapshot(k, job.rewind_folder) if k else None
    return train_arm(job, net, dense_masks(net), 0, "ticket", start=0, snapshot=snapshot)


def pruned_level(job: LotteryJob, level: int) -> dict[str, Any]:
    """Level ``level``: prune the last ticket, rewind, train; and the controls."""
    s, k = job.settings, job.settings.rewind_steps
    previous, previous_masks = trained_arm(job, level - 1)
    masks = magnitude_masks(previous, previous_masks, s.rate, s.layerwise)
    row = {"level": level, "sparsity": sparsity(masks),
           "test_accuracy": train_arm(job, rewound(job), masks, level, "ticket", start=k)}
    if s.controls:
        reinit = seeded_net(job, s.seed + 1000 * level + 1)
        row["reinit_accuracy"] = train_arm(job, reinit, masks, level, "reinit", start=k)
        shuffled = random_masks({n: m.cpu() for n, m in masks.items()},
                                torch.Generator().manual_seed(s.seed * 1000 + level))
        row["random_mask_accuracy"] = train_arm(job, rewound(job), masks_on(shuffled, job.device), level,
                                                "random_mask", start=k)
    export_ticket(job, level)
    return row


def export_ticket(job: LotteryJob, level: int) -> dict[str, str]:
    """The level's ticket as ONNX and TFLite, dense files and sparse ones (written once)."""
    folder = job.folder(level)
    files = {**{fmt: folder / f"model.{fmt}" for fmt in FORMATS},
             **{f"sparse_{fmt}": folder / f"model.sparse.{fmt}" for fmt in FORMATS}}
    if not all(path.is_file() for path in files.values()):
        net, _ = trained_arm(job, level)
        net = net.cpu().eval()
        for fmt in FORMATS:
            export(net.arch, fmt, files[fmt], net=net)
            save_form(net, fmt, files[f"sparse_{fmt}"])
    return {name: str(path) for name, path in files.items()}


@dataclass
class LotteryReport:
    settings: dict[str, Any]
    dense_accuracy: float
    levels: list[dict[str, Any]]  # one row per level: COLUMNS
    layer_sparsity: dict[str, float]  # of the last level's ticket
    exports: dict[str, str]  # the last level's ticket: ONNX and TFLite, dense and sparse files
    steps: int  # T, the schedule's length
    wall_s: float  # this invocation's time (a resumed run's earlier work is not in it)


def run_lottery(job: LotteryJob) -> LotteryReport:
    """Run (or resume, or extend) the lottery: levels 0..``levels``; writes ``levels.csv``
    after each level and ``report.json`` at the end."""
    started = time.perf_counter()
    s = job.settings
    open_run(job.out, RUN_FILE, job.settings.identity(job.splits), "lottery")
    rows = [{"level": 0, "sparsity": 0.0, "test_accuracy": dense_level(job)}]
    write_levels(job.out, rows)
    for level in range(1, s.levels + 1):
        job.reporter.note(f"level {level}: pruning {s.rate:.0%} of the remaining weights")
        rows.append(pruned_level(job, level))
        write_levels(job.out, rows)
    _, last_masks = trained_arm(job, s.levels)
    report = LotteryReport(asdict(s), rows[0]["test_accuracy"], rows, layer_sparsity(last_masks),
                           export_ticket(job, s.levels), job.schedule.total, time.perf_counter() - started)
    write_json(job.out / REPORT_FILE, asdict(report))
    return report


def write_levels(out: Path, rows: list[dict[str, Any]]) -> None:
    pd.DataFrame(rows, columns=list(COLUMNS)).to_csv(out / LEVELS_FILE, index=False)
