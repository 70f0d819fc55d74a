"""NetAdapt vs the width-multiplier baseline on CIFAR-10 (32 px), measured on ORT-CPU.

Stages (each resumes when re-run with the same arguments and --out):
  1. LUT of the family at 32 px on ort-cpu, 1 thread (``build_lut``), unless --lut;
  2. base network trained for --epochs;
  3. NetAdapt to --budget-ratio x the base's predicted latency (short-term fine-tunes of
     --short-steps steps, long-term fine-tune of --long-epochs epochs);
  4. width-multiplier baseline, each network trained from scratch for as many epochs as
     the NetAdapt result had in total (pretraining + its path's short-term steps + long-term);
  5. the table: measured latency, test accuracy, and the measured speedup of the NetAdapt
     result over the baseline interpolated to the same test accuracy.

Prints the table and writes results.csv, timings.json and pareto.png under --out, with
copies of NetAdapt's report.json and family.csv (from --out/adapt) and of baseline.csv
(from --out/baseline).

    python benchmarks/netadapt_cifar10.py --data /path/to/cifar10-jpeg.tar.gz \\
        --out benchmarks/results/netadapt_cifar10
"""
from __future__ import annotations

import argparse
import json
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from device_agents import make_agent
from hwadapt.adapt.baseline import Curve, matched_epochs, parse_multipliers, train_curve
from hwadapt.adapt.netadapt import NetAdaptSettings
from hwadapt.adapt.plot import pareto_png
from hwadapt.adapt.registry import AdaptJob
from hwadapt.adapt.report import REPORT_FILE, AdaptReport
from hwadapt.adapt.workflow import FAMILY_FILE, adapt_network, prepare_job, subsets
from hwadapt.cli.common import reporter
from hwadapt.data import load_dataset
from hwadapt.families import build
from hwadapt.lut.predictor import LatencyPredictor
from hwadapt.lut.profile import build_lut
from hwadapt.materialize.torch_net import Net
from hwadapt.progress import Reporter
from hwadapt.train import TrainConfig, fit


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="CIFAR-10 folder or .tar.gz (train/<class>, test/<class>)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/netadapt_cifar10"))
    parser.add_argument("--family", default="mobilenet_v1")
    parser.add_argument("--width", type=float, default=1.0, help="width multiplier of the base network")
    parser.add_argument("--lut", type=Path, help="an existing LUT (else one is profiled into --out)")
    parser.add_argument("--epochs", type=int, default=30, help="base training epochs")
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--budget-ratio", type=float, default=0.5)
    parser.add_argument("--first-step", type=float, default=NetAdaptSettings.first_step)
    parser.add_argument("--decay", type=float, default=NetAdaptSettings.decay)
    parser.add_argument("--short-steps", type=int, default=100)
    parser.add_argument("--short-lr", type=float, default=0.01)
    parser.add_argument("--long-epochs", type=int, default=10)
    parser.add_argument("--long-lr", type=float, default=0.1,
                        help="long-term fine-tune lr (restarting the long-term fine-tune of a full run's result at "
                             "0.01, 0.05, 0.1 and 0.2, 0.1 gave the most accurate network)")
    parser.add_argument("--multipliers", default="1.0,0.75,0.5,0.35,0.25",
                        help="baseline widths, relative to --width")
    parser.add_argument("--train-subset", type=int, default=0, help="train on this many images (0: all)")
    parser.add_argument("--holdout-subset", type=int, default=0,
                        help="select proposals on this many holdout images (0: all 5000)")
    parser.add_argument("--threads", type=int, default=1)
    return parser.parse_args()


def speedup_at_equal_accuracy(result: AdaptReport, baseline: pd.DataFrame) -> tuple[float, str]:
    """Latency of the baseline's Pareto front at the NetAdapt result's test accuracy (linear
    between front points), over the result's latency. Outside the front's accuracy range the
    figure is a bound: ">=" when no baseline network is as accurate (its most accurate one is
    used), "<=" when even the fastest front network is more accurate."""
    ordered = baseline.sort_values("measured_ms")
    front = ordered[ordered["test_accuracy"] >= ordered["test_accuracy"].cummax()]
    accuracy, latency = front["test_accuracy"].to_numpy(), front["measured_ms"].to_numpy()
    target = result.test_accuracy
    if target > accuracy[-1]:
        return float(latency[-1] / result.measured_ms), ">="
    if target < accuracy[0]:
        return float(latency[0] / result.measured_ms), "<="
    return float(np.interp(target, accuracy, latency) / result.measured_ms), "="


def search_seconds_to(family: pd.DataFrame, fraction: float) -> float | None:
    """Training seconds NetAdapt's search spent until a member was predicted at ``fraction``
    of the base latency (``family.csv``'s per-member seconds survive interruptions)."""
    search = family[family["stage"] != "long-term"]
    reached = search.index[search["predicted_ms"] <= fraction * search["predicted_ms"].iloc[0]]
    return float(search.loc[:reached[0], "seconds"].sum()) if len(reached) else None


