"""``hwadapt train``, ``adapt``, ``baseline`` and ``demo``."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch
import typer

from hwadapt.adapt.baseline import matched_epochs, measure_baseline, parse_multipliers, train_multipliers
from hwadapt.adapt.family import finish
from hwadapt.adapt.netadapt import AdaptConfig, AdaptError, adapt
from hwadapt.adapt.plot import pareto_png
from hwadapt.adapt.proposals import minimum_widths
from hwadapt.adapt.rundir import RunDir
from hwadapt.arch import build
from hwadapt.cli.common import console, friendly_errors
from hwadapt.cli.main import app
from hwadapt.data import load_dataset
from hwadapt.data.splits import HOLDOUT_FRACTION
from hwadapt.lut.predictor import LatencyPredictor
from hwadapt.materialize.torch_net import Net, load_checkpoint
from hwadapt.train import TrainConfig, fit, make_progress

DEFAULT_EPOCHS = 30
DATA_HELP = "digits | cifar10:PATH | imagefolder:PATH (folder or .tar.gz of train/<class>/*.jpg, test/<class>/*.jpg)"


def _threads(threads: int) -> None:
    torch.set_num_threads(threads)


@app.command()
@friendly_errors
def train(family: str = typer.Option(..., help="Model family, e.g. mobilenet_v1."),
          data: str = typer.Option("digits", help=DATA_HELP),
          epochs: int = typer.Option(..., help="Training epochs."),
          out: Path = typer.Option(..., help="Checkpoint directory (re-run to resume)."),
          width: float = typer.Option(1.0, help="Width multiplier of the base network."),
          resolution: int = typer.Option(32, help="Input side in pixels."),
          lr: float = typer.Option(0.05), batch_size: int = typer.Option(128),
          weight_decay: float = typer.Option(1e-4), seed: int = typer.Option(0),
          holdout: float = typer.Option(HOLDOUT_FRACTION, help="Fraction of training data held out."),
          threads: int = typer.Option(1, help="Torch threads.")) -> None:
    """Train a base network (SGD, cosine schedule, crop+flip augmentation)."""
    _threads(threads)
    splits = load_dataset(data, resolution, seed=seed, holdout_fraction=holdout)
    net = Net(build(family, width=width, resolution=resolution, num_classes=splits.num_classes))
    config = TrainConfig(epochs=epochs, lr=lr, batch_size=batch_size, weight_decay=weight_decay, seed=seed)
    with make_progress() as progress:
        identity = {"data": splits.source, "holdout": holdout}
        summary = fit(net, splits, config, out, identity=identity, progress=progress)
    console.print(f"trained {family} x{width:g} on {splits.name}: holdout {summary['holdout_accuracy']:.4f}, "
                  f"test {summary['test_accuracy']:.4f} -> {out}")


def _budget(predicted_base: float, budget_ms: float | None, budget_ratio: float | None) -> float:
    if (budget_ms is None) == (budget_ratio is None):
        raise AdaptError("give exactly one of --budget-ms and --budget-ratio")
    budget = budget_ms if budget_ms is not None else budget_ratio * predicted_base
    if budget >= predicted_base:
        raise AdaptError(f"nothing to do: the network is predicted at {predicted_base:.3f} ms, "
                         f"already within the {budget:.3f} ms budget")
    return budget


def _fingerprint(path: Path) -> dict:
    stat = path.stat()
    return {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _load_baseline(folder: Path | None) -> pd.DataFrame | None:
    if folder is None:
        return None
    if not (folder / "baseline.csv").is_file():
        raise AdaptError(f"no baseline.csv in {folder} (run `hwadapt baseline` first)")
    return pd.read_csv(folder / "baseline.csv")


@app.command(name="adapt")
@friendly_errors
def adapt_cmd(checkpoint: Path = typer.Option(..., help="Checkpoint directory of the trained network."),
              lut: Path = typer.Option(..., help="LUT (.parquet) of the target, same family and resolution."),
              data: str = typer.Option("digits", help=DATA_HELP),
              out: Path = typer.Option(..., help="Run directory (re-run the same command to resume)."),
              budget_ms: float = typer.Option(None, help="Latency budget in ms (predicted)."),
              budget_ratio: float = typer.Option(None, help="Budget as a fraction of the base latency."),
              first_step: float = typer.Option(0.025, help="First iteration's reduction, fraction of base latency."),
              decay: float = typer.Option(0.96, help="Reduction schedule decay per iteration."),
              short_steps: int = typer.Option(100, help="Short-term fine-tune steps per proposal."),
              short_lr: float = typer.Option(0.01), long_epochs: int = typer.Option(10, help="Long-term epochs."),
              long_lr: float = typer.Option(0.05), select: str = typer.Option("accuracy", help="accuracy | ratio"),
              criterion: str = typer.Option("l2", help="Filter importance: l2 | l1."),
              max_iters: int = typer.Option(100), batch_size: int = typer.Option(128),
              seed: int = typer.Option(0), holdout: float = typer.Option(HOLDOUT_FRACTION),
              baseline: Path = typer.Option(None, help="A `hwadapt baseline` directory to draw on the plot."),
              force: bool = typer.Option(False, help="Use a LUT built for another family/resolution/target."),
              threads: int = typer.Option(1, help="Torch threads.")) -> None:
    """Adapt a trained network to a latency budget with NetAdapt, then measure and export it."""
    _threads(threads)
    base, _ = load_checkpoint(checkpoint)
    predictor = LatencyPredictor.load(lut, force=force)
    predictor.check(base.arch)
    splits = load_dataset(data, base.arch.resolution, seed=seed, holdout_fraction=holdout)
    if splits.num_classes != base.arch.num_classes:
        raise AdaptError(f"{data} has {splits.num_classes} classes, the network {base.arch.num_classes}")
    budget = _budget(predictor.predict_ms(base.arch), budget_ms, budget_ratio)
    config = AdaptConfig(budget_ms=budget, first_step=first_step, decay=decay, short_steps=short_steps,
                         short_lr=short_lr, long_epochs=long_epochs, long_lr=long_lr, select=select,
                         criterion=criterion, max_iters=max_iters, batch_size=batch_size, seed=seed)
    run_adapt(base, splits, predictor, config, out, _load_baseline(baseline),
              {"checkpoint": _fingerprint(checkpoint / "weights.pt"), "lut": _fingerprint(lut),
               "data": splits.source, "holdout": holdout})


def run_adapt(base: Net, splits, predictor: LatencyPredictor, config: AdaptConfig, out: Path,
              baseline: pd.DataFrame | None, identity: dict) -> dict:
    floor = predictor.predict_ms(minimum_widths(base.arch, config.granularity))
    if floor > config.budget_ms:
        console.print(f"[yellow]warning:[/] budget {config.budget_ms:.3f} ms is below the narrowest network "
                      f"({floor:.3f} ms predicted); NetAdapt will stop at minimum widths")
    run = RunDir(out)
    with make_progress() as progress:
        state = adapt(base, splits, predictor.predict_ms, config, run, {**identity, "budget_ms": config.budget_ms},
                      progress)
    console.print(state["stop"]["message"])
    console.print("measuring the family end to end ...")
    report = finish(state, run, predictor, baseline=baseline)
    console.print(f"budget {report['budget_ms']:.3f} ms | predicted {report['predicted_ms']:.3f} ms | "
                  f"measured {report['measured_ms']:.3f} ms (base {report['base_measured_ms']:.3f} ms, "
                  f"{report['measured_speedup']:.2f}x) | test accuracy {report['test_accuracy']:.4f} "
                  f"(base {report['base_test_accuracy']:.4f}) -> {out / 'report.json'}")
    return report


@app.command(name="baseline")
@friendly_errors
def baseline_cmd(family: str = typer.Option(..., help="Model family."),
                 multipliers: str = typer.Option("1.0,0.75,0.5", help="Comma-separated width multipliers."),
                 data: str = typer.Option("digits", help=DATA_HELP),
                 out: Path = typer.Option(..., help="Output directory (re-run to resume)."),
                 lut: Path = typer.Option(None, help="LUT of the target: prices each network and measures it "
                                          "on the LUT's agent (default: measure on ort-cpu, 1 thread)."),
                 epochs: int = typer.Option(None, help=f"Epochs per network (default: match --adapt, "
                                            f"else {DEFAULT_EPOCHS})."),
                 adapt_dir: Path = typer.Option(None, "--adapt", help="An adapt run: match its training "
                                                "budget and draw it on the same plot."),
                 checkpoint: Path = typer.Option(None, help="The adapt run's base checkpoint (to match epochs)."),
                 resolution: int = typer.Option(32), lr: float = typer.Option(0.05),
                 batch_size: int = typer.Option(128), seed: int = typer.Option(0),
                 holdout: float = typer.Option(HOLDOUT_FRACTION), threads: int = typer.Option(1)) -> None:
    """Train uniformly shrunk networks (width multipliers) and measure them on the LUT's target."""
    _threads(threads)
    predictor = LatencyPredictor.load(lut) if lut else None
    splits = load_dataset(data, resolution, seed=seed, holdout_fraction=holdout)
    if predictor is not None:
        predictor.check(build(family, resolution=resolution, num_classes=splits.num_classes))
    if epochs is None:
        if (adapt_dir is None) != (checkpoint is None):
            raise AdaptError("give both --adapt and --checkpoint to match that run's training budget")
        epochs = matched_epochs(adapt_dir, checkpoint, splits, batch_size) if adapt_dir else DEFAULT_EPOCHS
    config = TrainConfig(epochs=epochs, lr=lr, batch_size=batch_size, seed=seed)
    run_baseline(family, parse_multipliers(multipliers), splits, config, out, predictor, adapt_dir)


