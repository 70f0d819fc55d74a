"""Lottery tickets, supermasks and what sparse networks cost, on CIFAR-10 (reduced schedule).

Stages (each resumes when re-run with the same arguments and --work):
  1. two lottery runs (`hwadapt lottery`) of ResNet-20 x--width on --train-images images,
     --epochs per level, --levels levels pruning --rate of the remaining weights: rewinding
     to step 0 (the original hypothesis) and to --rewind-steps (default: one epoch), each
     with its random re-init and random-mask controls;
  2. supermasks (`hwadapt supermask`) on the same initial weights: every criterion at
     --criteria-sparsity (final weights: the rewinding run's dense level 0), a learned
     supermask and edge-popup (--supermask-epochs of score training);
  3. a channel-structured ticket: NetAdapt (reduced settings) on a ResNet-20 LUT of ort-cpu,
     from the dense level 0, to --budget-ratio of its latency; its architecture retrained
     from the rewound base weights and from scratch at the tickets' steps, next to NetAdapt's
     own fine-tuned result (long-term fine-tune of as many epochs);
  4. latency: the dense parent, tickets near 80% sparsity and at the last level (dense and
     sparse files), the structured ticket, on ort-cpu and litert-cpu (1 thread); and
     MobileNetV1 x1.0 at 224 px with 90%-sparse 1x1 convolutions, the network XNNPACK's
     sparse inference was built for, in SAME and in symmetric-padding form, dense and sparse.

Prints the tables and writes CSV and PNG files into --out (no checkpoints: those stay in --work).

    nice -n 19 python benchmarks/lottery_cifar10.py --data ../shared/data/cifar10-jpeg.tar.gz \\
        --out benchmarks/results/lottery_cifar10 --work runs/lottery_cifar10
"""
from __future__ import annotations

import argparse
import json
import platform
import subprocess
import time
from dataclasses import asdict, replace
from datetime import datetime, timezone
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from device_agents import make_agent  # noqa: E402
from device_agents.base import host_cpu_model  # noqa: E402
from hwadapt.adapt.workflow import adapt_network, prepare_job  # noqa: E402
from hwadapt.arch import Arch  # noqa: E402
from hwadapt.cli.common import reporter  # noqa: E402
from hwadapt.families import build  # noqa: E402
from hwadapt.lottery.cost import Form, measure_forms  # noqa: E402
from hwadapt.lottery.criteria import CRITERIA  # noqa: E402
from hwadapt.lottery.imp import LotteryJob, LotterySettings, prepare_lottery, run_lottery, trained_arm  # noqa: E402
from hwadapt.lottery.masks import apply_masks, dense_masks  # noqa: E402
from hwadapt.lottery.prune import magnitude_masks  # noqa: E402
from hwadapt.lottery.structured import structured_arms  # noqa: E402
from hwadapt.lottery.supermask import SupermaskSettings, run_supermask  # noqa: E402
from hwadapt.lut.profile import build_lut  # noqa: E402
from hwadapt.materialize.torch_net import Net, load_checkpoint  # noqa: E402

