"""Stripe-wise pruning and filter grafting on CIFAR-10, on a schedule a 2-core CPU runs in
about an hour: does any export form of a stripe-pruned network run faster than the dense
network on ONNX Runtime or LiteRT, and does grafting beat independent training at equal
epochs, alone and as NetAdapt's long-term fine-tune?

Stages (each resumes when re-run with the same arguments; the work folder holds the
checkpoints and tables, the results folder only small files):
  1. a LUT of the family at 32 px on ort-cpu and on litert-cpu, with the stand-ins of the
     stripe forms (``--forms kconv,stripes,tapsum``);
  2. the dense network, trained for --epochs (NetAdapt's base and SWP's reference);
  3. ``hwadapt stripe`` from scratch for the same epochs: every export form checked, priced
     by both LUTs (a best form per backend) and measured on both agents, network and layer;
  4. ``hwadapt graft``: --nets networks grafted in a ring and the same networks alone;
  5. NetAdapt from the dense network to --budget-ratio on the ort-cpu LUT, its long-term
     fine-tune once plain and once grafted (--nets copies).

    nice -n 19 python benchmarks/stripe_graft_cifar10.py --data ../shared/data/cifar10-jpeg.tar.gz \\
        --work runs/stripe_graft_cifar10 --out benchmarks/results/stripe_graft_cifar10
"""
from __future__ import annotations

import argparse
import json
import shutil
import time
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
                        help="L1 on the skeleton: the authors' 1e-5 over 160 epochs of 50 000 images moves a skeleton "
                             "about as far as 6e-3 over this schedule (a push of about 1)")
    parser.add_argument("--threshold", type=float, default=0.01, help="the authors' threshold")
    parser.add_argument("--nets", type=int, default=2)
    parser.add_argument("--calibration-models", type=int, default=30)
    parser.add_argument("--budget-ratio", type=float, default=0.7)
    parser.add_argument("--long-epochs", type=int, default=4)
    return parser.parse_args()


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


def luts(args: argparse.Namespace, progress) -> list[Path]:
    paths = []
    for backend in DESKTOP_BACKENDS:
        path = args.work / f"lut_{backend}_{args.family}_{RESOLUTION}.parquet"
        with make_agent(backend, threads=1) as agent:
            build_lut(agent, args.family, RESOLUTION, path, num_classes=10, forms=STRIPE_FORMS,
                      calibration_models=args.calibration_models, reporter=progress)
        paths.append(path)
    return paths


def dense(args: argparse.Namespace, progress) -> dict[str, Any]:
    splits = subsets(load_dataset(f"cifar10:{args.data}", RESOLUTION), args.train_images, None, 0)
    net = Net(build(args.family, width=args.width, resolution=RESOLUTION, num_classes=10))
    config = TrainConfig(epochs=args.epochs, lr=args.lr, batch_size=args.batch_size)
    return fit(net, splits, config, args.work / "dense", identity={"data": splits.source,
                                                                     "train_images": args.train_images},
               reporter=progress)


def train_config(args: argparse.Namespace, epochs: int | None = None) -> TrainConfig:
    return TrainConfig(epochs=epochs or args.epochs, lr=args.lr, batch_size=args.batch_size)


def stripe(args: argparse.Namespace, tables: list[Path], progress) -> StripeReport:
    job = StripeJob(out=args.work / "stripe", data=f"cifar10:{args.data}", family=args.family, width=args.width,
                    train=train_config(args), skeleton=SkeletonSettings(args.sr, args.threshold), luts=tuple(tables),
                    train_images=args.train_images)
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
    with reporter() as progress:
        progress.note(f"1/5 LUTs of {args.family} at {RESOLUTION} px with the stripe forms")
        tables = stages.run("luts_s", luts, args, progress)
        progress.note(f"2/5 dense {args.family} x{args.width:g}, {args.epochs} epochs on {args.train_images} images")
        base = stages.run("dense_s", dense, args, progress)
        progress.note(f"3/5 stripe-wise pruning (sr {args.sr:g}, threshold {args.threshold:g})")
        swp = stages.run("stripe_s", stripe, args, tables, progress)
        progress.note(f"4/5 grafting: {args.nets} networks grafted and alone")
        grafted = stages.run("graft_s", graft, args, progress)
        progress.note(f"5/5 NetAdapt to {args.budget_ratio:g} x, long-term fine-tune plain and grafted")
        adapted = {copies: stages.run(f"netadapt_graft{copies}_s", netadapt, args, tables[0], copies, progress)
                   for copies in (0, args.nets)}
    for source, name in [(args.work / "stripe" / "report.json", "stripe_report.json"),
                         (args.work / "graft" / "report.json", "graft_report.json"),
                         *[(args.work / f"netadapt_graft{c}" / "report.json", f"netadapt_graft{c}_report.json")
                           for c in adapted]]:
        shutil.copyfile(source, args.out / name)
    text = tables_md(args, base, swp, grafted, adapted, stages.seconds)
    (args.out / "results.md").write_text(text)
    print(text)


