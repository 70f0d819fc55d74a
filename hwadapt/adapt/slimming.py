"""Network slimming (Liu et al., ICCV 2017), the pruning RMNet's authors apply after RM,
with its threshold chosen by the LUT.

1. **sparsity training**: an L1 on every channel's BN scale, one weight per channel
   (MorphNet's regulariser with a uniform cost: :mod:`hwadapt.adapt.shrink`, priced by
   :func:`~hwadapt.adapt.marginal.channels`);
2. **threshold**: one global threshold on the scales' magnitudes, the lowest at which the
   pruned network's *predicted* latency meets the budget; each group keeps its strongest
   channels, as many as pass the threshold rounded to a multiple of ``--granularity`` (at
   least 8). Unrounded widths are what network slimming keeps, but a table measured on
   multiples of 8 does not price them: on ONNX Runtime a MobileNetV1 cut to such widths
   ran 6x slower than the same network rounded to multiples of 8, which the table
   prices alike;
3. **fine-tuning** of the pruned network.

On a network RM has made plain (``hwadapt rm``) the carried channels are a group of their
own with their own scales, so they are masked and pruned like any other channel, and no
residual ties the widths together any more.
"""
from __future__ import annotations

import copy
from dataclasses import asdict, dataclass

import numpy as np

from hwadapt.adapt.gamma import ALIVE, keep_strongest, magnitudes
from hwadapt.adapt.marginal import UNITS, channels
from hwadapt.adapt.registry import AdaptJob, Member, Method, MethodError, Outcome, register_method, setting
from hwadapt.adapt.rundir import RunDir
from hwadapt.adapt.shrink import ShrinkPlan, shrink, shrink_png
from hwadapt.adapt.surgery import prune
from hwadapt.adapt.workflow import NARROWEST
from hwadapt.arch import Arch, set_widths
from hwadapt.lut.predictor import LatencyPredictor
from hwadapt.materialize.torch_net import Net, save_checkpoint
from hwadapt.train import TrainConfig, evaluate, fit
from hwadapt.train.loop import steps_per_epoch

PLOT_FILE = "regulariser.png"


@dataclass(frozen=True)
class SlimmingSettings:
    sparsity: float = setting(1e-4, "L1 coefficient on every |BN scale| (network slimming's lambda).")
    shrink_epochs: int = setting(10, "Sparsity-training epochs (with the L1 term).")
    shrink_lr: float = setting(0.05, "Sparsity-training learning rate (fixed).")
    refresh_steps: int = setting(200, "Steps between checkpoints (and points of the plot) of the sparsity training.")
    finetune_epochs: int = setting(10, "Fine-tuning epochs of the pruned network.")
    finetune_lr: float = setting(0.05, "Fine-tuning learning rate (SGD, cosine).")
    granularity: int = setting(8, "Each group keeps a multiple of this many channels (or all of them).")
    batch_size: int = setting(128, "Batch size.")
    weight_decay: float = setting(1e-4, "Weight decay (not on BN scales).")

    def __post_init__(self) -> None:
        if min(self.shrink_epochs, self.refresh_steps, self.finetune_epochs, self.granularity) < 1:
            raise MethodError("--shrink-epochs, --refresh-steps, --finetune-epochs and --granularity must be at "
                              "least 1")
        if self.sparsity < 0:
            raise MethodError("--sparsity must not be negative")


@dataclass(frozen=True)
class Cut:
    """A global threshold on the magnitudes and the widths it leaves."""

    threshold: float
    widths: dict[str, int]
    predicted_ms: float


def cut_widths(found: dict[str, np.ndarray], threshold: float, granularity: int,
               floor: int = NARROWEST) -> dict[str, int]:
    """Each group's channels above ``threshold``, to the nearest multiple of
    ``granularity``, at least ``floor`` and at most all of them."""
    return {name: min(len(values), max(floor, granularity * int((values > threshold).sum() / granularity + 0.5)))
            for name, values in found.items()}


def lut_threshold(arch: Arch, found: dict[str, np.ndarray], predictor: LatencyPredictor, budget_ms: float,
                  granularity: int) -> Cut:
    """The lowest of the magnitudes that, as a threshold, prunes ``arch`` to a predicted
    latency within ``budget_ms`` (by bisection: fewer channels, less latency). The
    largest magnitude leaves every group at its narrowest, which the workflow has checked
    meets the budget."""
    values = np.unique(np.concatenate(list(found.values())))

    def cut(index: int) -> Cut:
        widths = cut_widths(found, float(values[index]), granularity)
        return Cut(float(values[index]), widths, predictor.predict_ms(set_widths(arch, widths)))

    low, high = -1, len(values) - 1  # below every magnitude nothing is cut (over budget); at the top all is
    best = cut(high)
    while high - low > 1:
        middle = (low + high) // 2
        candidate = cut(middle)
        if candidate.predicted_ms <= budget_ms:
            high, best = middle, candidate
        else:
            low = middle
    return best


def _row(net: Net, job: AdaptJob, stage: str, holdout: float | None = None) -> dict:
    return {"stage": stage, "arch": net.arch.to_dict(), "predicted_ms": job.predictor.predict_ms(net.arch),
            "holdout_accuracy": holdout, "test_accuracy": evaluate(net, job.splits.test, job.splits)}


@register_method
class Slimming(Method):
    name = "slimming"
    description = "Network slimming: L1 on every BN scale, one global threshold chosen on the LUT, fine-tune"
    Settings = SlimmingSettings

    def check(self, base: Net, settings: SlimmingSettings) -> None:
        magnitudes(base, self.name)

    def run(self, job: AdaptJob, settings: SlimmingSettings) -> Outcome:
        s, run = settings, RunDir(job.out)
        state = run.open(job.identity)
        if state is None:
            state = {"identity": job.identity, "config": asdict(s), "base": _row(job.base, job, "base")}
            run.save(state)
        net = copy.deepcopy(job.base)
        steps = s.shrink_epochs * steps_per_epoch(job.splits, s.batch_size)
        plan = ShrinkPlan(self.name, channels, 1, s.sparsity, steps, s.refresh_steps, s.shrink_lr, s.batch_size,
                          s.weight_decay, ALIVE, NARROWEST)
        history = shrink(net, job, plan, job.out / "shrink", seed=job.seed)
        found = magnitudes(net, self.name)
        chosen = lut_threshold(net.arch, found, job.predictor, job.budget_ms, s.granularity)
        pruned = prune(net, keep_strongest(found, chosen.widths))
        save_checkpoint(pruned, job.out / "pruned")
        pruned_row = _row(pruned, job, "pruned")
        config = TrainConfig(epochs=s.finetune_epochs, lr=s.finetune_lr, batch_size=s.batch_size,
                             weight_decay=s.weight_decay, seed=job.seed)
        summary = fit(pruned, job.splits, config, run.final, identity={"from": "pruned"}, reporter=job.reporter)
        result = _row(pruned, job, "long-term", summary["holdout_accuracy"])
        shrink_png(job.out / PLOT_FILE, [history], UNITS["channels"], job.budget_ms,
                   f"{job.base.arch.family}: network slimming to {job.budget_ms:.3g} ms")
        return Outcome(run.final, result["predicted_ms"],
                       [Member(None, state["base"]), Member(job.out / "pruned", pruned_row)], result,
                       details={"threshold": chosen.threshold, "widths": chosen.widths, "plot": PLOT_FILE})
