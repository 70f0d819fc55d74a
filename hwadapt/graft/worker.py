"""One network of a grafting run: train an epoch, swap weights with the ring through an
:class:`~hwadapt.graft.exchange.Exchange`, graft, evaluate, save; resumable per epoch.

The algorithm knows nothing of processes: whatever runs the workers (a backend:
:mod:`hwadapt.graft.exchange`) gives each its rank, the plan and an exchange.

Each network keeps its last two finished epochs (``netR/epoch-NNN``, plain checkpoints
with the optimizer and history): the networks wait for each other at every swap, so one
is at most an epoch ahead of another, and a run resumes from the epoch all of them
finished (:func:`finished_epoch`).
"""
from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from hwadapt.adapt.rundir import write_json
from hwadapt.arch.spec import Arch
from hwadapt.data import Splits
from hwadapt.graft.rule import GraftSettings, State, conv_bn_pairs, graft
from hwadapt.materialize.torch_net import WEIGHTS_FILE, Net, read_weights, save_checkpoint
from hwadapt.train import TrainConfig, evaluate
from hwadapt.train.loop import make_optimizer, steps_per_epoch, train_steps

RESULT_FILE = "result.json"
Tell = Callable[[str, dict[str, Any]], None]  # a worker's progress: ("epoch", figures)


class Exchange(Protocol):
    """How the networks of a ring swap weights: network ``rank`` gives its state after
    ``epoch`` and gets the state of the network before it in the ring (rank - 1) after
    the same epoch. In memory: no file is written or polled."""

    def swap(self, rank: int, epoch: int, state: State) -> State: ...


@dataclass(frozen=True)
class GraftPlan:
    """What every worker of a set of networks is given (sent to its process, so plain data)."""

    arch: dict[str, Any]
    splits: Splits
    config: TrainConfig  # the set's: each network's learning rate and seed follow from its rank
    nets: int
    out: Path  # netR/ per network
    settings: GraftSettings = GraftSettings()
    graft: bool = True  # False: the same networks, trained independently
    difflr: bool = True  # network r's learning rate lr * (1 + cos(pi * (N - r - 1) / N)) / 2, as the authors'
    start: int = 0  # the finished epoch every network resumes from
    init: State | None = None  # weights every network starts from (a fine-tune); None: its own initialisation
    threads: int = 1  # torch threads per worker
    device: str = "cpu"


def network_config(plan: GraftPlan, rank: int) -> TrainConfig:
    """Network ``rank``'s training: its learning rate (spread over the ring with ``difflr``,
    the last network at the set's) and its own seed (its own batches)."""
    scale = (1 + math.cos(math.pi * (plan.nets - rank - 1) / plan.nets)) / 2 if plan.difflr else 1.0
    return replace(plan.config, lr=plan.config.lr * scale, seed=plan.config.seed + rank)


def epoch_dir(out: Path, rank: int, epoch: int) -> Path:
    return out / f"net{rank}" / f"epoch-{epoch:03d}"


def saved_epochs(out: Path, rank: int) -> list[int]:
    folder = out / f"net{rank}"
    found = folder.glob("epoch-*/" + WEIGHTS_FILE) if folder.is_dir() else []
    return sorted(int(path.parent.name.split("-")[1]) for path in found)


def finished_epoch(out: Path, nets: int) -> int:
    """The last epoch every network of the set finished (0: none)."""
    return min((max(saved_epochs(out, rank), default=0) for rank in range(nets)), default=0)


def run_worker(rank: int, plan: GraftPlan, exchange: Exchange, tell: Tell) -> dict[str, Any]:
    """Train network ``rank`` from ``plan.start`` to the last epoch, grafting after each but
    the last; returns its result (also in ``netR/result.json``)."""
    torch.set_num_threads(plan.threads)
    config = network_config(plan, rank)
    torch.manual_seed(config.seed)
    net = Net(Arch.from_dict(plan.arch))
    if plan.init is not None:
        net.load_state_dict(plan.init)
    net.to(plan.device)
    optimizer = make_optimizer(net, config)
    history: list[dict[str, Any]] = []
    if plan.start:
        payload = read_weights(epoch_dir(plan.out, rank, plan.start) / WEIGHTS_FILE)
        net.load_state_dict(payload["state_dict"])
        optimizer.load_state_dict(payload["extra"]["optimizer"])
        history = payload["extra"]["history"][:plan.start]
    pairs, splits = conv_bn_pairs(net), plan.splits
    per_epoch = steps_per_epoch(splits, config.batch_size)
    for epoch in range(plan.start, config.epochs):
        started = time.perf_counter()
        loss = train_steps(net, splits, optimizer, base_lr=config.lr, first_step=epoch * per_epoch, steps=per_epoch,
                           total_steps=per_epoch * config.epochs, batch_size=config.batch_size,
                           rng=np.random.default_rng([config.seed, epoch]))
        # the epoch's network is evaluated before it is grafted (as the authors test it):
        # right after a graft its batch norms still hold the statistics of its own weights
        holdout = evaluate(net, splits.holdout, splits)
        if plan.graft and epoch + 1 < config.epochs:  # the last epoch's network is the result, not grafted
            other = exchange.swap(rank, epoch, {k: v.detach().cpu().clone() for k, v in net.state_dict().items()})
            net.load_state_dict(graft(net.state_dict(), other, plan.settings, pairs))
        history.append({"epoch": epoch + 1, "loss": loss, "holdout_accuracy": holdout,
                        "seconds": time.perf_counter() - started})
        save_checkpoint(net, epoch_dir(plan.out, rank, epoch + 1), {"optimizer": optimizer.state_dict(),
                                                                     "history": history})
        shutil.rmtree(epoch_dir(plan.out, rank, epoch - 1), ignore_errors=True)  # keep the last two
        tell("epoch", {"epoch": epoch + 1, "holdout_accuracy": history[-1]["holdout_accuracy"]})
    result = {"rank": rank, "lr": config.lr, "history": history, "holdout_accuracy": history[-1]["holdout_accuracy"],
              "test_accuracy": evaluate(net, splits.test, splits),
              "checkpoint": str(epoch_dir(plan.out, rank, config.epochs))}
    write_json(plan.out / f"net{rank}" / RESULT_FILE, result)
    return result


def finished_results(out: Path, nets: int) -> list[dict[str, Any]] | None:
    """Every network's result when the whole set has finished (None otherwise)."""
    paths = [out / f"net{rank}" / RESULT_FILE for rank in range(nets)]
    return [json.loads(path.read_text()) for path in paths] if all(p.is_file() for p in paths) else None
