"""``hwadapt graft``: N networks trained side by side, grafted in a ring after each epoch,
against the same networks trained alone."""
from __future__ import annotations

from pathlib import Path

import typer

from hwadapt.cli.common import console, reporter
from hwadapt.data.splits import HOLDOUT_FRACTION

DATA_HELP = "digits | cifar10:PATH | imagefolder:PATH"


def graft(family: str = typer.Option(..., help="Model family (resnet20, vgg16, mobilenet_v2, ...)."),
          data: str = typer.Option("digits", help=DATA_HELP),
          nets: int = typer.Option(2, min=2, help="Networks in the ring (one process each)."),
          epochs: int = typer.Option(..., min=1, help="Training epochs of every network."),
          out: Path = typer.Option(..., help="Run folder (re-run the same command to resume)."),
          width: float = typer.Option(1.0, help="Width multiplier of the base network."),
          resolution: int = typer.Option(32, min=1, help="Input side in pixels."),
          level: str = typer.Option("layer", help="layer: the entropy rule per convolution; filter: per filter by "
                                    "batch-norm scales."),
          a: float = typer.Option(0.4, "--a", help="A of the rule alpha = A/pi * arctan(c * (H_own - H_other)) + 0.5."),
          c: float = typer.Option(500.0, "--c", help="c of the rule."),
          difflr: bool = typer.Option(True, help="Spread the learning rates over the ring (the authors' difflr)."),
          lr: float = typer.Option(0.05), batch_size: int = typer.Option(128, min=1),
          weight_decay: float = typer.Option(1e-4), seed: int = typer.Option(0),
          train_images: int = typer.Option(None, min=1, help="Train on a stratified subset of this many images."),
          holdout: float = typer.Option(HOLDOUT_FRACTION, help="Fraction of training data held out."),
          device: str = typer.Option("cpu", help="Where each network trains (cpu, cuda, cuda:N).")) -> None:
    """Filter grafting: N networks in parallel processes, each layer blended with its ring
    neighbour's by the entropy rule after every epoch, in memory; and the same N trained alone."""
    from hwadapt.graft.rule import GraftSettings
    from hwadapt.graft.workflow import GraftJob, run_graft
    from hwadapt.train import TrainConfig

    job = GraftJob(out=out, family=family, data=data, nets=nets, width=width, resolution=resolution, difflr=difflr,
                   train=TrainConfig(epochs=epochs, lr=lr, batch_size=batch_size, weight_decay=weight_decay, seed=seed),
                   settings=GraftSettings(a=a, c=c, level=level), train_images=train_images, holdout=holdout,
                   device=device)
    with reporter() as progress:
        report = run_graft(job, progress)
    for row in report.networks:
        console.print(f"net{row['rank']} (lr {row['lr']:.3g}): grafted {row['grafted_test_accuracy']:.4f}, "
                      f"independent {row['independent_test_accuracy']:.4f} ({row['gain']:+.4f})", highlight=False)
    console.print(f"mean gain {report.mean_gain:+.4f} over {report.nets} networks, {report.epochs} epochs "
                  f"-> {out / 'report.json'}", highlight=False)