FAMILY, RESOLUTION = "resnet20", 32
TARGET_SPARSITY = 0.8  # where the targets are read
# NetAdapt settings that fit this host (compare_methods' reduced ones, fewer short-term steps)
NETADAPT = {"first_step": 0.05, "decay": 0.96, "short_steps": 30, "short_lr": 0.01, "long_lr": 0.05}
SPARSE_PATH_SPARSITY = 0.9  # of MobileNetV1's 1x1 convolutions (XNNPACK needs at least 2/3)


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="CIFAR-10 folder or .tar.gz (train/<class>, test/<class>)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/lottery_cifar10"))
    parser.add_argument("--work", type=Path, default=Path("runs/lottery_cifar10"), help="checkpoints, LUT, runs")
    parser.add_argument("--width", type=float, default=0.5)
    parser.add_argument("--train-images", type=int, default=4000)
    parser.add_argument("--holdout-images", type=int, default=1000, help="NetAdapt's selection images")
    parser.add_argument("--epochs", type=int, default=10, help="epochs of the schedule of every level")
    parser.add_argument("--levels", type=int, default=8)
    parser.add_argument("--rate", type=float, default=0.2)
    parser.add_argument("--lr", type=float, default=0.1, help="SGD learning rate of every level (open_lth's)")
    parser.add_argument("--rewind-steps", type=int, default=None, help="the early rewind step (default: one epoch)")
    parser.add_argument("--criteria-sparsity", default="0.5,0.8")
    parser.add_argument("--supermask-sparsity", type=float, default=0.5, help="edge-popup's")
    parser.add_argument("--supermask-epochs", type=int, default=12)
    parser.add_argument("--budget-ratio", type=float, default=0.8,
                        help="NetAdapt's budget, x the base latency (at x0.5 the narrowest network is 0.75)")
    parser.add_argument("--windows", type=int, default=5, help="measurement windows per latency figure")
    parser.add_argument("--threads", type=int, default=1)
    return parser.parse_args()


