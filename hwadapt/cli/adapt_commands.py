"""``hwadapt train``, ``adapt``, ``methods``, ``baseline`` and ``demo``: they parse, call the
library's workflows and print."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pandas as pd
import typer
from rich.table import Table

from hwadapt.adapt.baseline import Curve, matched_epochs, parse_multipliers, train_curve
from hwadapt.adapt.plot import pareto_png
from hwadapt.adapt.registry import METHODS
from hwadapt.adapt.report import AdaptReport
from hwadapt.adapt.workflow import FAMILY_FILE, AdaptError, adapt_network, baseline_frame, prepare_job
from hwadapt.cli.common import RAY_ADDRESS_HELP, WORKERS_HELP, console, reporter
from hwadapt.cluster import make_executor
from hwadapt.data import load_dataset
from hwadapt.data.splits import HOLDOUT_FRACTION
from hwadapt.families import build
from hwadapt.lut.predictor import LatencyPredictor
from hwadapt.materialize.torch_net import Net
from hwadapt.train import TrainConfig, fit
from hwadapt.train.device import DEVICES, resolve_device, set_threads

DEFAULT_EPOCHS = 30
DATA_HELP = "digits | cifar10:PATH | imagefolder:PATH (folder or .tar.gz of train/<class>/*.jpg, test/<class>/*.jpg)"


def train(family: str = typer.Option(..., help="Model family, e.g. mobilenet_v1 (`hwadapt families` lists them)."),
          data: str = typer.Option("digits", help=DATA_HELP),
          epochs: int = typer.Option(..., min=1, help="Training epochs."),
          out: Path = typer.Option(..., help="Checkpoint directory (re-run to resume)."),
          width: float = typer.Option(1.0, help="Width multiplier of the base network."),
          resolution: int = typer.Option(32, min=1, help="Input side in pixels."),
          lr: float = typer.Option(0.05), batch_size: int = typer.Option(128, min=1),
          weight_decay: float = typer.Option(1e-4), seed: int = typer.Option(0),
          holdout: float = typer.Option(HOLDOUT_FRACTION, help="Fraction of training data held out."),
          threads: int = typer.Option(0, min=0, help="Torch threads for training (0: every core)."),
          device: str = typer.Option("auto", help=f"Where to train: {DEVICES}.")) -> None:
    """Train a base network (SGD, cosine schedule, crop+flip augmentation)."""
    set_threads(threads)
    where = resolve_device(device)
    splits = load_dataset(data, resolution, seed=seed, holdout_fraction=holdout)
    net = Net(build(family, width=width, resolution=resolution, num_classes=splits.num_classes)).to(where)
    config = TrainConfig(epochs=epochs, lr=lr, batch_size=batch_size, weight_decay=weight_decay, seed=seed)
    with reporter() as progress:
        summary = fit(net, splits, config, out, identity={"data": splits.source, "holdout": holdout},
                      reporter=progress)
    console.print(f"trained {family} x{width:g} on {splits.name}: holdout {summary['holdout_accuracy']:.4f}, "
                  f"test {summary['test_accuracy']:.4f} -> {out}")


def adapt(checkpoint: Path = typer.Option(..., help="Checkpoint directory of the trained network."),
          lut: Path = typer.Option(..., help="LUT (.parquet) of the target, same family and resolution."),
          out: Path = typer.Option(..., help="Run directory (re-run the same command to resume)."),
          method: str = typer.Option("netadapt", help="Adaptation method (`hwadapt methods` lists them)."),
          data: str = typer.Option("digits", help=DATA_HELP),
          budget_ms: float = typer.Option(None, min=0.0, help="Latency budget in ms (as the LUT prices it)."),
          budget_ratio: float = typer.Option(None, min=0.0, help="Budget as a fraction of the base latency."),
          seed: int = typer.Option(0), holdout: float = typer.Option(HOLDOUT_FRACTION),
          train_images: int = typer.Option(None, min=1, help="Train on a stratified subset of this many images."),
          holdout_images: int = typer.Option(None, min=1, help="Choose on a stratified subset of this many "
                                             "holdout images."),
          baseline: Path = typer.Option(None, help="A `hwadapt baseline` directory to draw on the plot."),
          force: bool = typer.Option(False, help="Use a LUT built for another family/resolution/target."),
          threads: int = typer.Option(0, min=0, help="Torch threads for training (0: every core)."),
          device: str = typer.Option("auto", help=f"Where to train: {DEVICES}."),
          workers: int = typer.Option(None, min=1, help=WORKERS_HELP),
          ray_address: str = typer.Option(None, help=RAY_ADDRESS_HELP),
          settings: dict[str, Any] | None = None) -> None:
    """Adapt a trained network to a latency budget with a method, measure it end to end, export it."""
    set_threads(threads)
    extra = baseline_frame(baseline)
    with reporter() as progress:
        job, config = prepare_job(method, checkpoint, lut, data, out, budget_ms=budget_ms, budget_ratio=budget_ratio,
                                  settings=settings, seed=seed, holdout=holdout, train_images=train_images,
                                  holdout_images=holdout_images, force=force, device=device, reporter=progress)
        with make_executor(workers, ray_address, device=job.device, reporter=progress) as executor:
            report = adapt_network(dataclasses.replace(job, executor=executor), config, baseline=extra)
    print_report(report, out)


def print_report(report: AdaptReport, out: Path) -> None:
    spread = "" if report.measured_spread_pct is None else f" ±{report.measured_spread_pct / 2:.1f}%"
    verdict = "within" if report.within_budget else f"{report.measured_ms / report.budget_ms - 1:+.1%} over"
    console.print(f"{report.method}: budget {report.budget_ms:.4g} ms | predicted {report.predicted_ms:.4g} ms | "
                  f"measured {report.measured_ms:.4g} ms{spread} ({verdict} the budget; base "
                  f"{report.base_measured_ms:.4g} ms, {report.measured_speedup:.2f}x) | test accuracy "
                  f"{report.test_accuracy:.4f} (base {report.base_test_accuracy:.4f}) -> {out / 'report.json'}",
                  highlight=False)


def methods() -> None:
    """List the adaptation methods and their settings."""
    for method in METHODS.values():
        table = Table("setting", "default", "meaning", title=f"{method.name}: {method.description}",
                      title_justify="left")
        for field in dataclasses.fields(method.Settings):
            table.add_row(f"--{field.name.replace('_', '-')}", str(field.default), field.metadata.get("help", ""))
        console.print(table)


def baseline(family: str = typer.Option(..., help="Model family."),
             multipliers: str = typer.Option("1.0,0.75,0.5", help="Comma-separated width multipliers."),
             data: str = typer.Option("digits", help=DATA_HELP),
             out: Path = typer.Option(..., help="Output directory (re-run to resume)."),
             lut: Path = typer.Option(None, help="LUT of the target: prices each network and measures it "
                                      "on the LUT's target (default: measure on ort-cpu, 1 thread)."),
             epochs: int = typer.Option(None, min=1, help=f"Epochs per network (default: match --adapt, "
                                        f"else {DEFAULT_EPOCHS})."),
             adapt_dir: Path = typer.Option(None, "--adapt", help="A NetAdapt run: match its training "
                                            "budget and draw it on the same plot."),
             checkpoint: Path = typer.Option(None, help="The adapt run's base checkpoint (to match epochs)."),
             resolution: int = typer.Option(32, min=1), lr: float = typer.Option(0.05),
             batch_size: int = typer.Option(128, min=1), seed: int = typer.Option(0),
             holdout: float = typer.Option(HOLDOUT_FRACTION),
             threads: int = typer.Option(0, min=0, help="Torch threads for training (0: every core)."),
             device: str = typer.Option("auto", help=f"Where to train: {DEVICES}.")) -> None:
    """Train uniformly shrunk networks (width multipliers) and measure them on the LUT's target."""
    set_threads(threads)
    where = resolve_device(device)
    predictor = LatencyPredictor.load(lut) if lut else None
    splits = load_dataset(data, resolution, seed=seed, holdout_fraction=holdout)
    if predictor is not None:
        predictor.check(build(family, resolution=resolution, num_classes=splits.num_classes))
    if epochs is None:
        if (adapt_dir is None) != (checkpoint is None):
            raise AdaptError("give both --adapt and --checkpoint to match that run's training budget")
        epochs = matched_epochs(adapt_dir, checkpoint, splits, batch_size) if adapt_dir else DEFAULT_EPOCHS
    config = TrainConfig(epochs=epochs, lr=lr, batch_size=batch_size, seed=seed)
    with reporter() as progress:
        frame = train_curve(Curve(family, parse_multipliers(multipliers), splits, config, out, predictor, progress,
                                  where))
    family_csv = adapt_dir / FAMILY_FILE if adapt_dir else None
    pareto_png(out / "pareto.png", pd.read_csv(family_csv) if family_csv and family_csv.is_file() else None, frame,
               title=f"{family}: width multipliers ({config.epochs} epochs)")
    for _, row in frame.iterrows():
        console.print(f"x{row['multiplier']:g}: predicted {row['predicted_ms']:.4g} ms, measured "
                      f"{row['measured_ms']:.4g} ms ±{row['measured_spread_pct'] / 2:.1f}%, test accuracy "
                      f"{row['test_accuracy']:.4f}", highlight=False)
    console.print(f"-> {out / 'baseline.csv'}, {out / 'pareto.png'}")


def demo(out: Path = typer.Option(Path("hwadapt-demo"), help="Output directory (re-run to resume)."),
         family: str = typer.Option("mobilenet_v1"), width: float = typer.Option(0.5),
         resolution: int = typer.Option(32, min=1), epochs: int = typer.Option(15, min=1, help="Base training epochs."),
         budget_ratio: float = typer.Option(0.5, help="Budget as a fraction of the base latency."),
         threads: int = typer.Option(1, min=1, help="Torch threads (one: the demo also measures).")) -> None:
    """Profile this machine, train a small MobileNet on digits, NetAdapt it, compare to multipliers."""
    from hwadapt.adapt.demo import DemoSettings, run_demo

    set_threads(threads)
    settings = DemoSettings(family=family, width=width, resolution=resolution, epochs=epochs,
                            budget_ratio=budget_ratio)
    with reporter() as progress:
        report = run_demo(settings, out, progress)
    print_report(report, out / "adapt")
    console.print(f"[bold green]done[/]: {out / 'pareto.png'}, {out / 'adapt' / 'report.json'}")

