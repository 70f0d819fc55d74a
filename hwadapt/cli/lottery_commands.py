"""``hwadapt lottery`` and ``hwadapt supermask``: they parse, call the library's
workflows (:mod:`hwadapt.lottery`) and print."""
from __future__ import annotations

import math
from pathlib import Path

import typer

from hwadapt.cli.adapt_commands import DATA_HELP
from hwadapt.cli.common import console, reporter
from hwadapt.train.device import DEVICES, resolve_device, set_threads


def lottery(family: str = typer.Option(..., help="Model family, e.g. resnet20 (`hwadapt families` lists them)."),
            data: str = typer.Option(..., help=DATA_HELP),
            out: Path = typer.Option(..., help="Run folder (re-run the same command to resume; more --levels "
                                     "extend a finished run)."),
            levels: int = typer.Option(5, min=0, help="Pruning levels after the dense level 0."),
            rate: float = typer.Option(0.2, help="Fraction of the remaining weights each level prunes, in (0, 1)."),
            rewind_steps: int = typer.Option(0, min=0, help="Rewind survivors to their values at this training "
                                             "step (0: the initial weights, the original hypothesis)."),
            epochs: int = typer.Option(10, min=1, help="Epochs of the whole schedule (tickets train its steps "
                                       "from the rewind step on)."),
            width: float = typer.Option(1.0, help="Width multiplier of the network."),
            resolution: int = typer.Option(32, min=1, help="Input side in pixels."),
            layerwise: bool = typer.Option(False, "--layerwise", help="Prune the same fraction of every layer "
                                           "instead of the smallest weights of the whole network."),
            controls: bool = typer.Option(True, help="Train the random re-init and random-mask controls."),
            lr: float = typer.Option(0.05), batch_size: int = typer.Option(128, min=1),
            weight_decay: float = typer.Option(1e-4), seed: int = typer.Option(0),
            train_images: int = typer.Option(None, min=1, help="Train on a stratified subset of this many images."),
            threads: int = typer.Option(0, min=0, help="Torch threads for training (0: every core)."),
            device: str = typer.Option("auto", help=f"Where to train: {DEVICES}.")) -> None:
    """Find lottery tickets by iterative magnitude pruning with rewinding, with controls."""
    from hwadapt.lottery.imp import LEVELS_FILE, REPORT_FILE, LotterySettings, prepare_lottery, run_lottery

    set_threads(threads)
    settings = LotterySettings(family=family, data=data, width=width, resolution=resolution, levels=levels, rate=rate,
                               rewind_steps=rewind_steps, epochs=epochs, layerwise=layerwise, controls=controls,
                               lr=lr, batch_size=batch_size, weight_decay=weight_decay, seed=seed,
                               train_images=train_images)
    with reporter() as progress:
        job = prepare_lottery(settings, out, device=resolve_device(device), reporter=progress)
        report = run_lottery(job)
    for row in report.levels:
        controls_text = "".join(f", {name} {_pct(row.get(key))}" for name, key in
                                (("re-init", "reinit_accuracy"), ("random mask", "random_mask_accuracy"))
                                if key in row)
        console.print(f"level {row['level']}: sparsity {row['sparsity']:.1%}, ticket {_pct(row['test_accuracy'])}"
                      f"{controls_text}", highlight=False)
    console.print(f"-> {out / LEVELS_FILE}, {out / REPORT_FILE}")


def supermask(family: str = typer.Option(..., help="Model family, e.g. resnet20."),
              data: str = typer.Option(..., help=DATA_HELP),
              method: str = typer.Option(..., help="learned | edge-popup | a mask criterion (large_final, "
                                         "large_init_large_final, magnitude_increase, movement, random; "
                                         "*_same_sign)."),
              out: Path = typer.Option(..., help="Output folder (re-run the same command to resume)."),
              width: float = typer.Option(1.0), resolution: int = typer.Option(32, min=1),
              sparsity: float = typer.Option(0.5, help="Fraction of each layer's weights a criterion or "
                                             "edge-popup removes, in (0, 1)."),
              epochs: int = typer.Option(10, min=1, help="Epochs training the scores (learned, edge-popup) or "
                                         "the network whose final weights a criterion reads."),
              lr: float = typer.Option(None, help="Learning rate [default: learned 100, edge-popup 0.1, "
                                       "criteria's training 0.05]."),
              lottery_run: Path = typer.Option(None, "--lottery", help="A `hwadapt lottery` run: its initial "
                                               "weights, and its dense level 0 as the final weights."),
              batch_size: int = typer.Option(128, min=1), seed: int = typer.Option(0),
              train_images: int = typer.Option(None, min=1, help="Train on a stratified subset of this many images."),
              threads: int = typer.Option(0, min=0, help="Torch threads (0: every core)."),
              device: str = typer.Option("auto", help=f"Where to train: {DEVICES}.")) -> None:
    """Supermasks: a mask criterion on the initial weights (no training), a learned
    supermask or edge-popup on frozen weights."""
    from hwadapt.lottery.supermask import REPORT_FILE, SupermaskSettings, run_supermask

    set_threads(threads)
    settings = SupermaskSettings(family=family, data=data, method=method, width=width, resolution=resolution,
                                 sparsity=sparsity, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed,
                                 train_images=train_images, lottery=str(lottery_run) if lottery_run else None)
    with reporter() as progress:
        report = run_supermask(settings, out, device=resolve_device(device), reporter=progress)
    console.print(f"{report.method}: sparsity {report.sparsity:.1%}, test accuracy {report.test_accuracy:.4f} "
                  f"(chance {report.chance:.2f}) -> {out / REPORT_FILE}", highlight=False)


def _pct(value: float | None) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4f}"
