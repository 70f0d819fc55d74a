"""Stripe-wise pruning and filter grafting on CIFAR-10, on a schedule a 2-core CPU runs in
about an hour and a half: does any export form of a stripe-pruned network run faster than
the dense network on ONNX Runtime or LiteRT, and does grafting beat independent training
at equal epochs, alone and as NetAdapt's long-term fine-tune?

Stages (each resumes when re-run with the same arguments; the work folder holds the
checkpoints and tables, the results folder only small files):
  1. a LUT of the family at 32 px on ort-cpu and on litert-cpu, with the stand-ins of the
     stripe forms (``--forms kconv,stripes,tapsum``);
  2. the dense network, trained for --epochs (NetAdapt's base and SWP's reference);
  3. ``hwadapt stripe`` from scratch for the same epochs: every export form checked, priced
     by both LUTs (a best form per backend) and measured on both agents, network and layer;
  4. ``hwadapt graft``: --nets networks grafted in a ring and the same networks alone;
  5. NetAdapt from the dense network to --budget-ratio on the ort-cpu LUT, its long-term
     fine-tune once plain and once grafted (--nets copies);
  6. stages 1-3 again for a wider network (--wide), on a shorter schedule: a CIFAR
     ResNet-20 at half width has layers of 8-32 filters, too narrow for a sparse form to
     pay for its extra op (its measured layers say so), where VGG-16's reach 128 at a
     quarter width.

    nice -n 19 python benchmarks/stripe_graft_cifar10.py --data ../shared/data/cifar10-jpeg.tar.gz \\
        --work runs/stripe_graft_cifar10 --out benchmarks/results/stripe_graft_cifar10
"""
from __future__ import annotations

import argparse
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from device_agents import make_agent
from hwadapt.adapt.report import AdaptReport
from hwadapt.adapt.workflow import adapt_network, prepare_job, subsets
from hwadapt.cli.common import reporter
from hwadapt.data import load_dataset
from hwadapt.families import build
from hwadapt.graft.workflow import GraftJob, GraftReport, run_graft
from hwadapt.lut.profile import build_lut
from hwadapt.materialize.torch_net import Net
from hwadapt.stripe.report import StripeReport
from hwadapt.stripe.skeleton import SkeletonSettings
from hwadapt.stripe.workflow import DESKTOP_BACKENDS, STRIPE_FORMS, StripeJob, run_stripe
from hwadapt.train import TrainConfig, fit

RESOLUTION = 32


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="CIFAR-10 JPEG folder or .tar.gz")
    parser.add_argument("--work", type=Path, required=True, help="checkpoints, LUTs, run folders")
    parser.add_argument("--out", type=Path, required=True, help="the small files worth keeping")
    parser.add_argument("--family", default="resnet20")
    parser.add_argument("--width", type=float, default=0.5)
    parser.add_argument("--train-images", type=int, default=4000)
    parser.add_argument("--holdout-images", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--sr", type=float, default=6e-3,
                        help="L1 on the skeleton: 6e-3 over this schedule moves a skeleton scale by about 1.1 (sr x "
                             "the sum of the learning rates / (1 - momentum)); the authors' 1e-5 over 160 epochs of "
                             "50 000 images, about 0.66; the wide network gets the same push as this one")
    parser.add_argument("--threshold", type=float, default=0.01, help="the authors' threshold")
    parser.add_argument("--nets", type=int, default=2)
    parser.add_argument("--calibration-models", type=int, default=30)
    parser.add_argument("--budget-ratio", type=float, default=0.85,
                        help="the narrowest ResNet-20 x0.5 (8 channels per group) is predicted at about 0.78 x")
    parser.add_argument("--long-epochs", type=int, default=4)
    parser.add_argument("--wide", default="vgg16:0.25", help="FAMILY:WIDTH of the wider network (stage 6); '' skips it")
    parser.add_argument("--wide-epochs", type=int, default=8)
    parser.add_argument("--wide-images", type=int, default=3000)
    return parser.parse_args()


