"""ProxylessNAS on CIFAR-10 (32 px): memory and speed of binarized-path training, derived
networks on three latency targets, and accuracy vs latency against MobileNetV2.

Sections (each writes its results under --out and is skipped when re-run; the searches
and trainings inside resume from their per-epoch checkpoints):

- ``memory``: peak memory and time per step of one training step of a single fixed path
  (the largest member, k7 e6 everywhere, as a plain network) vs the supernet's search
  steps (a sampled-path weight step, plus a two-path architecture step every
  ``arch_every`` steps) with uniform path probabilities (``supernet_search``) and with
  the largest path made near-certain (``supernet_largest``: the same path as the plain
  network, its worst case), each configuration in a fresh subprocess. Memory is the
  process's resident set (VmHWM after resetting it through /proc/self/clear_refs), with
  glibc told to return large blocks at once so RSS tracks live tensors. ``step`` is the
  peak during a step above the resident set before it (activations and transients);
  ``total`` also counts weights, gradients and optimiser state created since start-up.
- ``lut``: the ``proxyless`` LUT on the agent (``hwadapt profile``, resumable).
- ``search``: the search alone for three targets: E[latency] per epoch and the argmax it
  ends on (before any derive swap) against the target (``search.csv``, ``search.png``,
  and each search's own ``search_<target>ms/search/search.png``).
- ``targets``: ``hwadapt search`` for three targets; measured vs target latency.
- ``baselines``: MobileNetV2 width multipliers trained for as many epochs as a search
  plus its training, measured on the same agent, for the accuracy-latency plot.

    nice -n 19 python benchmarks/proxyless_cifar10.py --out benchmarks/results/proxyless_cifar10
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

DEFAULT_DATA = "cifar10:" + str(Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-jpeg.tar.gz")
MEMORY_KINDS = ("one_path", "supernet_search", "supernet_largest")


# -- memory (runs in a subprocess per configuration) ------------------------------
def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def _reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")


def memory_worker(kind: str, lut: str, batch: int, steps: int, width: float) -> dict:
    import torch
    from torch import nn

    from hwadapt.families.proxyless import ProxylessSpace
    from hwadapt.lut.predictor import LatencyPredictor
    from hwadapt.materialize.torch_net import Net
    from hwadapt.nas.latency import latency_table
    from hwadapt.nas.search import Searcher, SearchConfig
    from hwadapt.nas.supernet import SuperNet
    from hwadapt.train.loop import make_optimizer

    torch.set_num_threads(1)
    torch.manual_seed(0)
    predictor = LatencyPredictor.load(lut)
    space = ProxylessSpace(predictor.meta.resolution, predictor.meta.num_classes, width)
    table = latency_table(predictor, space)
    x = torch.randn(batch, 3, space.resolution, space.resolution)
    y = torch.randint(0, space.num_classes, (batch,))
    start_kb = _status_kb("VmRSS")
    config = SearchConfig(target_ms=table.of(table.fastest()) * 1.5)
    if kind == "one_path":
        net = Net(space.uniform("k7e6"))
        optimizer = make_optimizer(net, config.train_config())

        def step(i: int) -> None:
            loss = nn.functional.cross_entropy(net(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    else:
        supernet = SuperNet(space)
        if kind == "supernet_largest":
            for alpha, names in zip(supernet.alphas, supernet.choices):
                alpha.data[names.index("k7e6")] = 30.0
        searcher = Searcher(supernet, table, None, config)
        generator = torch.Generator().manual_seed(0)

        def step(i: int) -> None:
            searcher.weight_step(x, y, config.lr, generator)
            if i % config.arch_every == 0:
                searcher.arch_step(x, y, generator)
    for i in range(2):
        step(i)
    step_peaks, times = [], []
    for i in range(steps):
        before = _status_kb("VmRSS")
        _reset_peak()
        began = time.perf_counter()
        step(i)
        times.append(time.perf_counter() - began)
        step_peaks.append(_status_kb("VmHWM") - before)
    total_peak = max(_status_kb("VmHWM"), _status_kb("VmRSS")) - start_kb
    return {"kind": kind, "batch": batch, "steps": steps, "step_peak_mb": max(step_peaks) / 1024,
            "total_peak_mb": max(total_peak, max(step_peaks)) / 1024, "ms_per_step": float(np.mean(times) * 1000)}


def memory_section(args, out: Path) -> pd.DataFrame:
    rows = []
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "65536"}
    for kind in MEMORY_KINDS:
        command = [sys.executable, __file__, "--memory-worker", kind, "--lut", str(args.lut),
                   "--memory-batch", str(args.memory_batch), "--memory-steps", str(args.memory_steps),
                   "--width", str(args.memory_width)]
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    frame = pd.DataFrame(rows)
    base = frame.set_index("kind").loc["one_path"]
    for column in ("step_peak_mb", "total_peak_mb", "ms_per_step"):
        frame[column.replace("_mb", "").replace("ms_per_step", "time") + "_ratio"] = frame[column] / base[column]
    return frame


# -- LUT, searches, baselines -----------------------------------------------------
def lut_section(args, progress) -> None:
    from device_agents import make_agent
    from hwadapt.lut.profile import build_lut

    progress.note(f"LUT of the proxyless space at 32 px on ort-cpu -> {args.lut}")
    with make_agent("ort-cpu") as agent:
        build_lut(agent, "proxyless", 32, args.lut, reporter=progress)


def default_targets(args) -> list[float]:
    from hwadapt.families.proxyless import ProxylessSpace
    from hwadapt.lut.predictor import LatencyPredictor
    from hwadapt.nas.latency import latency_table

    predictor = LatencyPredictor.load(args.lut)
    table = latency_table(predictor, ProxylessSpace(32, 10, args.width))
    low, high = table.of(table.fastest()), table.of(table.slowest())
    return [round(low + f * (high - low), 4) for f in (0.25, 0.5, 0.75)]


def search_config(args, target: float):
    from hwadapt.nas.search import SearchConfig

    return SearchConfig(target_ms=target, epochs=args.epochs, warmup_epochs=args.warmup_epochs,
                        batch_size=args.batch_size, loss_form=args.loss, arch_lr=args.arch_lr,
                        arch_every=args.arch_every, seed=args.seed)


def search_section(args, out: Path, progress) -> pd.DataFrame:
    """The search stage of ``hwadapt search`` alone (resumable), per target."""
    from hwadapt.nas.pipeline import SearchJob, prepare, run_search

    rows, histories = [], {}
    for target in args.targets or default_targets(args):
        job = SearchJob(str(args.lut), args.data, str(out / f"search_{target:g}ms"), search_config(args, target),
                        width=args.width, train_images=args.train_images, holdout_images=args.holdout_images,
                        device=args.device)
        progress.note(f"search alone for {target:g} ms -> {job.out}")
        ctx = prepare(job)
        run_search(ctx, progress)
        history = json.loads((ctx.out / "search" / "search.json").read_text())["history"]
        histories[target] = history
        last = history[-1]
        rows.append({"target_ms": target, "first_expected_ms": history[0]["expected_ms"],
                     "final_expected_ms": last["expected_ms"], "final_sharpened_ms": last["sharpened_ms"],
                     "argmax_predicted_ms": last["argmax_predicted_ms"],
                     "argmax_error_pct": (last["argmax_predicted_ms"] / target - 1) * 100,
                     "within_10pct": abs(last["argmax_predicted_ms"] / target - 1) <= 0.10,
                     "multiplier": last["multiplier"], "arch_steps": sum(h["arch_steps"] for h in history),
                     "argmax_holdout_accuracy": last["argmax_holdout_accuracy"],
                     "search_s": sum(h["seconds"] for h in history)})
    landing_png(histories, out / "search.png")
    return pd.DataFrame(rows)


def landing_png(histories: dict[float, list[dict]], path: Path) -> None:
    """Every search's E[latency] (range over the epoch as bars) and argmax per epoch,
    each against its target."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for (target, history), color in zip(histories.items(), ("tab:blue", "tab:orange", "tab:green", "tab:red")):
        epochs = [h["epoch"] for h in history]
        expected = np.array([h["expected_ms"] for h in history])
        ranges = np.array([h["expected_ms_range"] or [e, e] for h, e in zip(history, expected)])
        ax.errorbar(epochs, expected, yerr=[expected - ranges[:, 0], ranges[:, 1] - expected], fmt="o-",
                    color=color, ms=3, capsize=2, label=f"E[latency], target {target:g} ms")
        ax.plot(epochs, [h["argmax_predicted_ms"] for h in history], "D--", color=color, ms=3,
                label=f"argmax, target {target:g} ms")
        ax.axhspan(target * 0.9, target * 1.1, color=color, alpha=0.1)
        ax.axhline(target, color=color, lw=0.8)
    ax.set_xlabel("epoch")
    ax.set_ylabel("predicted latency (ms)")
    ax.set_title("search alone: latency per epoch (bands: target ±10%)", fontsize=10)
    ax.legend(fontsize=6, ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def targets_section(args, out: Path, progress) -> pd.DataFrame:
    from hwadapt.nas.pipeline import SearchJob, run

    rows = []
    for target in args.targets or default_targets(args):
        job = SearchJob(str(args.lut), args.data, str(out / f"search_{target:g}ms"), search_config(args, target),
                        train_epochs=args.train_epochs, width=args.width, train_images=args.train_images,
                        holdout_images=args.holdout_images, device=args.device)
        progress.note(f"search for {target:g} ms -> {job.out}")
        report = run(job, reporter=progress)
        first = report["calibration"][0]
        rows.append({"model": f"proxyless@{target:g}ms", "target_ms": target, "predicted_ms": report["predicted_ms"],
                     "measured_ms": report["measured_ms"], "measured_spread_pct": report["measured_spread_pct"],
                     "error_pct": report["measured_error"] * 100, "within_5pct": report["within_tolerance"],
                     "test_accuracy": report["test_accuracy"], "swaps": report["swaps"],
                     "calibration_rounds": len(report["calibration"]),
                     "first_round_ratio": first["measured_ms"] / first["predicted_ms"],
                     "argmax_predicted_ms": report["argmax_predicted_ms"], "wall_s": report["wall_s"]})
    return pd.DataFrame(rows)


def baselines_section(args, out: Path, progress) -> pd.DataFrame:
    from hwadapt.data import load_dataset
    from hwadapt.families import build
    from hwadapt.lut.predictor import LatencyPredictor
    from hwadapt.materialize.torch_net import Net
    from hwadapt.measure import noisy_note
    from hwadapt.train import TrainConfig, fit

    splits = load_dataset(args.data, 32)
    splits = replace(splits, train=splits.train.subset(args.train_images, 0)) if args.train_images else splits
    epochs = args.epochs + args.train_epochs
    nets, accuracies = [], []
    for width in args.baseline_widths:
        progress.note(f"mobilenet_v2 x{width:g}: {epochs} epochs on {len(splits.train)} images")
        net = Net(build("mobilenet_v2", width=width, resolution=32, num_classes=10))
        summary = fit(net, splits, TrainConfig(epochs=epochs, batch_size=args.batch_size),
                      out / f"mobilenet_v2_{width:g}", reporter=progress)
        nets.append(net)
        accuracies.append(summary["test_accuracy"])
    progress.note("measuring the width multipliers end to end ...")
    figures = LatencyPredictor.load(args.lut).target.measure([n.arch for n in nets], nets)
    note = noisy_note(figures)
    if note:
        progress.note(note)
    return pd.DataFrame([{"model": f"mobilenet_v2 x{w:g}", "measured_ms": f.ms, "measured_spread_pct": f.spread_pct,
                          "test_accuracy": a, "epochs": epochs}
                         for w, f, a in zip(args.baseline_widths, figures, accuracies)])


# -- driver -------------------------------------------------------------------------
def cached(path: Path, compute) -> pd.DataFrame:
    if path.is_file():
        return pd.read_csv(path)
    frame = compute()
    frame.to_csv(path, index=False)
    return frame


def plot(targets: pd.DataFrame, baselines: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(baselines["measured_ms"], baselines["test_accuracy"] * 100, "o-", label="MobileNetV2 width multipliers")
    ax.plot(targets["measured_ms"], targets["test_accuracy"] * 100, "s", label="ProxylessNAS (this run)")
    for t in targets["target_ms"]:
        ax.axvline(t, color="grey", lw=0.5, ls=":")
    ax.set_xlabel("measured latency (ms, ORT CPU, 1 thread)")
    ax.set_ylabel("CIFAR-10 test accuracy (%)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/proxyless_cifar10"))
    parser.add_argument("--lut", type=Path, default=None, help="default: OUT/ort-cpu_proxyless_32.parquet")
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--sections", nargs="+", default=["memory", "lut", "targets", "baselines"])
    parser.add_argument("--targets", nargs="*", type=float, default=None, help="ms; default: 25/50/75%% of the space")
    parser.add_argument("--epochs", type=int, default=10, help="search epochs")
    parser.add_argument("--warmup-epochs", type=int, default=2)
    parser.add_argument("--train-epochs", type=int, default=10)
    parser.add_argument("--train-images", type=int, default=None)
    parser.add_argument("--holdout-images", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--loss", default="target", choices=["target", "mul", "add"])
    parser.add_argument("--arch-lr", type=float, default=2e-2)
    parser.add_argument("--arch-every", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="where the searches train: auto, cpu, cuda, cuda:N")
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--baseline-widths", nargs="+", type=float, default=[0.35, 0.5, 0.75, 1.0])
    parser.add_argument("--memory-batch", type=int, default=64)
    parser.add_argument("--memory-steps", type=int, default=6)
    parser.add_argument("--memory-width", type=float, default=1.0)
    parser.add_argument("--memory-worker", choices=MEMORY_KINDS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.lut = args.lut or args.out / "ort-cpu_proxyless_32.parquet"
    return args


def main() -> None:
    args = parse_args()
    if args.memory_worker:
        print(json.dumps(memory_worker(args.memory_worker, str(args.lut), args.memory_batch, args.memory_steps,
                                       args.width)))
        return
    import torch

    from hwadapt.cli.common import reporter

    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("HWADAPT_CACHE_DIR", str(args.out / "cache"))
    frames = {}
    with reporter() as progress:
        if "lut" in args.sections or not args.lut.is_file():
            lut_section(args, progress)
        if "memory" in args.sections:
            progress.note("memory and time per step: each configuration in a subprocess ...")
            memory = cached(args.out / "memory.csv", lambda: memory_section(args, args.out))
            print(f"memory and time per step\n{memory.round(3).to_string(index=False)}\n", flush=True)
        for name, section in (("search", search_section), ("targets", targets_section),
                              ("baselines", baselines_section)):
            if name in args.sections:
                frames[name] = cached(args.out / f"{name}.csv",
                                      lambda section=section: section(args, args.out, progress))
                print(f"{name}\n{frames[name].round(4).to_string(index=False)}\n", flush=True)
    if "targets" in frames and "baselines" in frames:
        plot(frames["targets"], frames["baselines"], args.out / "accuracy_vs_latency.png")


if __name__ == "__main__":
    main()