def netadapt_job(args: argparse.Namespace, lut: Path, progress: Reporter) -> tuple[AdaptJob, Any]:
    """``hwadapt adapt``'s job for the base network, on the benchmark's subsets."""
    settings = {"first_step": args.first_step, "decay": args.decay, "short_steps": args.short_steps,
                "short_lr": args.short_lr, "long_epochs": args.long_epochs, "long_lr": args.long_lr,
                "batch_size": args.batch_size}
    return prepare_job("netadapt", args.out / "base", lut, f"cifar10:{args.data}", args.out / "adapt",
                       budget_ratio=args.budget_ratio, settings=settings, train_images=args.train_subset or None,
                       holdout_images=args.holdout_subset or None, reporter=progress)


def main() -> None:
    args = arguments()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    timings_file = args.out / "timings.json"
    timings: dict[str, float] = json.loads(timings_file.read_text()) if timings_file.is_file() else {}

    def stage(name: str, start: float) -> None:
        """Wall time per stage, summed over every invocation (a resumed run adds to it)."""
        timings[name] = round(timings.get(name, 0.0) + time.perf_counter() - start, 1)
        timings_file.write_text(json.dumps(timings, indent=2) + "\n")

    with reporter() as progress:
        start = time.perf_counter()
        lut = args.lut or args.out / f"lut_{args.family}_32.parquet"
        if args.lut is None:
            progress.note(f"1/4 LUT of {args.family} at 32 px on ort-cpu -> {lut}")
            with make_agent("ort-cpu", threads=1) as agent:
                build_lut(agent, args.family, 32, lut, num_classes=10, reporter=progress)
        predictor = LatencyPredictor.load(lut)
        stage("lut_s", start)

        start = time.perf_counter()
        splits = subsets(load_dataset(f"cifar10:{args.data}", 32), args.train_subset, args.holdout_subset, 0)
        data_id = {"data": splits.source, "train_subset": args.train_subset, "holdout_subset": args.holdout_subset}
        progress.note(f"2/4 base {args.family} x{args.width:g}, {args.epochs} epochs on {len(splits.train)} images")
        base = Net(build(args.family, width=args.width, resolution=32, num_classes=10))
        train = TrainConfig(epochs=args.epochs, lr=args.lr, batch_size=args.batch_size)
        fit(base, splits, train, args.out / "base", identity=data_id, reporter=progress)
        stage("train_s", start)

        start = time.perf_counter()
        job, config = netadapt_job(args, lut, progress)
        progress.note(f"3/4 NetAdapt to {job.budget_ms:.4g} ms ({args.budget_ratio:g} x the base, predicted)")
        result = adapt_network(job, config)
        stage("netadapt_s", start)

        start = time.perf_counter()
        epochs = matched_epochs(job.out, args.out / "base", job.splits, args.batch_size)
        multipliers = [args.width * m for m in parse_multipliers(args.multipliers)]
        progress.note(f"4/4 width multipliers {multipliers}, {epochs} epochs each (NetAdapt's training budget)")
        baseline = train_curve(Curve(args.family, multipliers, job.splits, replace(train, epochs=epochs),
                                     args.out / "baseline", predictor, progress))
        stage("baseline_s", start)

    speedup, relation = speedup_at_equal_accuracy(result, baseline)
    rows = [{"network": "base", "predicted_ms": result.base_predicted_ms, "measured_ms": result.base_measured_ms,
             "measured_spread_pct": result.base_measured_spread_pct, "test_accuracy": result.base_test_accuracy},
            {"network": "netadapt", "predicted_ms": result.predicted_ms, "measured_ms": result.measured_ms,
             "measured_spread_pct": result.measured_spread_pct, "test_accuracy": result.test_accuracy}]
    rows += [{"network": f"x{m:g}", "predicted_ms": p, "measured_ms": ms, "measured_spread_pct": sp, "test_accuracy": a}
             for m, p, ms, sp, a in baseline[["multiplier", "predicted_ms", "measured_ms", "measured_spread_pct",
                                              "test_accuracy"]].itertuples(index=False)]
    table = pd.DataFrame(rows)
    table.to_csv(args.out / "results.csv", index=False)
    for source in (job.out / REPORT_FILE, job.out / FAMILY_FILE, args.out / "baseline" / "baseline.csv"):
        shutil.copyfile(source, args.out / source.name)  # the run's figures beside its table
    family = pd.read_csv(job.out / FAMILY_FILE)
    pareto_png(args.out / "pareto.png", family, baseline, result.budget_ms,
               title=f"{args.family} x{args.width:g}, CIFAR-10 32 px, ort-cpu", method=result.method)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"budget {result.budget_ms:.4f} ms (predicted); NetAdapt measured/predicted "
          f"{result.measured_ms / result.predicted_ms:.3f}; speedup over the base {result.measured_speedup:.2f}x")
    print(f"measured speedup over the width-multiplier baseline at equal test accuracy: {relation} {speedup:.2f}x")
    print(f"wall time (s): {timings}; baseline epochs per network: {epochs}")
    print(f"NetAdapt search training time to half the base latency (s): {search_seconds_to(family, 0.5)}")


if __name__ == "__main__":
    main()
