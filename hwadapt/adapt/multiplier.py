"""The width-multiplier baseline as a method: the family's base network at the widest
uniform width multiplier whose predicted latency meets the budget, trained from scratch.

What every other method must beat: it uses the LUT only to choose the multiplier and
learns nothing about which layers matter.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from hwadapt.adapt.registry import AdaptJob, Method, MethodError, Outcome, register_method, setting
from hwadapt.arch.spec import Arch
from hwadapt.families import build
from hwadapt.lut.predictor import LatencyPredictor
from hwadapt.materialize.torch_net import Net
from hwadapt.train import TrainConfig, fit
from hwadapt.train.loop import SUMMARY_FILE

STEP = 0.005  # the multipliers tried, from the base's down


@dataclass(frozen=True)
class MultiplierSettings:
    epochs: int | None = setting(None, "Training epochs from scratch (default: the base network's own).")
    lr: float = setting(0.05, "Learning rate (SGD, cosine).")
    batch_size: int = setting(128, "Training batch size.")
    weight_decay: float = setting(1e-4, "Weight decay.")


def widest_within(family: str, top: float, budget_ms: float, like: Arch, predictor: LatencyPredictor) -> Arch:
    """The base network of ``family`` at the widest multiplier (steps of ``STEP`` below
    ``top``) that the predictor prices within ``budget_ms``."""
    steps = int(round(top / STEP))
    for k in range(steps, 0, -1):
        arch = build(family, width=k * STEP, resolution=like.resolution, num_classes=like.num_classes)
        if predictor.predict_ms(arch) <= budget_ms:
            return arch
    raise MethodError(f"no width multiplier of {family} meets {budget_ms:.4g} ms")


def base_epochs(job: AdaptJob) -> int:
    """How long the base network was trained (its checkpoint's train.json)."""
    summary = job.checkpoint / SUMMARY_FILE if job.checkpoint else None
    if summary is None or not summary.is_file():
        raise MethodError("the base checkpoint has no train.json to take its epochs from; give --epochs")
    return int(json.loads(summary.read_text())["identity"]["config"]["epochs"])


@register_method
class Multiplier(Method):
    name = "multiplier"
    description = "Width multiplier: the widest uniformly thinned base network within the budget, trained anew"
    Settings = MultiplierSettings

    def run(self, job: AdaptJob, settings: MultiplierSettings) -> Outcome:
        family, top = job.base.arch.family, float(job.base.arch.meta.get("width", 1.0))
        arch = widest_within(family, top, job.budget_ms, job.base.arch, job.predictor)
        epochs = settings.epochs or base_epochs(job)
        config = TrainConfig(epochs=epochs, lr=settings.lr, batch_size=settings.batch_size,
                             weight_decay=settings.weight_decay, seed=job.seed)
        folder = job.out / "train"
        fit(Net(arch).to(job.device), job.splits, config, folder, identity={"data": job.splits.source},
            reporter=job.reporter)
        return Outcome(folder, job.predictor.predict_ms(arch),
                       details={"multiplier": arch.meta.get("width"), "epochs": epochs})