def tables_md(args, base: dict, swp: StripeReport, grafted: GraftReport, adapted: dict[int, AdaptReport],
              seconds: dict[str, float]) -> str:
    """The benchmark's tables in Markdown."""
    backends = swp.backends
    lines = [f"# Stripe-wise pruning and filter grafting, {args.family} x{args.width:g}, CIFAR-10 {RESOLUTION} px",
             "", f"{args.train_images} training images, {args.epochs} epochs (batch {args.batch_size}, lr {args.lr:g}, "
             f"cosine), test on the 10 000 test images; latency on {', '.join(backends)}, 1 thread. "
             f"Wall time per stage (s): {json.dumps(seconds)}", "",
             "## SWP against the dense network", "",
             "| network | test accuracy | MACs | stripes pruned | FLOPs reduction |", "|---|---|---|---|---|",
             f"| dense | {base['test_accuracy']:.4f} | {swp.macs_dense:,} | - | - |",
             f"| SWP (sr {swp.sr:g}, threshold {swp.threshold:g}) | {swp.test_accuracy:.4f} | {swp.macs_pruned:,} | "
             f"{swp.stripe_sparsity:.1%} | {swp.flops_reduction:.1%} |", "",
             "## Every export form of the SWP network, end to end", "",
             "| form | ops | MACs executed | max abs diff (pytorch / onnx / tflite) | "
             + " | ".join(f"{b} predicted ms | {b} measured ms (spread) | {b} speedup" for b in backends) + " |",
             "|---|---|---|---|" + "---|---|---|" * len(backends)]
    for name, form in swp.forms.items():
        diffs = " / ".join(f"{form.max_abs_diff[k]:.1e}" for k in ("pytorch", "onnx", "tflite"))
        cells = " | ".join(f"{form.predicted_ms.get(b, float('nan')):.4f} | {form.measured_ms[b]:.4f} "
                           f"(±{form.spread_pct[b] / 2:.1f}%) | {form.speedup[b]:.2f}x" for b in backends)
        lines.append(f"| {name} | {form.ops} | {form.macs:,} | {diffs} | {cells} |")
    lines += ["", "## Per layer, each form alone (measured ms; the LUT's pick per backend)", "",
              "| layer | shape | stripes alive | live window | "
              + " | ".join(f"{b}: " + " / ".join(("dense", "kernel", "stripe", "tapsum")) + " | pick" for b in backends)
              + " |", "|---|---|---|---|" + "---|---|" * len(backends)]
    for layer in swp.layers:
        cells = []
        for b in backends:
            ms = layer.measured_ms.get(b, {})
            cells.append(" / ".join(f"{ms[f]:.4f}" if f in ms else "-" for f in ("dense", "kernel", "stripe",
                                                                                   "tapsum")))
            cells.append(layer.chosen.get(b, "-"))
        lines.append(f"| {layer.name} | {layer.shape} | {layer.stripes}/{layer.total} | {layer.window} | "
                     + " | ".join(cells) + " |")
    lines += ["", f"Bypassed blocks (a second convolution lost every stripe): {swp.bypassed or 'none'}. "
              + " ".join(swp.notes), "",
              f"## Grafting: {grafted.nets} networks, {grafted.epochs} epochs, level {grafted.settings['level']}, "
              f"A {grafted.settings['a']:g}, c {grafted.settings['c']:g}, difflr {grafted.difflr}", "",
              "| network | lr | grafted test accuracy | independent test accuracy | gain |", "|---|---|---|---|---|"]
    for row in grafted.networks:
        lines.append(f"| net{row['rank']} | {row['lr']:.3g} | {row['grafted_test_accuracy']:.4f} | "
                     f"{row['independent_test_accuracy']:.4f} | {row['gain'] * 100:+.2f} points |")
    lines += [f"| mean | | | | {grafted.mean_gain * 100:+.2f} points (the paper: +1.1 to +1.8) |", "",
              f"## NetAdapt to {args.budget_ratio:g} x the dense network's predicted latency (ort-cpu LUT), "
              f"long-term fine-tune {args.long_epochs} epochs", "",
              "| long-term fine-tune | measured ms (spread) | base measured ms | test accuracy | base test accuracy | "
              "wall s |", "|---|---|---|---|---|---|"]
    for copies, report in adapted.items():
        how = f"grafted, {copies} copies (best on the holdout kept)" if copies else "one network"
        lines.append(f"| {how} | {report.measured_ms:.4f} (±{(report.measured_spread_pct or 0) / 2:.1f}%) | "
                     f"{report.base_measured_ms:.4f} | {report.test_accuracy:.4f} | {report.base_test_accuracy:.4f} | "
                     f"{report.wall_s:.0f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
