"""Training one network over steps ``[start, total)`` of a cosine schedule, resumable per
epoch, with an optional snapshot of the weights at one step (the rewind point).

The lottery methods train from the middle of a schedule: a ticket rewound to step k
trains steps k..T with the learning rate it would have had there, and the dense run
that finds it must leave its weights at step k behind. ``hwadapt.train.fit`` trains
whole schedules from step 0, so this loop runs the same steps
(:func:`hwadapt.train.loop.train_steps`) between its own checkpoints. A checkpoint is
the module's state, the optimizer's and the step reached (``weights.pt``, loaded with
``weights_only=True``), and ``progress.json``; an interrupted run redoes at most one
epoch, seeing the same batches (epoch ``e`` draws from ``default_rng([seed, *stream, e])``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from hwadapt.adapt.rundir import write_json
from hwadapt.data import Splits
from hwadapt.materialize.torch_net import WEIGHTS_FILE, read_weights, save_checkpoint
from hwadapt.progress import QUIET, Reporter
from hwadapt.train import TrainConfig, evaluate
from hwadapt.train.loop import steps_per_epoch, train_steps

PROGRESS_FILE = "progress.json"


@dataclass(frozen=True)
class Schedule:
    """``config.epochs`` epochs of ``per_epoch`` steps, cosine from ``config.lr``."""

    config: TrainConfig
    per_epoch: int

    @classmethod
    def of(cls, config: TrainConfig, splits: Splits) -> Schedule:
        return cls(config, steps_per_epoch(splits, config.batch_size))

    @property
    def total(self) -> int:
        return self.per_epoch * self.config.epochs


@dataclass(frozen=True)
class Snapshot:
    """Save the module's weights to ``folder`` when training reaches ``step``."""

    step: int
    folder: Path


def progress(folder: Path) -> dict[str, Any]:
    """What ``folder``'s training has done: {} before its first checkpoint."""
    path = folder / PROGRESS_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def train_from(module: nn.Module, optimizer, splits: Splits, schedule: Schedule, folder: Path, *, start: int,
               stream: tuple[int, ...], label: str, snapshot: Snapshot | None = None,
               extra: dict[str, Any] | None = None, reporter: Reporter = QUIET) -> float:
    """Train ``module`` (which has an ``arch``) over steps ``[start, total)`` with
    ``optimizer``, checkpointing to ``folder`` after every epoch (and resuming from it);
    ``extra`` goes into each checkpoint. Returns the test accuracy at the end."""
    done = progress(folder)
    if done:
        payload = read_weights(folder / WEIGHTS_FILE)
        module.load_state_dict(payload["state_dict"])
        optimizer.load_state_dict(payload["extra"]["optimizer"])
        if done["complete"]:
            return float(done["test_accuracy"])
    step, total, per_epoch = done.get("step", start), schedule.total, schedule.per_epoch
    task = reporter.start(label, total=total - start, done=step - start)
    while step < total:
        epoch = step // per_epoch
        end = min((epoch + 1) * per_epoch, total)
        rng = np.random.default_rng([schedule.config.seed, *stream, epoch])
        cut = snapshot.step if snapshot is not None and step <= snapshot.step < end else None
        if cut is not None:
            _run(module, optimizer, splits, schedule, step, cut, rng, reporter, task)
            save_checkpoint(module, snapshot.folder)
            step = cut
        _run(module, optimizer, splits, schedule, step, end, rng, reporter, task)
        step = end
        save_checkpoint(module, folder, {"optimizer": optimizer.state_dict(), "step": step, **(extra or {})})
        write_json(folder / PROGRESS_FILE, {"step": step, "complete": False})
    reporter.finish(task)
    accuracy = evaluate(module, splits.test, splits)
    write_json(folder / PROGRESS_FILE, {"step": total, "complete": True, "test_accuracy": accuracy})
    return accuracy


def _run(module, optimizer, splits: Splits, schedule: Schedule, first: int, last: int, rng: np.random.Generator,
         reporter: Reporter, task: int) -> None:
    """Steps ``[first, last)`` of the schedule."""
    if last > first:
        train_steps(module, splits, optimizer, base_lr=schedule.config.lr, first_step=first, steps=last - first,
                    total_steps=schedule.total, batch_size=schedule.config.batch_size, rng=rng, reporter=reporter,
                    task=task)
