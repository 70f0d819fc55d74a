"""The architecture search: alternate weight steps (train split, SGD, one sampled path)
and architecture steps (holdout split, Adam with beta1=0, two sampled paths, latency loss).

The schedule follows the paper's code: no architecture updates during the warm-up
epochs, then one architecture step every ``arch_every`` weight steps. The state after
every epoch (weights, logits, both optimisers, history) is checkpointed; a re-run with
the same settings resumes after the last finished epoch and sees the same batches and
path samples it would have seen uninterrupted.
"""
from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from hwadapt.data import Splits, batches
from hwadapt.nas.latency import LatencyTable, SearchError, latency_loss
from hwadapt.nas.supernet import SuperNet
from hwadapt.progress import QUIET, Reporter
from hwadapt.train.loop import TrainConfig, cosine, evaluate, make_optimizer, steps_per_epoch

STATE_FILE, SUMMARY_FILE = "supernet.pt", "search.json"
BN_BATCHES = 10


@dataclass(frozen=True)
class SearchConfig:
    """Search settings. The ImageNet defaults of the paper are arch_lr 1e-3 and one
    architecture step every 5 batches over 120 epochs; searches here are a few epochs,
    so the logits move faster by default."""

    target_ms: float
    epochs: int = 10
    warmup_epochs: int = 2
    batch_size: int = 64
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 4e-5
    arch_lr: float = 6e-3
    arch_every: int = 2
    loss_form: str = "mul"
    alpha: float = 0.2
    beta: float = 0.3
    lam: float = 0.1
    seed: int = 0

    def train_config(self) -> TrainConfig:
        return TrainConfig(epochs=self.epochs, lr=self.lr, momentum=self.momentum,
                           weight_decay=self.weight_decay, batch_size=self.batch_size, seed=self.seed)


