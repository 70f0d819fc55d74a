"""``hwadapt stripe``: stripe-wise pruning, its export forms checked, priced and measured."""
from __future__ import annotations

from pathlib import Path

import typer

from hwadapt.cli.common import console, reporter
from hwadapt.data.splits import HOLDOUT_FRACTION
from hwadapt.measure import WINDOWS
from hwadapt.train.device import DEVICES, set_threads

DATA_HELP = "digits | cifar10:PATH | imagefolder:PATH"


def stripe(family: str = typer.Option(None, help="Model family to train from scratch (resnet20, vgg16, ...)."),
           checkpoint: Path = typer.Option(None, help="Or a trained checkpoint to prune."),
           data: str = typer.Option("digits", help=DATA_HELP),
           epochs: int = typer.Option(..., min=1, help="Training epochs with the skeleton."),
           out: Path = typer.Option(..., help="Run folder (re-run the same command to resume)."),
           lut: list[Path] = typer.Option([], help="LUT built with --forms kconv,stripes,tapsum, one per backend "
                                          "(repeat): prices each form and picks the cheapest per layer (the form "
                                          "best-BACKEND)."),
           width: float = typer.Option(1.0, help="Width multiplier of the family's base network."),
           resolution: int = typer.Option(32, min=1, help="Input side in pixels (from scratch)."),
           sr: float = typer.Option(1e-5, min=0.0, help="L1 strength on the filter skeleton."),
           threshold: float = typer.Option(0.01, min=0.0, help="A stripe whose skeleton value falls below this "
                                           "dies for good."),
           lr: float = typer.Option(0.05), batch_size: int = typer.Option(128, min=1),
           weight_decay: float = typer.Option(1e-4), seed: int = typer.Option(0),
           train_images: int = typer.Option(None, min=1, help="Train on a stratified subset of this many images."),
           holdout: float = typer.Option(HOLDOUT_FRACTION, help="Fraction of training data held out."),
           backends: str = typer.Option("ort-cpu,litert-cpu", help="Agents the forms are measured on."),
           windows: int = typer.Option(WINDOWS, min=1, help="Measurement windows behind each figure."),
           layers: bool = typer.Option(True, help="Also measure each layer's forms alone."),
           images: int = typer.Option(64, min=1, help="Test images the forms are compared on."),
           threads: int = typer.Option(0, min=0, help="Torch threads for training (0: every core)."),
           device: str = typer.Option("auto", help=f"Where to train: {DEVICES}.")) -> None:
    """Stripe-wise pruning (a learned filter skeleton, L1 and a threshold), the pruned network
    exported dense, with smaller kernels and as stripes, each checked and measured end to end."""
    from hwadapt.stripe.skeleton import SkeletonSettings
    from hwadapt.stripe.workflow import StripeJob, run_stripe
    from hwadapt.train import TrainConfig

    set_threads(threads)
    job = StripeJob(out=out, data=data, family=family, width=width, resolution=resolution, checkpoint=checkpoint,
                    luts=tuple(lut), train=TrainConfig(epochs=epochs, lr=lr, batch_size=batch_size,
                                               weight_decay=weight_decay, seed=seed),
                    skeleton=SkeletonSettings(sr, threshold), backends=tuple(b for b in backends.split(",") if b),
                    windows=windows, images=images, train_images=train_images, holdout=holdout, layers=layers,
                    device=device)
    with reporter() as progress:
        report = run_stripe(job, progress)
    console.print(f"{report.family}: {report.stripe_sparsity:.1%} of stripes pruned, FLOPs "
                  f"-{report.flops_reduction:.1%}, test accuracy {report.test_accuracy:.4f}", highlight=False)
    for name, form in report.forms.items():
        times = ", ".join(f"{backend} {ms:.4g} ms ±{form.spread_pct[backend] / 2:.1f}% ({form.speedup[backend]:.2f}x)"
                          for backend, ms in form.measured_ms.items())
        price = "".join(f", {backend} predicted {ms:.4g} ms" for backend, ms in form.predicted_ms.items())
        console.print(f"  {name:7s} {form.ops:3d} ops, max |diff| {max(form.max_abs_diff.values()):.1e}{price}: "
                      f"{times}", highlight=False)
    console.print(f"-> {out / 'report.json'}")
