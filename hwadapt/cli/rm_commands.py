"""``hwadapt rm``: remove a trained network's residual connections exactly."""
from __future__ import annotations

from pathlib import Path

import typer

from hwadapt.cli.common import console

DATA_HELP = "Images to compare the forms on (default: the data the checkpoint was trained on)."


def rm(checkpoint: Path = typer.Option(..., help="Checkpoint of a trained ResNet or MobileNetV2."),
       out: Path = typer.Option(..., help="Folder for the plain checkpoint, its exports and rm.json."),
       data: str = typer.Option(None, help=DATA_HELP),
       images: int = typer.Option(64, min=1, help="Test images the forms are compared on.")) -> None:
    """Re-parameterise a trained ResNet (basic blocks) or MobileNetV2 into a plain chain that
    computes the same outputs, and check it in PyTorch, ONNX and TFLite on real images."""
    import torch

    from hwadapt.rm.workflow import rm_checkpoint

    torch.set_num_threads(1)
    report = rm_checkpoint(checkpoint, out, data, images)
    diffs = ", ".join(f"{form} {value:.2e}" for form, value in report.max_abs_diff.items())
    console.print(f"{report.family} -> plain: max |difference| on {report.images} images: {diffs} "
                  f"(outputs up to {report.output_scale:.3g}); parameters {report.params_before:,} -> "
                  f"{report.params_after:,}; ops {sum(report.ops_before.values())} -> "
                  f"{sum(report.ops_after.values())} -> {out / 'rm.json'}", highlight=False)