def _endless(splits: Splits, batch_size: int, seed: int, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Shuffled holdout batches, reshuffled each pass."""
    rng = np.random.default_rng([seed, epoch, 1])
    while True:
        yield from batches(splits.holdout, splits, batch_size, rng=rng, train=True)


class Searcher:
    """One search run: the supernet, its two optimisers and the per-epoch history."""

    def __init__(self, net: SuperNet, table: LatencyTable, splits: Splits, config: SearchConfig) -> None:
        self.net, self.table, self.splits, self.config = net, table, splits, config
        self.weights = make_optimizer(nn.ModuleList([net.blocks, net.fc]), config.train_config())
        self.arch = torch.optim.Adam(net.arch_parameters(), lr=config.arch_lr, betas=(0.0, 0.999), eps=1e-8)
        self.history: list[dict] = []
        self.loss_fn = nn.CrossEntropyLoss()

    # -- steps -------------------------------------------------------------------
    def weight_step(self, x: torch.Tensor, y: torch.Tensor, lr: float, generator: torch.Generator) -> float:
        for group in self.weights.param_groups:
            group["lr"] = lr
        self.net.sample_one(generator)
        loss = self.loss_fn(self.net(x), y)
        self.weights.zero_grad(set_to_none=True)
        loss.backward()
        self.weights.step()
        return float(loss.detach())

    def arch_step(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> tuple[float, float]:
        """One architecture update; returns (loss, expected latency in ms)."""
        self.net.sample_two(generator)
        ce = self.loss_fn(self.net(x), y)
        expected = self.table.expected(self.net.probabilities())
        c = self.config
        loss = latency_loss(ce, expected, c.target_ms, form=c.loss_form, alpha=c.alpha, beta=c.beta, lam=c.lam)
        self.arch.zero_grad(set_to_none=True)
        self.weights.zero_grad(set_to_none=True)
        loss.backward()
        self.net.accumulate_alpha_grads()
        self.arch.step()
        self.net.rescale()
        return float(loss.detach()), float(expected.detach())

    # -- epochs ------------------------------------------------------------------
    def run_epoch(self, epoch: int, reporter: Reporter = QUIET, task: int = 0) -> dict:
        c = self.config
        self.net.train()
        per_epoch = steps_per_epoch(self.splits, c.batch_size)
        generator = torch.Generator().manual_seed(c.seed * 100_003 + epoch)
        rng = np.random.default_rng([c.seed, epoch])
        holdout = _endless(self.splits, c.batch_size, c.seed, epoch)
        weight_losses, arch_losses, expected = [], [], []
        for step, (x, y) in enumerate(batches(self.splits.train, self.splits, c.batch_size, rng=rng, train=True)):
            lr = cosine(c.lr, epoch * per_epoch + step, c.epochs * per_epoch)
            weight_losses.append(self.weight_step(x, y, lr, generator))
            if epoch >= c.warmup_epochs and step % c.arch_every == 0:
                loss, ms = self.arch_step(*next(holdout), generator)
                arch_losses.append(loss)
                expected.append(ms)
            reporter.advance(task, 1, self._status(epoch, weight_losses, expected))
        return self._epoch_record(epoch, weight_losses, arch_losses, expected)

    def _status(self, epoch: int, losses: list[float], expected: list[float]) -> str:
        phase = "warm-up" if epoch < self.config.warmup_epochs else "search"
        latency = f" E(lat) {expected[-1]:.3f} ms" if expected else ""
        return f"epoch {epoch + 1} {phase} loss {np.mean(losses):.3f}{latency}"

    @torch.no_grad()
    def recalibrate_bn(self, epoch: int) -> None:
        """Re-estimate the BN statistics of the path now in use. The shared layers' running
        statistics average over every sampled path, so evaluating one path with them
        measures the mismatch rather than the path (the paper's code validates with batch
        statistics for the same reason)."""
        norms = [m for m in self.net.path_modules() if isinstance(m, nn.BatchNorm2d)]
        for norm in norms:
            norm.reset_running_stats()
            norm.momentum = None  # cumulative average over the batches below
        self.net.train()
        rng = np.random.default_rng([self.config.seed, epoch, 2])
        for step, (x, _) in enumerate(batches(self.splits.train, self.splits, self.config.batch_size, rng=rng,
                                              train=True)):
            if step == BN_BATCHES:
                break
            self.net(x)
        for norm in norms:
            norm.momentum = 0.1

    def _epoch_record(self, epoch: int, weight_losses, arch_losses, expected) -> dict:
        choices = self.net.argmax()
        self.net.use(choices)
        self.recalibrate_bn(epoch)
        return {
            "epoch": epoch + 1,
            "weight_loss": float(np.mean(weight_losses)),
            "arch_loss": float(np.mean(arch_losses)) if arch_losses else None,
            "expected_ms": float(self.table.expected(self.net.probabilities()).detach()),
            "argmax_predicted_ms": self.table.of(choices),
            "argmax": [self.net.choices[k][i] for k, i in enumerate(choices)],
            "argmax_holdout_accuracy": evaluate(self.net, self.splits.holdout, self.splits),
        }

    # -- checkpoints -------------------------------------------------------------
    def state(self) -> dict:
        return {"net": self.net.state_dict(), "weights": self.weights.state_dict(),
                "arch": self.arch.state_dict(), "history": self.history}

    def load(self, state: dict) -> None:
        self.net.load_state_dict(state["net"])
        self.weights.load_state_dict(state["weights"])
        self.arch.load_state_dict(state["arch"])
        self.history = list(state["history"])


def search(net: SuperNet, table: LatencyTable, splits: Splits, config: SearchConfig, out: str | Path, *,
           identity: dict | None = None, reporter: Reporter = QUIET) -> dict:
    """Run (or resume) the search into ``out``; returns the summary written to ``out/search.json``."""
    out = Path(out)
    identity = json.loads(json.dumps({"config": asdict(config), **(identity or {})}))
    searcher = Searcher(net, table, splits, config)
    _resume(searcher, out, identity)
    out.mkdir(parents=True, exist_ok=True)
    per_epoch = steps_per_epoch(splits, config.batch_size)
    task = reporter.start("search", total=per_epoch * config.epochs, done=per_epoch * len(searcher.history))
    for epoch in range(len(searcher.history), config.epochs):
        started = time.perf_counter()
        record = searcher.run_epoch(epoch, reporter, task)
        searcher.history.append({**record, "seconds": time.perf_counter() - started})
        tmp = out / (STATE_FILE + ".tmp")
        torch.save(searcher.state(), tmp)
        tmp.replace(out / STATE_FILE)
        _write_summary(out, identity, searcher, complete=epoch + 1 == config.epochs)
    reporter.finish(task)
    return _write_summary(out, identity, searcher, complete=True)


def _resume(searcher: Searcher, out: Path, identity: dict) -> None:
    summary = out / SUMMARY_FILE
    if not summary.is_file():
        if out.exists() and any(out.iterdir()):
            raise SearchError(f"{out} exists and holds no search; choose another --out")
        return
    recorded = json.loads(summary.read_text())
    if recorded.get("identity") != identity:
        raise SearchError(f"{out} holds a search with other settings; choose another --out "
                          "(or re-run with the settings it was started with)")
    if (out / STATE_FILE).is_file():
        searcher.load(torch.load(out / STATE_FILE, map_location="cpu", weights_only=True))


def _write_summary(out: Path, identity: dict, searcher: Searcher, *, complete: bool) -> dict:
    probabilities = [[round(float(p), 4) for p in probs.detach()] for probs in searcher.net.probabilities()]
    summary = {"identity": identity, "complete": complete, "history": searcher.history,
               "choices": searcher.net.choices, "probabilities": probabilities}
    tmp = out / (SUMMARY_FILE + ".tmp")
    tmp.write_text(json.dumps(summary, indent=2) + "\n")
    tmp.replace(out / SUMMARY_FILE)
    return summary
