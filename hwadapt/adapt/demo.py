"""``hwadapt demo``: the whole pipeline on this machine in a few minutes.

ONNX Runtime LUT -> base MobileNet trained on the bundled digits -> NetAdapt to a budget
-> width-multiplier curve with the same training budget -> one Pareto plot.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from device_agents import make_agent
from hwadapt.adapt.baseline import Curve, matched_epochs, train_curve
from hwadapt.adapt.plot import pareto_png
from hwadapt.adapt.report import AdaptReport
from hwadapt.adapt.workflow import FAMILY_FILE, adapt_network, prepare_job
from hwadapt.data import load_dataset
from hwadapt.families import build
from hwadapt.lut.profile import build_lut
from hwadapt.materialize.torch_net import Net
from hwadapt.progress import QUIET, Reporter
from hwadapt.train import TrainConfig, fit

# NetAdapt with larger steps than the paper's, so that the demo takes minutes
DEMO_NETADAPT = {"first_step": 0.1, "decay": 0.9, "short_steps": 40, "short_lr": 0.02, "long_epochs": 5,
                 "long_lr": 0.02}


@dataclass(frozen=True)
class DemoSettings:
    family: str = "mobilenet_v1"
    width: float = 0.5
    resolution: int = 32
    epochs: int = 15
    budget_ratio: float = 0.5
    batch_size: int = 64


def run_demo(settings: DemoSettings, out: Path, reporter: Reporter = QUIET) -> AdaptReport:
    """Profile, train, adapt and compare under ``out`` (a re-run resumes each stage)."""
    out.mkdir(parents=True, exist_ok=True)
    lut = out / "lut.parquet"
    reporter.note(f"1/4 profiling this machine with ONNX Runtime -> {lut}")
    with make_agent("ort-cpu", threads=1) as agent:
        build_lut(agent, settings.family, settings.resolution, lut, num_classes=10, reporter=reporter)
    splits = load_dataset("digits", settings.resolution)
    reporter.note(f"2/4 training {settings.family} x{settings.width:g} on digits ({len(splits.train)} train / "
                  f"{len(splits.holdout)} holdout / {len(splits.test)} test images)")
    base = Net(build(settings.family, width=settings.width, resolution=settings.resolution, num_classes=10))
    fit(base, splits, TrainConfig(epochs=settings.epochs, lr=0.1, batch_size=settings.batch_size), out / "base",
        identity={"data": splits.source}, reporter=reporter)
    job, config = prepare_job("netadapt", out / "base", lut, "digits", out / "adapt",
                              budget_ratio=settings.budget_ratio,
                              settings={**DEMO_NETADAPT, "batch_size": settings.batch_size}, reporter=reporter)
    reporter.note(f"3/4 NetAdapt to {job.budget_ms:.4g} ms ({settings.budget_ratio:g} x base, predicted)")
    report = adapt_network(job, config)
    epochs = matched_epochs(out / "adapt", out / "base", splits, settings.batch_size)
    multipliers = [settings.width * m for m in (1.0, 0.75, 0.5)]
    reporter.note(f"4/4 width-multiplier curve {multipliers}, {epochs} epochs each (the same training budget)")
    curve = train_curve(Curve(settings.family, multipliers, splits,
                              TrainConfig(epochs=epochs, lr=0.1, batch_size=settings.batch_size), out / "baseline",
                              job.predictor, reporter))
    pareto_png(out / "pareto.png", pd.read_csv(out / "adapt" / FAMILY_FILE), curve, report.budget_ms,
               title=f"{settings.family} x{settings.width:g} on digits, ort-cpu")
    return report
