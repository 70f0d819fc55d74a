"""``hwadapt demo``: the whole pipeline on this machine in a few minutes.

ONNX Runtime LUT -> base MobileNet trained on the bundled digits -> NetAdapt to a budget
-> width-multiplier baseline with the same training budget -> one Pareto plot.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from device_agents import make_agent
from hwadapt.adapt.baseline import matched_epochs
from hwadapt.adapt.netadapt import AdaptConfig
from hwadapt.adapt.plot import pareto_png
from hwadapt.arch import build
from hwadapt.cli.common import console
from hwadapt.data import load_dataset
from hwadapt.lut.predictor import LatencyPredictor
from hwadapt.lut.profile import build_lut
from hwadapt.materialize.torch_net import Net
from hwadapt.train import TrainConfig, fit, make_progress

@dataclass(frozen=True)
class DemoSettings:
    family: str = "mobilenet_v1"
    width: float = 0.5
    resolution: int = 32
    epochs: int = 15
    budget_ratio: float = 0.5
    batch_size: int = 64
    calibration_models: int | None = None  # the resolution's default; its shrunk networks matter: NetAdapt goes there


def run_demo(settings: DemoSettings, out: Path, run_adapt, run_baseline) -> None:
    out.mkdir(parents=True, exist_ok=True)
    lut = out / "lut.parquet"
    console.print(f"[bold]1/4[/] profiling this machine with ONNX Runtime -> {lut}")
    with make_agent("ort-cpu", threads=1) as agent:
        build_lut(agent, settings.family, settings.resolution, lut, num_classes=10,
                  calibration_models=settings.calibration_models)
    predictor = LatencyPredictor.load(lut)
    splits = load_dataset("digits", settings.resolution)
    console.print(f"[bold]2/4[/] training {settings.family} x{settings.width:g} on digits "
                  f"({len(splits.train)} train / {len(splits.holdout)} holdout / {len(splits.test)} test images)")
    base = Net(build(settings.family, width=settings.width, resolution=settings.resolution, num_classes=10))
    train_config = TrainConfig(epochs=settings.epochs, lr=0.1, batch_size=settings.batch_size)
    with make_progress() as progress:
        fit(base, splits, train_config, out / "base", identity={"data": splits.source}, progress=progress)
    budget = settings.budget_ratio * predictor.predict_ms(base.arch)
    console.print(f"[bold]3/4[/] NetAdapt to {budget:.3f} ms ({settings.budget_ratio:g} x base, predicted)")
    config = AdaptConfig(budget_ms=budget, first_step=0.1, decay=0.9, short_steps=40, short_lr=0.02,
                         long_epochs=5, long_lr=0.02, batch_size=settings.batch_size)
    report = run_adapt(base, splits, predictor, config, out / "adapt", None,
                       {"demo": True, "data": "digits", "lut": str(lut.resolve())})
    epochs = matched_epochs(out / "adapt", out / "base", splits, settings.batch_size)
    multipliers = [settings.width * m for m in (1.0, 0.75, 0.5)]
    console.print(f"[bold]4/4[/] width-multiplier baseline {multipliers}, {epochs} epochs each (same budget)")
    baseline = run_baseline(settings.family, multipliers, splits,
                            TrainConfig(epochs=epochs, lr=0.1, batch_size=settings.batch_size),
                            out / "baseline", predictor, out / "adapt")
    pareto_png(out / "pareto.png", pd.read_csv(out / "adapt" / "family.csv"), baseline, report["budget_ms"],
               title=f"{settings.family} x{settings.width:g} on digits, ort-cpu")
    console.print(f"[bold green]done[/]: {out / 'pareto.png'}, {out / 'adapt' / 'report.json'}")