def run_baseline(family: str, multipliers: list[float], splits, config: TrainConfig, out: Path,
                 predictor: LatencyPredictor | None, adapt_dir: Path | None) -> pd.DataFrame:
    with make_progress() as progress:
        rows = train_multipliers(family, multipliers, splits, config, out, progress)
    console.print("measuring the baseline end to end ...")
    frame = measure_baseline(rows, predictor)
    frame.to_csv(out / "baseline.csv", index=False)
    family_frame = pd.read_csv(adapt_dir / "family.csv") if adapt_dir and (adapt_dir / "family.csv").is_file() else None
    pareto_png(out / "pareto.png", family_frame, frame, title=f"{family}: width multipliers ({config.epochs} epochs)")
    for _, row in frame.iterrows():
        console.print(f"x{row['multiplier']:g}: predicted {row['predicted_ms']:.3f} ms, measured "
                      f"{row['measured_ms']:.3f} ms, test accuracy {row['test_accuracy']:.4f}")
    console.print(f"-> {out / 'baseline.csv'}, {out / 'pareto.png'}")
    return frame


@app.command()
@friendly_errors
def demo(out: Path = typer.Option(Path("hwadapt-demo"), help="Output directory (re-run to resume)."),
         family: str = typer.Option("mobilenet_v1"), width: float = typer.Option(0.5),
         resolution: int = typer.Option(32), epochs: int = typer.Option(15, help="Base training epochs."),
         budget_ratio: float = typer.Option(0.5, help="Budget as a fraction of the base latency."),
         threads: int = typer.Option(1)) -> None:
    """Profile this machine, train a small MobileNet on digits, NetAdapt it, compare to multipliers."""
    from hwadapt.adapt.demo import DemoSettings, run_demo

    _threads(threads)
    settings = DemoSettings(family=family, width=width, resolution=resolution, epochs=epochs,
                            budget_ratio=budget_ratio)
    run_demo(settings, out, run_adapt, run_baseline)
