"""The width-multiplier baseline: the same family shrunk uniformly, each trained from scratch
with the same number of epochs, measured on the same target."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
from rich.progress import Progress

from hwadapt.adapt.family import measure_rows
from hwadapt.adapt.rundir import STATE_FILE
from hwadapt.arch import Arch, build
from hwadapt.data import Splits
from hwadapt.errors import HwadaptError
from hwadapt.materialize.torch_net import Net
from hwadapt.train import TrainConfig, fit
from hwadapt.train.loop import SUMMARY_FILE, steps_per_epoch


def parse_multipliers(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise HwadaptError(f"--multipliers must be comma-separated numbers, got {text!r}") from exc
    if not values or any(v <= 0 for v in values):
        raise HwadaptError(f"--multipliers must be positive, got {text!r}")
    return values


def train_multipliers(family: str, multipliers: list[float], splits: Splits, config: TrainConfig, out: Path,
                      progress: Progress | None = None) -> list[dict]:
    """Train (or resume) one network per multiplier under ``out/x<m>``; one row each."""
    rows = []
    for multiplier in multipliers:
        arch = build(family, width=multiplier, resolution=splits.resolution, num_classes=splits.num_classes)
        folder = out / f"x{multiplier:g}"
        net = Net(arch)
        summary = fit(net, splits, config, folder, identity={"data": splits.source}, progress=progress)
        rows.append({"multiplier": multiplier, "epochs": config.epochs, "arch": arch.to_dict(),
                     "holdout_accuracy": summary["holdout_accuracy"],
                     "test_accuracy": summary["test_accuracy"],
                     "folder": folder})
    return rows


def measure_baseline(rows: list[dict], predictor=None) -> pd.DataFrame:
    """Predicted (with a LUT) and measured latency of each baseline network."""
    for row in rows:
        row["predicted_ms"] = predictor.predict_ms(Arch.from_dict(row["arch"])) if predictor else float("nan")
    measure_rows(rows, [row["folder"] for row in rows], predictor)
    frame = pd.DataFrame(rows).drop(columns=["folder"])
    frame["arch"] = [json.dumps(a, separators=(",", ":")) for a in frame["arch"]]
    return frame


def matched_epochs(adapt_dir: Path, checkpoint_dir: Path, splits: Splits, batch_size: int) -> int:
    """Epochs that give a baseline network the training the NetAdapt result had: pretraining,
    the short-term fine-tunes on its path, and the long-term fine-tune."""
    state = json.loads((adapt_dir / STATE_FILE).read_text())
    pretrain = json.loads((checkpoint_dir / SUMMARY_FILE).read_text())["identity"]["config"]["epochs"]
    config = state["config"]
    short = config["short_steps"] * (len(state["rows"]) - 1) / steps_per_epoch(splits, batch_size)
    return int(pretrain + config["long_epochs"] + math.ceil(short))
