"""``hwadapt supermask``: masks that make an untrained network accurate.

Three kinds of method, all on the family's network at its initial weights:

* a **criterion** of the supermask paper (:mod:`hwadapt.lottery.criteria`) ranks the
  weights by their initial and trained values; each layer keeps the top ``1 - sparsity``,
  applied to the *initial* weights and evaluated without training. The trained values
  come from the dense level 0 of a ``hwadapt lottery`` run (``lottery``: same
  initialisation), or from a training run this command does itself (``final/``). The
  BN running statistics of an untrained network are placeholders (mean 0, variance 1)
  that the masked network's activations do not follow, so they are re-estimated on
  training batches first: forward passes only, no weight or mask changes.
* ``learned``: a learned supermask on the frozen initial weights (Bernoulli sampling,
  straight-through gradient; SGD on the scores at a large learning rate, 100 as in the
  paper's code; the classifier's weights rescaled to He's standard deviation,
  :func:`~hwadapt.lottery.scored.he_scaled`).
* ``edge-popup``: per-layer top-k scores on signed-constant weights (SGD 0.1, momentum
  0.9, weight decay 5e-4 on the scores, as the edge-popup code trains CIFAR networks).

Supermasks cover the classifier too (no weight is trained, so the mask alone shapes the
read-out). Writes ``report.json`` (method, sparsity, test_accuracy) and the masked
network (weights multiplied by the mask) as a checkpoint in ``masked/``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hwadapt.adapt.rundir import write_json
from hwadapt.data import Splits, batches, load_dataset
from hwadapt.errors import HwadaptError
from hwadapt.families import build
from hwadapt.lottery.criteria import CRITERIA, check_criterion, criterion_masks
from hwadapt.lottery.loop import Schedule, progress, train_from
from hwadapt.lottery.masks import Masks, apply_masks, prunable, sparsity
from hwadapt.lottery.rundir import open_run
from hwadapt.lottery.scored import ScoredNet, he_scaled, signed_constant
from hwadapt.materialize.torch_net import Net, load_checkpoint, save_checkpoint
from hwadapt.progress import QUIET, Reporter
from hwadapt.train import TrainConfig, evaluate, fit

RUN_FILE, REPORT_FILE = "supermask.json", "report.json"
TRAINED = ("learned", "edge-popup")
METHODS = (*TRAINED, *CRITERIA)
DEFAULT_LR = {"learned": 100.0, "edge-popup": 0.1}
DEFAULT_WEIGHT_DECAY = {"learned": 0.0, "edge-popup": 5e-4}
BN_BATCHES = 20  # training batches that re-estimate BN statistics for a criterion's mask


class SupermaskError(HwadaptError):
    """Supermask settings that cannot be run."""


@dataclass(frozen=True)
class SupermaskSettings:
    family: str
    data: str
    method: str
    width: float = 1.0
    resolution: int = 32
    sparsity: float = 0.5  # criteria and edge-popup: the fraction of each layer's weights removed
    epochs: int = 10  # learned / edge-popup: score training; criteria: the training giving the final weights
    lr: float | None = None  # None: the method's default (learned 100, edge-popup 0.1; criteria's training 0.05)
    batch_size: int = 128
    seed: int = 0
    train_images: int | None = None
    lottery: str | None = None  # a lottery run whose init/ and dense level 0 give the initial and final weights

    def __post_init__(self) -> None:
        if self.method not in TRAINED:
            check_criterion(self.method)
        if not 0.0 < self.sparsity < 1.0:
            raise SupermaskError(f"--sparsity must be in (0, 1), got {self.sparsity}")

    def config(self) -> TrainConfig:
        lr = self.lr if self.lr is not None else DEFAULT_LR.get(self.method, TrainConfig.lr)
        return TrainConfig(epochs=self.epochs, lr=lr, batch_size=self.batch_size,
                           weight_decay=DEFAULT_WEIGHT_DECAY.get(self.method, TrainConfig.weight_decay),
                           seed=self.seed)


@dataclass
class SupermaskReport:
    method: str
    sparsity: float  # of the masked weights (convolutions and classifier)
    test_accuracy: float
    chance: float  # 1 / classes
    details: dict[str, Any]
    settings: dict[str, Any]


def run_supermask(settings: SupermaskSettings, out: str | Path, *, device: torch.device | None = None,
                  reporter: Reporter = QUIET) -> SupermaskReport:
    """Run (or resume) one supermask method into ``out``; writes ``report.json``."""
    out, device = Path(out), device or torch.device("cpu")
    splits = load_dataset(settings.data, settings.resolution, seed=settings.seed)
    if settings.train_images:
        splits = replace(splits, train=splits.train.subset(settings.train_images, settings.seed))
    open_run(out, RUN_FILE, {**asdict(settings), "data": splits.source}, "supermask")
    init = initial_network(settings, splits, out).to(device)
    if settings.method in TRAINED:
        masked, details = train_scores(settings, splits, init, out, reporter)
    else:
        masked, details = criterion_network(settings, splits, init, final_network(settings, splits, out, device,
                                                                                  reporter))
    masks = {name: weight != 0 for name, weight in prunable(masked, classifier=True).items()}
    report = SupermaskReport(settings.method, sparsity(masks), evaluate(masked, splits.test, splits),
                             1.0 / splits.num_classes, details, asdict(settings))
    save_checkpoint(masked, out / "masked", {"masks": masks})
    write_json(out / REPORT_FILE, asdict(report))
    return report


def initial_network(settings: SupermaskSettings, splits: Splits, out: Path) -> Net:
    """The network at its initial weights: the lottery run's ``init/``, or seeded here
    (and saved to ``out/init``)."""
    if settings.lottery:
        net, _ = load_checkpoint(Path(settings.lottery) / "init")
        _check_same_network(net, settings, splits)
        return net
    torch.manual_seed(settings.seed)
    net = Net(build(settings.family, width=settings.width, resolution=settings.resolution,
                    num_classes=splits.num_classes))
    save_checkpoint(net, out / "init")
    return net


def _check_same_network(net: Net, settings: SupermaskSettings, splits: Splits) -> None:
    expected = build(settings.family, width=settings.width, resolution=settings.resolution,
                     num_classes=splits.num_classes)
    if net.arch.to_dict() != expected.to_dict():
        raise SupermaskError(f"{settings.lottery} holds a {net.arch.family} network other than --family "
                             f"{settings.family} --width {settings.width:g} --resolution {settings.resolution}")


def final_network(settings: SupermaskSettings, splits: Splits, out: Path, device: torch.device,
                  reporter: Reporter) -> Net:
    """The trained weights a criterion compares with the initial ones: the lottery run's
    dense level 0, or a training run of the initial network here (``out/final``)."""
    if settings.lottery:
        folder = Path(settings.lottery) / "level-00" / "ticket"
        if not progress(folder).get("complete"):
            raise SupermaskError(f"{folder} has not finished training: finish the lottery run first")
        net, _ = load_checkpoint(folder, device)
        return net
    net, _ = load_checkpoint(out / "init", device)
    fit(net, splits, settings.config(), out / "final", identity={"supermask_init": str(out / "init")},
        reporter=reporter)
    return net


def criterion_network(settings: SupermaskSettings, splits: Splits, init: Net, final: Net) -> tuple[Net, dict]:
    """The initial network masked by the criterion, its BN statistics re-estimated."""
    names = list(prunable(init, classifier=True))
    initial = {name: w.detach() for name, w in init.named_parameters() if name in names}
    trained = {name: w.detach() for name, w in final.named_parameters() if name in names}
    masks = criterion_masks(settings.method, initial, trained, settings.sparsity,
                            torch.Generator().manual_seed(settings.seed))
    apply_masks(init, masks)
    recalibrate_bn(init, splits, settings.batch_size, settings.seed)
    return init, {"bn": f"running statistics re-estimated on {BN_BATCHES} training batches",
                  "final_weights": settings.lottery or "final/"}


@torch.no_grad()
def recalibrate_bn(net: Net, splits: Splits, batch_size: int, seed: int) -> None:
    """Replace BN's running statistics by the averages over ``BN_BATCHES`` training
    batches (augmented as in training); weights untouched."""
    norms = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the batches below
    net.train()
    device = next(net.parameters()).device
    rng = np.random.default_rng([seed, 7])
    for i, (x, _) in enumerate(batches(splits.train, splits, batch_size, rng=rng, train=True)):
        if i == BN_BATCHES:
            break
        net(x.to(device))
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    net.eval()


def train_scores(settings: SupermaskSettings, splits: Splits, init: Net, out: Path,
                 reporter: Reporter) -> tuple[Net, dict]:
    """Learn the mask of a learned supermask or edge-popup on frozen weights (resumable)."""
    names = list(prunable(init, classifier=True))
    values = {name: w.detach() for name, w in init.named_parameters() if name in names}
    if settings.method == "edge-popup":
        module = ScoredNet(init, signed_constant(values), "top_k", keep=1.0 - settings.sparsity)
    else:
        readout = set(names) - set(prunable(init))  # the classifier's weight, at He's scale (see he_scaled)
        module = ScoredNet(init, {name: he_scaled(v) if name in readout else v for name, v in values.items()},
                           "bernoulli", eval_seed=settings.seed)
    config = settings.config()
    optimizer = torch.optim.SGD(module.scores.parameters(), lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay)
    schedule = Schedule.of(config, splits)
    train_from(module, optimizer, splits, schedule, out / "scores", start=0, stream=(0,),
               label=f"{settings.method} scores", reporter=reporter)
    masks: Masks = module.hard_masks()
    details = {"score_epochs": settings.epochs, "lr": config.lr, "weight_decay": config.weight_decay,
               "weights": "signed Kaiming constant" if settings.method == "edge-popup"
               else "initial (the classifier's rescaled to He's standard deviation)"}
    if settings.method == "learned":
        details["thresholded_accuracy"] = thresholded_accuracy(module, splits)
    return module.baked().eval(), {**details, "kept": int(sum(int(m.sum()) for m in masks.values()))}


@torch.no_grad()
def thresholded_accuracy(module: ScoredNet, splits: Splits) -> float:
    """The learned supermask's accuracy with the deterministic mask sigmoid(s) > 0.5
    instead of a Bernoulli sample."""
    saved = [score.detach().clone() for score in module.scores]
    for score in module.scores:
        score.copy_(torch.where(score > 0, torch.full_like(score, 1e4), torch.full_like(score, -1e4)))
    accuracy = evaluate(module, splits.test, splits)
    for score, value in zip(module.scores, saved):
        score.copy_(value)
    return accuracy
