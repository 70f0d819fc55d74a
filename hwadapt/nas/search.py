"""The architecture search: alternate weight steps (train split, SGD, one sampled path)
and architecture steps (holdout split, Adam with beta1=0, two sampled paths, latency loss).

The schedule follows the paper's code: no architecture updates during the warm-up
epochs, then one architecture step every ``arch_every`` weight steps. The latency loss
is the ``target`` form by default (:mod:`hwadapt.nas.constraint`: the search itself lands
its argmax on the target), or one of the paper's ``mul`` / ``add`` forms. The state after
every epoch (weights, logits, both optimisers, the constraint's multiplier, history) is
checkpointed with CPU tensors, so a search resumes on any device; a re-run with the same
settings resumes after the last finished epoch and sees the same batches and path
samples it would have seen uninterrupted (paths are drawn on the CPU).
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
from hwadapt.nas.constraint import LatencyConstraint
from hwadapt.nas.latency import LOSS_FORMS, LatencyTable, SearchError, latency_loss
from hwadapt.nas.supernet import SuperNet
from hwadapt.progress import QUIET, Reporter
from hwadapt.train.device import autocast, cpu_copy, device_of, on_device
from hwadapt.train.loop import TrainConfig, cosine, evaluate, make_optimizer, steps_per_epoch

STATE_FILE, SUMMARY_FILE = "supernet.pt", "search.json"
BN_BATCHES = 10


@dataclass(frozen=True)
class SearchConfig:
    """Search settings. The ImageNet defaults of the paper are arch_lr 1e-3 and one
    architecture step every 5 batches over 120 epochs (:data:`PAPER_SCHEDULE`); searches
    on a CPU are a few epochs, so the logits move faster by default."""

    target_ms: float
    epochs: int = 10
    warmup_epochs: int = 2
    batch_size: int = 64
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 4e-5
    arch_lr: float = 2e-2
    arch_every: int = 2
    loss_form: str = "target"
    alpha: float = 0.2  # mul form
    beta: float = 0.3  # mul form
    lam: float = 0.1  # add form
    penalty: float = 100.0  # target form: weight of the squared relative error
    dual_gain: float = 10.0  # target form: multiplier step, in units of arch_lr
    final_temperature: float = 0.1  # target form: sharpness of E_tau at the last step
    seed: int = 0

    def __post_init__(self) -> None:
        if self.loss_form not in LOSS_FORMS:
            raise SearchError(f"unknown latency loss form {self.loss_form!r}; expected one of {', '.join(LOSS_FORMS)}")
        if not 0 < self.final_temperature <= 1:
            raise SearchError(f"final temperature must be in (0, 1], got {self.final_temperature}")

    def train_config(self) -> TrainConfig:
        return TrainConfig(epochs=self.epochs, lr=self.lr, momentum=self.momentum,
                           weight_decay=self.weight_decay, batch_size=self.batch_size, seed=self.seed)

    def constraint(self) -> LatencyConstraint:
        return LatencyConstraint(self.target_ms, self.penalty, self.dual_gain, self.final_temperature)


# The paper's search schedule (its code's defaults; epochs and warm-up are the caller's).
PAPER_SCHEDULE = {"arch_lr": 1e-3, "arch_every": 5, "lr": 0.05, "weight_decay": 4e-5}


def _endless(splits: Splits, batch_size: int, seed: int, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Shuffled holdout batches, reshuffled each pass."""
    rng = np.random.default_rng([seed, epoch, 1])
    while True:
        yield from batches(splits.holdout, splits, batch_size, rng=rng, train=True)


