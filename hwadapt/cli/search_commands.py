"""``hwadapt search``: ProxylessNAS on a LUT of the ``proxyless`` space."""
from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from hwadapt.cli.common import console, reporter, setup_logging
from hwadapt.train.device import DEVICES

SEARCH_MISS = 0.10  # a search whose own argmax misses the target by more is warned about


class LossForm(str, Enum):
    target = "target"
    mul = "mul"
    add = "add"


def search(
    lut: Path = typer.Option(..., help="LUT of the proxyless space (from `hwadapt profile --family proxyless`)."),
    target_ms: float = typer.Option(..., help="Latency target in ms on the LUT's backend."),
    data: str = typer.Option(..., help="digits, cifar10:PATH or imagefolder:PATH."),
    epochs: int = typer.Option(..., min=1, help="Search epochs (supernet training)."),
    out: Path = typer.Option(..., help="Output folder (re-run the same command to resume)."),
    warmup_epochs: int = typer.Option(None, min=0, help="Epochs of weight training before architecture "
                                      "updates [default: a fifth of --epochs]."),
    train_epochs: int = typer.Option(None, min=0, help="Epochs training the derived network [default: --epochs]."),
    from_scratch: bool = typer.Option(False, help="Train the derived network from scratch instead of "
                                      "fine-tuning the supernet's weights."),
    loss: LossForm = typer.Option(LossForm.target, help="target: CE + m*e + p/2*e^2 with e the relative miss of "
                                  "a sharpened E(lat) and m a multiplier raised until the search lands on T; the "
                                  "paper's mul: a*CE*(log E(lat)/log T)^b and add: CE + l*(E(lat)-T)/T."),
    alpha: float = typer.Option(0.2, help="a of the mul form."),
    beta: float = typer.Option(0.3, help="b of the mul form."),
    lam: float = typer.Option(0.1, help="l of the add form."),
    penalty: float = typer.Option(100.0, help="p of the target form."),
    dual_gain: float = typer.Option(10.0, help="Target form: the multiplier's step, in units of --arch-lr."),
    final_temperature: float = typer.Option(0.1, help="Target form: softmax temperature of the sharpened "
                                            "E(lat) at the last step (from 1 at the first)."),
    tolerance: float = typer.Option(0.05, help="Allowed relative miss of the measured latency."),
    batch_size: int = typer.Option(64, min=1),
    lr: float = typer.Option(0.05, help="Weight learning rate (SGD, cosine)."),
    arch_lr: float = typer.Option(2e-2, help="Architecture learning rate (Adam, beta1=0; the paper's: 1e-3)."),
    arch_every: int = typer.Option(2, min=1, help="Weight steps per architecture step (the paper's: 5)."),
    width: float = typer.Option(1.0, help="Width multiplier of the space."),
    depth: int = typer.Option(None, min=1, help="Blocks per stage [default: MobileNetV2's]."),
    train_images: int = typer.Option(None, min=1, help="Use a stratified subset of the training images."),
    holdout_images: int = typer.Option(None, min=1, help="Use a stratified subset of the holdout images."),
    seed: int = typer.Option(0),
    threads: int = typer.Option(0, min=0, help="Torch threads for training (0: every core)."),
    device: str = typer.Option("auto", help=f"Where to train: {DEVICES}."),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Search an architecture for a latency target, train it, measure it on the LUT's target."""
    from hwadapt.nas.pipeline import SearchJob, run
    from hwadapt.nas.search import SearchConfig
    from hwadapt.train.device import resolve_device, set_threads

    setup_logging(verbose)
    set_threads(threads)
    resolve_device(device)  # a device that is not here is refused before any work
    warmup = max(1, epochs // 5) if warmup_epochs is None else warmup_epochs
    config = SearchConfig(target_ms=target_ms, epochs=epochs, warmup_epochs=min(warmup, epochs - 1),
                          batch_size=batch_size, lr=lr, arch_lr=arch_lr, arch_every=arch_every,
                          loss_form=loss.value, alpha=alpha, beta=beta, lam=lam, penalty=penalty,
                          dual_gain=dual_gain, final_temperature=final_temperature, seed=seed)
    job = SearchJob(str(lut), data, str(out), config, train_epochs=epochs if train_epochs is None else train_epochs,
                    tolerance=tolerance, width=width, depth=depth, from_scratch=from_scratch,
                    train_images=train_images, holdout_images=holdout_images, device=device)
    with reporter() as progress:
        report = run(job, reporter=progress)
    verdict = "[green]within[/]" if report["within_tolerance"] else "[red]outside[/]"
    console.print(f"target {report['target_ms']:.4g} ms, predicted {report['predicted_ms']:.4g} ms, measured "
                  f"{report['measured_ms']:.4g} ms ({report['measured_error']:+.1%}, {verdict} "
                  f"±{tolerance:.0%}); test accuracy {report['test_accuracy']:.4f}")
    console.print(report["note"], highlight=False)
    search = report["search"]
    console.print(f"the search alone: argmax {search['argmax_predicted_ms']:.4g} ms predicted "
                  f"({search['argmax_error']:+.1%} of the target), E\\[latency] {search['first_expected_ms']:.4g} -> "
                  f"{search['final_expected_ms']:.4g} ms over {search['epochs']} epochs ({out / 'search' / 'search.png'})",
                  highlight=False)
    if abs(search["argmax_error"]) > SEARCH_MISS:
        console.print(f"[yellow]warning:[/] the search's own argmax missed the target by "
                      f"{search['argmax_error']:+.0%} (the derive step's swaps made up the rest): search longer, or "
                      "with the target form (--loss target) a larger --arch-lr.")
    console.print(f"wrote {out / 'report.json'} and {out / 'arch.json'}")
