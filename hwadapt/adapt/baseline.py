"""The width-multiplier curve: the same family shrunk uniformly, each network trained from
scratch with the same number of epochs, measured on the same target (``hwadapt
baseline``: what a method's family is drawn against)."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch

from hwadapt.adapt.rundir import STATE_FILE
from hwadapt.data import Splits
from hwadapt.errors import HwadaptError
from hwadapt.families import build
from hwadapt.lut.predictor import LatencyPredictor
from hwadapt.materialize.torch_net import Net, load_checkpoint
from hwadapt.measure import Target, default_probe, noisy_note
from hwadapt.progress import QUIET, Reporter
from hwadapt.train import TrainConfig, fit
from hwadapt.train.loop import SUMMARY_FILE, steps_per_epoch

DEFAULT_BACKEND = "ort-cpu"  # where a curve without a LUT is measured (1 thread)


def parse_multipliers(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise HwadaptError(f"--multipliers must be comma-separated numbers, got {text!r}") from exc
    if not values or any(v <= 0 for v in values):
        raise HwadaptError(f"--multipliers must be positive, got {text!r}")
    return values


@dataclass
class Curve:
    family: str
    multipliers: list[float]
    splits: Splits
    config: TrainConfig
    out: Path
    predictor: LatencyPredictor | None = None  # None: measured on ONNX Runtime against the default probe
    reporter: Reporter = QUIET
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))  # where the networks train


def train_curve(curve: Curve) -> pd.DataFrame:
    """Train (or resume) one network per multiplier under ``out/x<m>``, measure them
    together, and write ``baseline.csv``; one row each."""
    rows, nets = [], []
    for multiplier in curve.multipliers:
        arch = build(curve.family, width=multiplier, resolution=curve.splits.resolution,
                     num_classes=curve.splits.num_classes)
        folder = curve.out / f"x{multiplier:g}"
        net = Net(arch).to(curve.device)
        summary = fit(net, curve.splits, curve.config, folder, identity={"data": curve.splits.source},
                      reporter=curve.reporter)
        nets.append(load_checkpoint(folder)[0])
        rows.append({"multiplier": multiplier, "epochs": curve.config.epochs,
                     "arch": json.dumps(arch.to_dict(), separators=(",", ":")),
                     "holdout_accuracy": summary["holdout_accuracy"], "test_accuracy": summary["test_accuracy"],
                     "predicted_ms": curve.predictor.predict_ms(arch) if curve.predictor else math.nan})
    curve.reporter.note("measuring the width multipliers end to end ...")
    figures = curve_target(curve).measure([n.arch for n in nets], nets)
    note = noisy_note(figures)
    if note:
        curve.reporter.note(note)
    frame = pd.DataFrame([{**row, "measured_ms": f.ms, "measured_spread_pct": f.spread_pct}
                          for row, f in zip(rows, figures)])
    frame.to_csv(curve.out / "baseline.csv", index=False)
    return frame


def curve_target(curve: Curve) -> Target:
    """Where the curve is measured: the LUT's target, or this host's ONNX Runtime (1 thread)."""
    if curve.predictor is not None:
        return curve.predictor.target
    probe = default_probe(curve.splits.resolution)
    return Target(DEFAULT_BACKEND, {"backend": DEFAULT_BACKEND, "threads": 1}, probe.arch.to_dict(), None, force=True)


def matched_epochs(adapt_dir: Path, checkpoint_dir: Path, splits: Splits, batch_size: int) -> int:
    """Epochs that give a baseline network the training a NetAdapt result had: pretraining,
    the short-term fine-tunes on its path, and the long-term fine-tune."""
    state = json.loads((adapt_dir / STATE_FILE).read_text())
    pretrain = json.loads((checkpoint_dir / SUMMARY_FILE).read_text())["identity"]["config"]["epochs"]
    config = state["config"]
    short = config["short_steps"] * (len(state["rows"]) - 1) / steps_per_epoch(splits, batch_size)
    return int(pretrain + config["long_epochs"] + math.ceil(short))