class Searcher:
    """One search run: the supernet (on its device), its two optimisers, the latency
    constraint and the per-epoch history."""

    def __init__(self, net: SuperNet, table: LatencyTable, splits: Splits, config: SearchConfig) -> None:
        self.net, self.table, self.splits, self.config = net, table, splits, config
        self.weights = make_optimizer(nn.ModuleList([net.blocks, net.fc]), config.train_config())
        self.arch = torch.optim.Adam(net.arch_parameters(), lr=config.arch_lr, betas=(0.0, 0.999), eps=1e-8)
        self.constraint = config.constraint()
        self.history: list[dict] = []
        self.loss_fn = nn.CrossEntropyLoss()

    @property
    def device(self) -> torch.device:
        return device_of(self.net)

    # -- steps -------------------------------------------------------------------
    def weight_step(self, x: torch.Tensor, y: torch.Tensor, lr: float, generator: torch.Generator) -> float:
        for group in self.weights.param_groups:
            group["lr"] = lr
        self.net.sample_one(generator)
        with autocast(self.device):
            loss = self.loss_fn(self.net(x), y)
        self.weights.zero_grad(set_to_none=True)
        loss.backward()
        self.weights.step()
        return float(loss.detach())

    def arch_step(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator,
                  progress: float = 1.0) -> dict[str, float]:
        """One architecture update at ``progress`` through the search phase (0 to 1);
        returns its loss, the expected latency and the sharpened one it constrains."""
        self.net.sample_two(generator)
        with autocast(self.device):
            ce = self.loss_fn(self.net(x), y)
        expected = self.table.expected(self.net.probabilities())
        c = self.config
        if c.loss_form == "target":
            sharpened = self.table.expected(self.net.probabilities(self.constraint.temperature(progress)))
            loss = self.constraint.loss(ce, sharpened)
        else:
            sharpened = expected
            loss = latency_loss(ce, expected, c.target_ms, form=c.loss_form, alpha=c.alpha, beta=c.beta, lam=c.lam)
        self.arch.zero_grad(set_to_none=True)
        self.weights.zero_grad(set_to_none=True)
        loss.backward()
        self.net.accumulate_alpha_grads()
        self.arch.step()
        self.net.rescale()
        if c.loss_form == "target":
            self.constraint.update(float(sharpened.detach()), c.arch_lr)
        return {"loss": float(loss.detach()), "expected_ms": float(expected.detach()),
                "sharpened_ms": float(sharpened.detach())}

    def progress(self, epoch: int, step: int, per_epoch: int) -> float:
        """How far through the search phase (after the warm-up) step ``step`` of ``epoch`` is."""
        c = self.config
        return (epoch - c.warmup_epochs + step / per_epoch) / max(c.epochs - c.warmup_epochs, 1)

    # -- epochs ------------------------------------------------------------------
    def run_epoch(self, epoch: int, reporter: Reporter = QUIET, task: int = 0) -> dict:
        c = self.config
        self.net.train()
        per_epoch = steps_per_epoch(self.splits, c.batch_size)
        generator = torch.Generator().manual_seed(c.seed * 100_003 + epoch)
        rng = np.random.default_rng([c.seed, epoch])
        holdout = _endless(self.splits, c.batch_size, c.seed, epoch)
        weight_losses, arch_steps = [], []
        train = on_device(batches(self.splits.train, self.splits, c.batch_size, rng=rng, train=True), self.device)
        for step, (x, y) in enumerate(train):
            lr = cosine(c.lr, epoch * per_epoch + step, c.epochs * per_epoch)
            weight_losses.append(self.weight_step(x, y, lr, generator))
            if epoch >= c.warmup_epochs and step % c.arch_every == 0:
                hx, hy = next(holdout)
                arch_steps.append(self.arch_step(hx.to(self.device), hy.to(self.device), generator,
                                                 self.progress(epoch, step, per_epoch)))
            reporter.advance(task, 1, self._status(epoch, weight_losses, arch_steps))
        return self._epoch_record(epoch, weight_losses, arch_steps)

    def _status(self, epoch: int, losses: list[float], arch_steps: list[dict]) -> str:
        phase = "warm-up" if epoch < self.config.warmup_epochs else "search"
        latency = f" E(lat) {arch_steps[-1]['expected_ms']:.3f} ms" if arch_steps else ""
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
        train = batches(self.splits.train, self.splits, self.config.batch_size, rng=rng, train=True)
        for step, (x, _) in enumerate(on_device(train, self.device)):
            if step == BN_BATCHES:
                break
            with autocast(self.device):
                self.net(x)
        for norm in norms:
            norm.momentum = 0.1

    def _epoch_record(self, epoch: int, weight_losses: list[float], arch_steps: list[dict]) -> dict:
        """The epoch's figures. ``expected_ms`` is E[latency] at its end and
        ``expected_ms_range`` its lowest and highest over the epoch's architecture steps and
        its end;
        ``sharpened_ms`` the latency the ``target`` form constrains (at the epoch's last
        temperature), ``argmax_predicted_ms`` the network the search would derive now."""
        choices = self.net.argmax()
        self.net.use(choices)
        self.recalibrate_bn(epoch)
        c, per_epoch = self.config, steps_per_epoch(self.splits, self.config.batch_size)
        temperature = self.constraint.temperature(self.progress(epoch, per_epoch - 1, per_epoch))
        end_ms = float(self.table.expected(self.net.probabilities()).detach())
        expected = [s["expected_ms"] for s in arch_steps] + [end_ms]
        return {
            "epoch": epoch + 1,
            "weight_loss": float(np.mean(weight_losses)),
            "arch_loss": float(np.mean([s["loss"] for s in arch_steps])) if arch_steps else None,
            "arch_steps": len(arch_steps),
            "expected_ms": end_ms,
            "expected_ms_range": [min(expected), max(expected)] if arch_steps else None,
            "sharpened_ms": (float(self.table.expected(self.net.probabilities(temperature)).detach())
                             if c.loss_form == "target" and arch_steps else None),
            "temperature": temperature if c.loss_form == "target" and arch_steps else None,
            "multiplier": self.constraint.multiplier if c.loss_form == "target" else None,
            "target_ms": c.target_ms,
            "argmax_predicted_ms": self.table.of(choices),
            "argmax": [self.net.choices[k][i] for k, i in enumerate(choices)],
            "argmax_holdout_accuracy": evaluate(self.net, self.splits.holdout, self.splits),
        }

    # -- checkpoints (CPU tensors: a search resumes on any device) ----------------
    def state(self) -> dict:
        return cpu_copy({"net": self.net.state_dict(), "weights": self.weights.state_dict(),
                         "arch": self.arch.state_dict(), "multiplier": self.constraint.multiplier,
                         "history": self.history})

    def load(self, state: dict) -> None:
        self.net.load_state_dict(state["net"])
        self.weights.load_state_dict(state["weights"])
        self.arch.load_state_dict(state["arch"])
        self.constraint.multiplier = float(state["multiplier"])
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