class Clock:
    """Wall and CPU seconds per stage of this invocation."""

    def __init__(self) -> None:
        self.stages: dict[str, dict[str, float]] = {}

    def stage(self, name: str, work):
        wall, cpu = time.perf_counter(), time.process_time()
        print(f"== {name}", flush=True)
        result = work()
        self.stages[name] = {"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu}
        return result


# -- 1. lottery -------------------------------------------------------------------------------
def lottery_settings(args, rewind_steps: int) -> LotterySettings:
    return LotterySettings(family=FAMILY, data=f"cifar10:{args.data}", width=args.width, resolution=RESOLUTION,
                           levels=args.levels, rate=args.rate, rewind_steps=rewind_steps, epochs=args.epochs,
                           lr=args.lr, train_images=args.train_images)


def lottery_runs(args) -> dict[int, LotteryJob]:
    """The early-rewinding run and the rewind-to-0 run (the early step: one epoch unless given)."""
    probe = prepare_lottery(lottery_settings(args, 0), args.work / "lottery_k0")
    early = args.rewind_steps if args.rewind_steps is not None else probe.schedule.per_epoch
    jobs = {}
    for k in (early, 0):
        with reporter() as progress:
            job = prepare_lottery(lottery_settings(args, k), args.work / f"lottery_k{k}", reporter=progress)
            run_lottery(job)
        jobs[k] = job
    return jobs


def accuracy_table(jobs: dict[int, LotteryJob]) -> pd.DataFrame:
    frames = []
    for k, job in jobs.items():
        levels = pd.read_csv(job.out / "levels.csv")
        frames.append(levels.rename(columns={c: f"{c}_k{k}" for c in levels.columns if c.endswith("accuracy")}))
    merged = frames[0]
    for frame in frames[1:]:
        merged = merged.merge(frame, on=["level", "sparsity"])
    return merged


def at_sparsity(table: pd.DataFrame, column: str, sparsity: float) -> float:
    """``column`` linearly interpolated at ``sparsity`` between the levels around it (NaN
    when no level reached it)."""
    if table["sparsity"].max() < sparsity:
        return float("nan")
    return float(np.interp(sparsity, table["sparsity"], table[column]))


def targets(table: pd.DataFrame, k: int) -> dict:
    """The issue's target at 80% sparsity for the rewinding run ``k``: the ticket within 1
    point of the dense network and 2 points above both controls."""
    dense = float(table[f"test_accuracy_k{k}"].iloc[0])
    ticket, reinit, random_mask = (at_sparsity(table, f"{c}_k{k}", TARGET_SPARSITY)
                                   for c in ("test_accuracy", "reinit_accuracy", "random_mask_accuracy"))
    return {"rewind_steps": k, "dense": dense, "ticket_at_80": ticket, "reinit_at_80": reinit,
            "random_mask_at_80": random_mask, "ticket_minus_dense_pts": 100 * (ticket - dense),
            "ticket_minus_reinit_pts": 100 * (ticket - reinit),
            "ticket_minus_random_mask_pts": 100 * (ticket - random_mask),
            "within_1_point_of_dense": ticket >= dense - 0.01,
            "2_points_above_both_controls": ticket >= max(reinit, random_mask) + 0.02}


# -- 2. supermasks ----------------------------------------------------------------------------
def supermasks(args, lottery: LotteryJob) -> pd.DataFrame:
    rows = []
    runs = [(method, float(s)) for s in args.criteria_sparsity.split(",") for method in CRITERIA]
    runs += [("learned", args.supermask_sparsity), ("edge-popup", args.supermask_sparsity)]
    for method, sparsity in runs:
        settings = SupermaskSettings(family=FAMILY, data=f"cifar10:{args.data}", method=method, width=args.width,
                                     resolution=RESOLUTION, sparsity=sparsity, epochs=args.supermask_epochs,
                                     train_images=args.train_images, lottery=str(lottery.out))
        with reporter() as progress:
            report = run_supermask(settings, args.work / "supermask" / f"{method}_{sparsity:g}", reporter=progress)
        rows.append({"method": method, "requested_sparsity": sparsity if method != "learned" else None,
                     "sparsity": report.sparsity, "test_accuracy": report.test_accuracy,
                     "thresholded_accuracy": report.details.get("thresholded_accuracy")})
    return pd.DataFrame(rows)


# -- 3. the structured ticket -------------------------------------------------------------------
def structured(args, lottery: LotteryJob) -> tuple[pd.DataFrame, Net]:
    lut = args.work / f"lut_{FAMILY}_{RESOLUTION}.parquet"
    with make_agent("ort-cpu", threads=1) as agent, reporter() as progress:
        if not lut.exists() or lut.with_suffix(".journal.jsonl").exists():
            build_lut(agent, FAMILY, RESOLUTION, lut, num_classes=10, reporter=progress)
    epochs_after_rewind = (lottery.schedule.total - lottery.settings.rewind_steps) / lottery.schedule.per_epoch
    settings = {**NETADAPT, "long_epochs": round(epochs_after_rewind)}
    with reporter() as progress:
        job, config = prepare_job("netadapt", lottery.folder(0), lut, f"cifar10:{args.data}", args.work / "netadapt",
                                  budget_ratio=args.budget_ratio, settings=settings, train_images=args.train_images,
                                  holdout_images=args.holdout_images, device="cpu", reporter=progress)
        report = adapt_network(job, config)
    target = Arch.from_dict(report.arch)
    with reporter() as progress:
        accuracies = structured_arms(replace(lottery, reporter=progress), target)
    rows = [{"arm": "dense parent", "test_accuracy": report.base_test_accuracy, "measured_ms": report.base_measured_ms,
             "spread_pct": report.base_measured_spread_pct},
            {"arm": "rewound (NetAdapt's widths, L2 channels, weights at step k)",
             "test_accuracy": accuracies["rewound"]},
            {"arm": "scratch (NetAdapt's widths, random init)", "test_accuracy": accuracies["scratch"]},
            {"arm": "NetAdapt fine-tuned (its own result)", "test_accuracy": report.test_accuracy,
             "measured_ms": report.measured_ms, "spread_pct": report.measured_spread_pct}]
    frame = pd.DataFrame(rows)
    frame["steps"] = [lottery.schedule.total, *[lottery.schedule.total - lottery.settings.rewind_steps] * 2,
                      f"{settings['long_epochs']} epochs + short-term fine-tunes"]
    frame.attrs.update(netadapt_iterations=report.details.get("iterations"), budget_ms=report.budget_ms,
                       predicted_ms=report.predicted_ms, widths=[b["out"] for b in report.arch["blocks"]])
    rewound, _ = load_checkpoint(lottery.out / "structured" / "rewound")
    return frame, rewound


# -- 4. latency ---------------------------------------------------------------------------------
def level_near(table: pd.DataFrame, sparsity: float) -> int:
    return int(table.iloc[(table["sparsity"] - sparsity).abs().argmin()]["level"])


def resnet_forms(lottery: LotteryJob, table: pd.DataFrame, structured_net: Net) -> list[Form]:
    dense, _ = trained_arm(lottery, 0)
    near = level_near(table, TARGET_SPARSITY)
    last = int(table["level"].max())
    forms = [Form("dense parent", dense)]
    for level in sorted({near, last}):
        ticket, _ = trained_arm(lottery, level)
        share = f"{table.loc[table.level == level, 'sparsity'].item():.0%}"
        forms += [Form(f"ticket L{level} {share}, dense file", ticket),
                  Form(f"ticket L{level} {share}, sparse file", ticket, sparse=True)]
    return [*forms, Form("structured ticket (NetAdapt widths)", structured_net)]


def sparse_path_network(seed: int = 0) -> tuple[Net, Net]:
    """MobileNetV1 x1.0 at 224 px with random weights, and the same with 90% of each 1x1
    convolution's weights (the smallest) removed: the shape XNNPACK's sparse inference targets."""
    torch.manual_seed(seed)
    dense = Net(build("mobilenet_v1", width=1.0, resolution=224, num_classes=1000)).eval()
    pruned = Net(dense.arch).eval()
    pruned.load_state_dict(dense.state_dict())
    pointwise = {name: mask for name, mask in dense_masks(pruned).items()
                 if mask.shape[2:] == (1, 1)}
    apply_masks(pruned, magnitude_masks(pruned, pointwise, SPARSE_PATH_SPARSITY, layerwise=True))
    return dense, pruned


def mobilenet_forms(backend: str) -> list[Form]:
    dense, pruned = sparse_path_network()
    forms = [Form("MobileNetV1 224 dense", dense), Form("MobileNetV1 224 90% 1x1, dense file", pruned),
             Form("MobileNetV1 224 90% 1x1, sparse file", pruned, sparse=True)]
    if backend == "litert-cpu":
        forms += [Form("MobileNetV1 224 dense, symmetric pad", dense, symmetric_padding=True),
                  Form("MobileNetV1 224 90% 1x1, sparse file, symmetric pad", pruned, sparse=True,
                       symmetric_padding=True)]
    return forms


def latency(args, lottery: LotteryJob, table: pd.DataFrame, structured_net: Net) -> pd.DataFrame:
    rows = []
    for backend in ("ort-cpu", "litert-cpu"):
        for group, forms in (("ResNet-20", resnet_forms(lottery, table, structured_net)),
                             ("MobileNetV1 224", mobilenet_forms(backend))):
            with reporter() as progress:
                costs = measure_forms(backend, forms, threads=1, windows=args.windows, reporter=progress)
            base = costs[0].ms
            rows += [{**asdict(c), "group": group, "vs_first": c.ms / base,
                      "windows_ms": " ".join(f"{w:.4f}" for w in c.windows_ms)} for c in costs]
    return pd.DataFrame(rows)


# -- tables and plots ---------------------------------------------------------------------------
def accuracy_png(table: pd.DataFrame, ks: list[int], path: Path, title: str) -> None:
    fig, ax = plt.subplots(figsize=(7.2, 4.8))
    x = 100 * table["sparsity"]
    styles = {"test_accuracy": ("-", "o", "ticket"), "reinit_accuracy": (":", "s", "random re-init"),
              "random_mask_accuracy": ("--", "^", "random mask")}
    colours = dict(zip(ks, ("tab:blue", "tab:orange")))
    for k in ks:
        for column, (line, marker, name) in styles.items():
            ax.plot(x, 100 * table[f"{column}_k{k}"], line, marker=marker, color=colours[k], ms=4,
                    label=f"{name}, rewind to step {k}")
    ax.axhline(100 * table[f"test_accuracy_k{ks[0]}"].iloc[0], color="grey", lw=0.8, label="dense (level 0)")
    ax.axvline(100 * TARGET_SPARSITY, color="grey", ls=":", lw=0.8)
    ax.set(xlabel="sparsity of the convolution weights (%)", ylabel="test accuracy (%)", title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def latency_png(frame: pd.DataFrame, path: Path) -> None:
    groups = list(dict.fromkeys(frame["group"]))
    fig, axes = plt.subplots(len(groups), 2, figsize=(11, 2.2 + 1.6 * len(groups)), squeeze=False)
    for row, group in enumerate(groups):
        for col, backend in enumerate(("ort-cpu", "litert-cpu")):
            part = frame[(frame.group == group) & (frame.backend == backend)]
            ax = axes[row][col]
            ax.barh(part["name"], part["ms"], xerr=part["ms"] * part["spread_pct"] / 200, color="tab:blue",
                    capsize=2)
            ax.invert_yaxis()
            ax.tick_params(axis="y", labelsize=7)
            ax.set(title=f"{group} on {backend}", xlabel="ms (median of windows; bar: their spread)")
            ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def show(title: str, frame: pd.DataFrame) -> None:
    print(f"\n{title}")
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.max_colwidth", 60):
        print(frame.to_string(index=False, float_format=lambda v: f"{v:.4f}"))


def code_version() -> str:
    """The commit the run starts from (``+changes``: with uncommitted changes to hwadapt)."""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = bool(subprocess.run(["git", "status", "--porcelain", "hwadapt", "benchmarks/lottery_cifar10.py"],
                                capture_output=True, text=True).stdout.strip())
    return commit + ("+changes" if dirty else "")


def provenance(args, clock: Clock, commit: str, started: str) -> dict:
    return {"started": started, "finished": datetime.now(timezone.utc).isoformat(timespec="minutes"),
            "host": host_cpu_model(), "machine": platform.machine(), "commit": commit,
            "torch_threads": args.threads, "arguments": {k: str(v) for k, v in vars(args).items()},
            "stages": clock.stages, "total_cpu_s": sum(s["cpu_s"] for s in clock.stages.values()),
            "total_wall_s": sum(s["wall_s"] for s in clock.stages.values())}


def main() -> None:
    args = arguments()
    commit, started = code_version(), datetime.now(timezone.utc).isoformat(timespec="minutes")
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    clock = Clock()
    jobs = clock.stage("lottery", lambda: lottery_runs(args))
    ks = sorted(jobs, reverse=True)
    table = accuracy_table(jobs)
    table.to_csv(args.out / "accuracy_sparsity.csv", index=False)
    early = jobs[ks[0]]
    masks = clock.stage("supermasks", lambda: supermasks(args, early))
    masks.to_csv(args.out / "supermasks.csv", index=False)
    structured_frame, structured_net = clock.stage("structured", lambda: structured(args, early))
    structured_frame.to_csv(args.out / "structured.csv", index=False)
    costs = clock.stage("latency", lambda: latency(args, early, table, structured_net))
    costs.to_csv(args.out / "latency.csv", index=False)
    accuracy_png(table, ks, args.out / "accuracy_sparsity.png",
                 f"ResNet-20 x{args.width:g}, CIFAR-10 ({args.train_images} images, {args.epochs} epochs a level)")
    latency_png(costs, args.out / "latency.png")
    summary = {"targets": [targets(table, k) for k in ks], "structured": structured_frame.attrs,
               "provenance": provenance(args, clock, commit, started)}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    show("accuracy over sparsity (test, 10,000 images)", table)
    show("supermasks (untrained weights; chance 0.10)", masks)
    show("channel-structured ticket", structured_frame)
    show("latency (1 thread)", costs[["backend", "group", "name", "ms", "spread_pct", "vs_first", "file_bytes",
                                      "weight_sparsity"]])
    show("targets at 80% sparsity", pd.DataFrame(summary["targets"]))
    spent = summary["provenance"]
    print(f"\nCPU {spent['total_cpu_s'] / 60:.1f} min, wall {spent['total_wall_s'] / 60:.1f} min this invocation "
          f"-> {args.out}")


if __name__ == "__main__":
    main()
