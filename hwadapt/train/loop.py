"""SGD + cosine learning rate + CIFAR augmentation; per-epoch checkpoints for resuming.

The epoch's shuffle and augmentation come from ``default_rng([seed, epoch])``, so a run
resumed after epoch k sees exactly the batches the uninterrupted run would have seen.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from hwadapt.data import ImageSet, Splits, batches
from hwadapt.errors import HwadaptError
from hwadapt.materialize.torch_net import WEIGHTS_FILE, Net, read_weights, save_checkpoint
from hwadapt.progress import QUIET, Reporter
from hwadapt.train.device import autocast, device_of, on_device

SUMMARY_FILE = "train.json"


class TrainError(HwadaptError):
    """A training run that cannot start or resume."""


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 10
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 1e-4
    batch_size: int = 128
    seed: int = 0


def make_optimizer(net: nn.Module, config: TrainConfig, lr: float | None = None) -> torch.optim.SGD:
    """SGD with Nesterov momentum; no weight decay on BN scales and biases."""
    decay = [p for p in net.parameters() if p.ndim > 1]
    no_decay = [p for p in net.parameters() if p.ndim <= 1]
    return torch.optim.SGD([{"params": decay, "weight_decay": config.weight_decay},
                            {"params": no_decay, "weight_decay": 0.0}],
                           lr=config.lr if lr is None else lr, momentum=config.momentum, nesterov=True)


def cosine(base_lr: float, step: int, total: int) -> float:
    """The rate at ``step`` of a cosine decay over ``total`` steps; ``total`` 0: constant."""
    if total <= 0:
        return base_lr
    return 0.5 * base_lr * (1.0 + math.cos(math.pi * min(step, total) / total))


class StepHook:
    """What a method adds to every training step of :func:`train_steps`: a term added to
    the loss (a regulariser on BN scales) and a look at the gradients before the
    optimizer steps (an importance estimate). Both do nothing here."""

    def penalty(self) -> torch.Tensor | None:
        return None

    def after_backward(self) -> None:
        return None


@torch.no_grad()
def evaluate(net: nn.Module, data: ImageSet, splits: Splits, batch_size: int = 500) -> float:
    """Top-1 accuracy of ``net`` on ``data`` (on the network's device)."""
    net.eval()
    device = device_of(net)
    correct = torch.zeros((), dtype=torch.long, device=device)
    for x, y in on_device(batches(data, splits, batch_size), device):
        with autocast(device):
            correct += (net(x).argmax(dim=1) == y).sum()
    return int(correct) / max(len(data), 1)


def train_steps(net: nn.Module, splits: Splits, optimizer: torch.optim.Optimizer, *, base_lr: float,
                first_step: int, steps: int, total_steps: int, batch_size: int, rng: np.random.Generator,
                reporter: Reporter = QUIET, task: int = 0, hook: StepHook | None = None) -> float:
    """``steps`` SGD steps over shuffled, augmented training batches (on the network's
    device), the rate a cosine over ``total_steps`` (0: constant); returns the mean
    cross-entropy (without the ``hook``'s penalty)."""
    net.train()
    loss_fn = nn.CrossEntropyLoss()
    device = device_of(net)
    done, total_loss = 0, 0.0
    while done < steps:
        for x, y in on_device(batches(splits.train, splits, batch_size, rng=rng, train=True), device):
            for group in optimizer.param_groups:
                group["lr"] = cosine(base_lr, first_step + done, total_steps)
            with autocast(device):
                loss = loss_fn(net(x), y)
            penalty = hook.penalty() if hook is not None else None
            optimizer.zero_grad(set_to_none=True)
            (loss if penalty is None else loss + penalty).backward()
            if hook is not None:
                hook.after_backward()
            optimizer.step()
            total_loss += float(loss.detach())
            done += 1
            reporter.advance(task, 1, f"loss {total_loss / done:.3f}")
            if done == steps:
                break
    return total_loss / max(done, 1)


def steps_per_epoch(splits: Splits, batch_size: int) -> int:
    return math.ceil(len(splits.train) / batch_size)


def finetune(net: nn.Module, splits: Splits, steps: int, *, lr: float, config: TrainConfig,
             seed: int, reporter: Reporter = QUIET, task: int = 0) -> float:
    """A short fine-tune (NetAdapt's short- and long-term fine-tuning): ``steps`` steps, cosine
    from ``lr``, fresh momentum."""
    if steps <= 0:
        return float("nan")
    optimizer = make_optimizer(net, config, lr)
    return train_steps(net, splits, optimizer, base_lr=lr, first_step=0, steps=steps, total_steps=steps,
                       batch_size=config.batch_size, rng=np.random.default_rng(seed), reporter=reporter, task=task)


def _resume_state(out: Path, identity: dict) -> dict:
    """The saved payload in ``out`` (state_dict and extra) if it belongs to this run ({}
    before its first epoch); an error if it belongs to another."""
    summary = out / SUMMARY_FILE
    if not summary.is_file():
        if out.exists() and any(out.iterdir()):
            raise TrainError(f"{out} exists and is not a training run; choose another --out")
        return {}
    recorded = json.loads(summary.read_text())
    if recorded.get("identity") != identity:
        raise TrainError(f"{out} holds a different training run ({recorded.get('identity')}); "
                         "choose another --out")
    if not (out / WEIGHTS_FILE).is_file():
        return {}
    return read_weights(out / WEIGHTS_FILE)


def fit(net: Net, splits: Splits, config: TrainConfig, out: str | Path, *, identity: dict | None = None,
        reporter: Reporter = QUIET) -> dict:
    """Train ``net`` for ``config.epochs`` epochs, checkpointing to ``out`` after each one.

    Re-running with the same arguments resumes after the last finished epoch (or returns at
    once when training is complete): the saved state is loaded into ``net`` itself, so a
    network carrying more than its architecture's parameters (a stripe-wise pruning
    skeleton) resumes too. Returns the summary written to ``out/train.json``.
    """
    if config.epochs < 1:
        raise TrainError(f"epochs must be at least 1, got {config.epochs}")
    out = Path(out)
    identity = {"arch": net.arch.to_dict(), "config": asdict(config), **(identity or {})}
    resumed = _resume_state(out, identity)
    extra = resumed.get("extra", {})
    optimizer = make_optimizer(net, config)
    if resumed:
        net.load_state_dict(resumed["state_dict"])
        optimizer.load_state_dict(extra["optimizer"])
    history: list[dict] = list(extra.get("history", []))
    per_epoch = steps_per_epoch(splits, config.batch_size)
    total = per_epoch * config.epochs
    out.mkdir(parents=True, exist_ok=True)
    if not resumed:
        _write_summary(out, identity, history, complete=False)  # claims the directory before any weights
    task = reporter.start("train", total=total, done=len(history) * per_epoch)
    for epoch in range(len(history), config.epochs):
        started = time.perf_counter()
        loss = train_steps(net, splits, optimizer, base_lr=config.lr, first_step=epoch * per_epoch,
                           steps=per_epoch, total_steps=total, batch_size=config.batch_size,
                           rng=np.random.default_rng([config.seed, epoch]), reporter=reporter, task=task)
        history.append({"epoch": epoch + 1, "loss": loss, "holdout_accuracy": evaluate(net, splits.holdout, splits),
                        "seconds": time.perf_counter() - started})
        reporter.update(task, status=f"epoch {epoch + 1} holdout {history[-1]['holdout_accuracy']:.3f}")
        save_checkpoint(net, out, {"optimizer": optimizer.state_dict(), "history": history})
        _write_summary(out, identity, history, complete=False)
    reporter.finish(task)
    summary = _write_summary(out, identity, history, complete=True,
                             test_accuracy=evaluate(net, splits.test, splits))
    return summary


def _write_summary(out: Path, identity: dict, history: list[dict], *, complete: bool, **extra) -> dict:
    summary = {"identity": identity, "complete": complete, "history": history,
               "holdout_accuracy": history[-1]["holdout_accuracy"] if history else None, **extra}
    tmp = out / (SUMMARY_FILE + ".tmp")
    tmp.write_text(json.dumps(summary, indent=2) + "\n")
    tmp.replace(out / SUMMARY_FILE)
    return summary