@dataclass(frozen=True)
class Setup:
    """One network stripe-pruned: its family and width, its schedule, and where its runs go
    (``tag``: "" for the main network, else its family)."""

    family: str
    width: float
    epochs: int
    images: int
    sr: float
    tag: str = ""

    def folder(self, work: Path, stage: str) -> Path:
        return work / (f"{stage}_{self.tag}" if self.tag else stage)


def steps(epochs: int, images: int, batch_size: int) -> int:
    return epochs * -(-images // batch_size)


def same_push(args: argparse.Namespace, epochs: int, images: int) -> float:
    """The L1 strength that moves a skeleton as far over ``epochs`` of ``images`` as
    ``--sr`` does over the main schedule: a scale moves by sr times the sum of the learning
    rates (over 1 - momentum), and a schedule's sum is its steps times lr / 2 (cosine)."""
    return args.sr * steps(args.epochs, args.train_images, args.batch_size) / steps(epochs, images, args.batch_size)


class Stages:
    """Wall time per stage, summed over every invocation (a resumed run adds to it)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seconds: dict[str, float] = json.loads(path.read_text()) if path.is_file() else {}

    def run(self, name: str, work, *args, **kwargs):
        started = time.perf_counter()
        result = work(*args, **kwargs)
        self.seconds[name] = round(self.seconds.get(name, 0.0) + time.perf_counter() - started, 1)
        self.path.write_text(json.dumps(self.seconds, indent=2) + "\n")
        return result


def luts(args: argparse.Namespace, family: str, progress) -> list[Path]:
    paths = []
    for backend in DESKTOP_BACKENDS:
        path = args.work / f"lut_{backend}_{family}_{RESOLUTION}.parquet"
        with make_agent(backend, threads=1) as agent:
            build_lut(agent, family, RESOLUTION, path, num_classes=10, forms=STRIPE_FORMS,
                      calibration_models=args.calibration_models, reporter=progress)
        paths.append(path)
    return paths


def dense(args: argparse.Namespace, setup: Setup, progress) -> dict[str, Any]:
    splits = subsets(load_dataset(f"cifar10:{args.data}", RESOLUTION), setup.images, None, 0)
    net = Net(build(setup.family, width=setup.width, resolution=RESOLUTION, num_classes=10))
    return fit(net, splits, train_config(args, setup.epochs), setup.folder(args.work, "dense"),
               identity={"data": splits.source, "train_images": setup.images}, reporter=progress)


def train_config(args: argparse.Namespace, epochs: int | None = None) -> TrainConfig:
    return TrainConfig(epochs=epochs or args.epochs, lr=args.lr, batch_size=args.batch_size)


def stripe(args: argparse.Namespace, setup: Setup, tables: list[Path], progress) -> StripeReport:
    job = StripeJob(out=setup.folder(args.work, "stripe"), data=f"cifar10:{args.data}", family=setup.family,
                    width=setup.width, train=train_config(args, setup.epochs),
                    skeleton=SkeletonSettings(setup.sr, args.threshold), luts=tuple(tables), train_images=setup.images)
    return run_stripe(job, progress)


def graft(args: argparse.Namespace, progress) -> GraftReport:
    job = GraftJob(out=args.work / "graft", family=args.family, data=f"cifar10:{args.data}", nets=args.nets,
                   train=train_config(args), width=args.width, train_images=args.train_images)
    return run_graft(job, progress)


def netadapt(args: argparse.Namespace, lut: Path, copies: int, progress) -> AdaptReport:
    settings = {"first_step": 0.15, "decay": 0.9, "short_steps": 20, "short_lr": 0.01, "long_epochs": args.long_epochs,
                "long_lr": args.lr, "batch_size": args.batch_size, "max_iters": 6, "graft": copies}
    job, config = prepare_job("netadapt", args.work / "dense", lut, f"cifar10:{args.data}",
                              args.work / f"netadapt_graft{copies}", budget_ratio=args.budget_ratio,
                              settings=settings, train_images=args.train_images,
                              holdout_images=args.holdout_images, device="cpu", reporter=progress)
    return adapt_network(job, config)


def main() -> None:
    args = arguments()
    args.work.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    stages = Stages(args.out / "timings.json")
    setups = [Setup(args.family, args.width, args.epochs, args.train_images, args.sr)]
    if args.wide:
        family, width = args.wide.split(":")
        setups.append(Setup(family, float(width), args.wide_epochs, args.wide_images,
                            same_push(args, args.wide_epochs, args.wide_images), family))
    pruned: list[tuple[Setup, dict[str, Any], StripeReport]] = []
    with reporter() as progress:
        for setup in setups:
            stage = "6/6 " if setup.tag else ""
            progress.note(f"{stage or '1/6 '}LUTs of {setup.family} at {RESOLUTION} px with the stripe forms")
            tables = stages.run(f"luts{setup.tag}_s", luts, args, setup.family, progress)
            progress.note(f"{stage or '2/6 '}dense {setup.family} x{setup.width:g}, {setup.epochs} epochs on "
                          f"{setup.images} images")
            base = stages.run(f"dense{setup.tag}_s", dense, args, setup, progress)
            progress.note(f"{stage or '3/6 '}stripe-wise pruning (sr {setup.sr:g}, threshold {args.threshold:g})")
            pruned.append((setup, base, stages.run(f"stripe{setup.tag}_s", stripe, args, setup, tables, progress)))
            if setup.tag:
                continue
            progress.note(f"4/6 grafting: {args.nets} networks grafted and alone")
            grafted = stages.run("graft_s", graft, args, progress)
            progress.note(f"5/6 NetAdapt to {args.budget_ratio:g} x, long-term fine-tune plain and grafted")
            adapted = {copies: stages.run(f"netadapt_graft{copies}_s", netadapt, args, tables[0], copies, progress)
                       for copies in (0, args.nets)}
    copies = [(setup.folder(args.work, "stripe") / "report.json", f"stripe_{setup.family}_report.json")
              for setup, _, _ in pruned]
    copies += [(args.work / "graft" / "report.json", "graft_report.json"),
               *[(args.work / f"netadapt_graft{c}" / "report.json", f"netadapt_graft{c}_report.json") for c in adapted]]
    for source, name in copies:
        shutil.copyfile(source, args.out / name)
    text = tables_md(args, pruned, grafted, adapted, stages.seconds)
    (args.out / "results.md").write_text(text)
    print(text)


FORM_COLUMNS = ("dense", "kernel", "stripe", "tapsum")


def tables_md(args, pruned: list[tuple[Setup, dict[str, Any], StripeReport]], grafted: GraftReport,
              adapted: dict[int, AdaptReport], seconds: dict[str, float]) -> str:
    """The benchmark's tables in Markdown."""
    lines = [f"# Stripe-wise pruning and filter grafting on CIFAR-10 at {RESOLUTION} px", "",
             f"Batch {args.batch_size}, lr {args.lr:g} (cosine), test on the 10 000 test images; latency on "
             f"{', '.join(pruned[0][2].backends)}, 1 thread. Wall time per stage (s): {json.dumps(seconds)}", ""]
    for setup, base, swp in pruned:
        lines += swp_tables(setup, base, swp)
    lines += graft_table(grafted) + netadapt_table(args, adapted)
    return "\n".join(lines) + "\n"


def swp_tables(setup: Setup, base: dict[str, Any], swp: StripeReport) -> list[str]:
    backends = swp.backends
    lines = [f"## SWP on {setup.family} x{setup.width:g}: {setup.images} training images, {setup.epochs} epochs", "",
             "| network | test accuracy | MACs | stripes pruned | FLOPs reduction |", "|---|---|---|---|---|",
             f"| dense | {base['test_accuracy']:.4f} | {swp.macs_dense:,} | - | - |",
             f"| SWP (sr {swp.sr:.3g}, threshold {swp.threshold:g}) | {swp.test_accuracy:.4f} | {swp.macs_pruned:,} | "
             f"{swp.stripe_sparsity:.1%} | {swp.flops_reduction:.1%} |", "",
             "### Every export form, end to end", "",
             "| form | ops | MACs executed | max abs diff (pytorch / onnx / tflite) | "
             + " | ".join(f"{b} predicted ms | {b} measured ms (spread) | {b} speedup" for b in backends) + " |",
             "|---|---|---|---|" + "---|---|---|" * len(backends)]
    for name, form in swp.forms.items():
        diffs = " / ".join(f"{form.max_abs_diff[k]:.1e}" for k in ("pytorch", "onnx", "tflite"))
        cells = " | ".join((f"{form.predicted_ms[b]:.4f}" if b in form.predicted_ms else "-")
                           + f" | {form.measured_ms[b]:.4f} (±{form.spread_pct[b] / 2:.1f}%) | {form.speedup[b]:.2f}x"
                           for b in backends)
        lines.append(f"| {name} | {form.ops} | {form.macs:,} | {diffs} | {cells} |")
    lines += ["", "### Per layer, each form alone (measured ms: " + " / ".join(FORM_COLUMNS)
              + "; the LUT's pick per backend)", "",
              "| layer | shape | stripes alive | live window | "
              + " | ".join(f"{b} | {b} pick" for b in backends) + " |",
              "|---|---|---|---|" + "---|---|" * len(backends)]
    for layer in swp.layers:
        cells = []
        for b in backends:
            ms = layer.measured_ms.get(b, {})
            cells += [" / ".join(f"{ms[f]:.4f}" if f in ms else "-" for f in FORM_COLUMNS), layer.chosen.get(b, "-")]
        lines.append(f"| {layer.name} | {layer.shape} | {layer.stripes}/{layer.total} | {layer.window} | "
                     + " | ".join(cells) + " |")
    lines += ["", f"Bypassed blocks (a second convolution lost every stripe): {swp.bypassed or 'none'}. "
              + " ".join(swp.notes), ""]
    priced = [b for b in backends if any(layer.predicted_parts_ms.get(b) for layer in swp.layers)]
    if priced:
        lines += ["### Where each form's time goes, by the LUT (µs per op kind: the 1x1 maps, then the shift-add)", "",
                  "| layer | " + " | ".join(f"{b}: dense | {b}: stripe | {b}: tapsum" for b in priced) + " |",
                  "|---|" + "---|---|---|" * len(priced)]
        for layer in swp.layers:
            parts = [layer.predicted_parts_ms.get(b, {}).get(form, {}) for b in priced for form in ("dense", "stripe",
                                                                                                  "tapsum")]
            cells = [" + ".join(f"{kind} {ms * 1000:.1f}" for kind, ms in part.items()) or "-" for part in parts]
            lines.append(f"| {layer.name} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def graft_table(grafted: GraftReport) -> list[str]:
    lines = [f"## Grafting: {grafted.family} x{grafted.width:g}, {grafted.nets} networks, {grafted.epochs} epochs, "
             f"level {grafted.settings['level']}, A {grafted.settings['a']:g}, c {grafted.settings['c']:g}, "
             f"difflr {grafted.difflr}", "",
             "| network | lr | grafted test accuracy | independent test accuracy | gain |", "|---|---|---|---|---|"]
    for row in grafted.networks:
        lines.append(f"| net{row['rank']} | {row['lr']:.3g} | {row['grafted_test_accuracy']:.4f} | "
                     f"{row['independent_test_accuracy']:.4f} | {row['gain'] * 100:+.2f} points |")
    return lines + [f"| mean | | | | {grafted.mean_gain * 100:+.2f} points (the paper: +1.1 to +1.8) |", ""]


def netadapt_table(args, adapted: dict[int, AdaptReport]) -> list[str]:
    lines = [f"## NetAdapt to {args.budget_ratio:g} x the dense network's predicted latency (ort-cpu LUT), "
             f"long-term fine-tune {args.long_epochs} epochs", "",
             "| long-term fine-tune | measured ms (spread) | base measured ms | test accuracy | base test accuracy | "
             "wall s |", "|---|---|---|---|---|---|"]
    for copies, report in adapted.items():
        how = f"grafted, {copies} copies (best on the holdout kept)" if copies else "one network"
        lines.append(f"| {how} | {report.measured_ms:.4f} (±{(report.measured_spread_pct or 0) / 2:.1f}%) | "
                     f"{report.base_measured_ms:.4f} | {report.test_accuracy:.4f} | {report.base_test_accuracy:.4f} | "
                     f"{report.wall_s:.0f} |")
    return lines


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
