"""Every adaptation method side by side, from one trained base network on one LUT to one
measured budget; ProxylessNAS searches its own space for the same latency.

Stages (each resumes when re-run with the same arguments and --out):
  1. the LUT of the family at 32 px on ort-cpu (1 thread), unless --lut;
  2. the base network, trained for --epochs;
  3. each method of the registry (`hwadapt methods`, or --methods) to --budget-ratio x the
     base's predicted latency, with the reduced settings below (--set METHOD.FIELD=VALUE
     overrides one), measured end to end on the LUT's target; a variant (VARIANTS: MorphNet
     with the FLOP cost, beside its latency cost) is a row of its own;
  4. ProxylessNAS (`hwadapt search`) for the same latency in ms, on a LUT of its space,
     at the widest width multiplier of the space whose fastest member meets it.

Prints one table (method, predicted, measured with its windows' spread, within budget,
test accuracy, wall time) and writes methods.csv and pareto.png (test accuracy over
measured latency) under --out.

    python benchmarks/compare_methods.py --data ../shared/data/cifar10-jpeg.tar.gz \\
        --out benchmarks/results/compare_methods
"""
from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from device_agents import make_agent  # noqa: E402
from hwadapt.adapt import METHODS  # noqa: E402
from hwadapt.adapt.registry import setting_overrides  # noqa: E402
from hwadapt.adapt.report import AdaptReport  # noqa: E402
from hwadapt.adapt.workflow import adapt_network, prepare_job, subsets  # noqa: E402
from hwadapt.cli.common import reporter  # noqa: E402
from hwadapt.data import load_dataset  # noqa: E402
from hwadapt.families import build  # noqa: E402
from hwadapt.families.proxyless import ProxylessSpace  # noqa: E402
from hwadapt.lut.predictor import LatencyPredictor  # noqa: E402
from hwadapt.lut.profile import build_lut  # noqa: E402
from hwadapt.materialize.torch_net import Net  # noqa: E402
from hwadapt.nas.latency import latency_table  # noqa: E402
from hwadapt.nas.pipeline import SearchJob  # noqa: E402
from hwadapt.nas.pipeline import run as run_search  # noqa: E402
from hwadapt.nas.search import SearchConfig  # noqa: E402
from hwadapt.train import TrainConfig, fit  # noqa: E402

RESOLUTION = 32
# settings that fit a 2-core CPU; a method without an entry runs with its defaults
REDUCED = {
    "netadapt": {"first_step": 0.05, "decay": 0.96, "short_steps": 50, "short_lr": 0.01, "long_epochs": 5,
                 "long_lr": 0.05},
    "multiplier": {},
    "morphnet": {"strength": 5.0, "shrink_epochs": 8, "shrink_lr": 0.1, "refresh_steps": 100, "retrain_epochs": 12,
                 "retrain_lr": 0.05},
    "knapsack": {"prune_steps": 15, "interval_steps": 40, "prune_lr": 0.01, "finetune_epochs": 12,
                 "finetune_lr": 0.05},
    "slimming": {"sparsity": 2e-3, "shrink_epochs": 8, "shrink_lr": 0.1, "refresh_steps": 100, "finetune_epochs": 12,
                 "finetune_lr": 0.05},
}
# rows of their own: a registered method with some of its reduced settings changed
VARIANTS = {"morphnet_flops": ("morphnet", {"cost": "flops"})}
SPACE_WIDTHS = (1.0, 0.75, 0.5, 0.35, 0.25)


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="CIFAR-10 folder or .tar.gz (train/<class>, test/<class>)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/compare_methods"))
    parser.add_argument("--family", default="mobilenet_v1")
    parser.add_argument("--width", type=float, default=0.5)
    parser.add_argument("--lut", type=Path, help="an existing LUT of the family at 32 px (else one is profiled)")
    parser.add_argument("--epochs", type=int, default=15, help="base training epochs")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--budget-ratio", type=float, default=0.5)
    parser.add_argument("--train-images", type=int, default=10000)
    parser.add_argument("--holdout-images", type=int, default=2000)
    parser.add_argument("--methods", default=",".join([*sorted(METHODS), *VARIANTS]),
                        help=f"registered methods (and variants: {', '.join(VARIANTS)}) to run")
    parser.add_argument("--set", action="append", default=[], metavar="METHOD.FIELD=VALUE",
                        help="override one reduced setting (repeatable)")
    parser.add_argument("--no-search", action="store_true", help="leave ProxylessNAS out")
    parser.add_argument("--search-epochs", type=int, default=6)
    parser.add_argument("--threads", type=int, default=1)
    return parser.parse_args()


def method_settings(overrides: list[str]) -> dict[str, dict]:
    """Each row's settings: the reduced ones, a variant's changes, then --set."""
    settings = {name: dict(REDUCED.get(name, {})) for name in METHODS}
    settings.update({row: {**settings[method], **changed} for row, (method, changed) in VARIANTS.items()})
    for row, given in setting_overrides(overrides).items():
        settings[row] = {**settings.get(row, {}), **given}
    return settings


def base_network(args, lut: Path) -> Path:
    with make_agent("ort-cpu", threads=1) as agent, reporter() as progress:
        if not lut.exists() or lut.with_suffix(".journal.jsonl").exists():
            build_lut(agent, args.family, RESOLUTION, lut, num_classes=10, reporter=progress)
    splits = subsets(load_dataset(f"cifar10:{args.data}", RESOLUTION), args.train_images, args.holdout_images, 0)
    net = Net(build(args.family, width=args.width, resolution=RESOLUTION, num_classes=10))
    with reporter() as progress:
        fit(net, splits, TrainConfig(epochs=args.epochs, lr=0.05, batch_size=args.batch_size), args.out / "base",
            identity={"data": splits.source, "train_images": args.train_images}, reporter=progress)
    return args.out / "base"


def run_method(args, name: str, settings: dict, base: Path, lut: Path) -> dict:
    """One row: the method (or the variant) ``name``, run in its own folder."""
    method = VARIANTS.get(name, (name,))[0]
    with reporter() as progress:
        job, config = prepare_job(method, base, lut, f"cifar10:{args.data}", args.out / name,
                                  budget_ratio=args.budget_ratio, settings=settings, train_images=args.train_images,
                                  holdout_images=args.holdout_images, reporter=progress)
        report = adapt_network(job, config)
    return row_of(report, name)


def row_of(report: AdaptReport, name: str) -> dict:
    return {"method": name, "budget_ms": report.budget_ms, "predicted_ms": report.predicted_ms,
            "measured_ms": report.measured_ms, "spread_pct": report.measured_spread_pct,
            "within_budget": report.within_budget, "over_budget_pct": 100 * (report.measured_ms / report.budget_ms - 1),
            "prediction_error_pct": 100 * report.prediction_error, "test_accuracy": report.test_accuracy,
            "wall_s": report.wall_s, "base_measured_ms": report.base_measured_ms,
            "base_test_accuracy": report.base_test_accuracy}


def space_width(lut: Path, target_ms: float) -> float:
    """The widest multiplier of the proxyless space whose fastest member meets ``target_ms``."""
    predictor = LatencyPredictor.load(lut)
    for width in SPACE_WIDTHS:
        table = latency_table(predictor, ProxylessSpace(RESOLUTION, 10, width))
        if table.of(table.fastest()) <= 0.9 * target_ms:
            return width
    return SPACE_WIDTHS[-1]


def run_proxyless(args, budget_ms: float) -> dict:
    lut = args.out / "lut_proxyless.parquet"
    with make_agent("ort-cpu", threads=1) as agent, reporter() as progress:
        if not lut.exists() or lut.with_suffix(".journal.jsonl").exists():
            build_lut(agent, "proxyless", RESOLUTION, lut, num_classes=10, reporter=progress)
    width = space_width(lut, budget_ms)
    config = SearchConfig(target_ms=budget_ms, epochs=args.search_epochs, warmup_epochs=1,
                          batch_size=64, seed=0)
    job = SearchJob(str(lut), f"cifar10:{args.data}", str(args.out / "proxylessnas"), config,
                    train_epochs=args.search_epochs, width=width, train_images=args.train_images // 2,
                    holdout_images=args.holdout_images // 2)
    with reporter() as progress:
        report = run_search(job, reporter=progress)
    return {"method": "proxylessnas", "budget_ms": budget_ms, "predicted_ms": report["predicted_ms"],
            "measured_ms": report["measured_ms"], "spread_pct": report["measured_spread_pct"],
            "within_budget": report["measured_ms"] <= budget_ms,
            "over_budget_pct": 100 * (report["measured_ms"] / budget_ms - 1),
            "prediction_error_pct": 100 * (report["measured_ms"] / report["predicted_ms"] - 1),
            "test_accuracy": report["test_accuracy"], "wall_s": report["wall_s"], "space_width": width}


def pareto(frame: pd.DataFrame, path: Path, title: str) -> None:
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    for row in frame.itertuples():
        error = row.measured_ms * row.spread_pct / 200 if pd.notna(row.spread_pct) else 0
        ax.errorbar(row.measured_ms, row.test_accuracy, xerr=error, fmt="o", capsize=3, label=row.method)
    base = frame.iloc[0]
    ax.plot(base["base_measured_ms"], base["base_test_accuracy"], "k*", ms=12, label="base")
    ax.axvline(base["budget_ms"], color="grey", ls=":", label=f"budget {base['budget_ms']:.3g} ms")
    ax.set(xlabel="latency (ms, measured end to end; bars: the windows' spread)", ylabel="test accuracy",
           title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    args = arguments()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    lut = args.lut or args.out / f"lut_{args.family}_{RESOLUTION}.parquet"
    base = base_network(args, lut)
    settings = method_settings(args.set)
    rows = [run_method(args, name, settings.get(name, {}), base, lut) for name in args.methods.split(",") if name]
    if not args.no_search:
        rows.append(run_proxyless(args, rows[0]["budget_ms"]))
    frame = pd.DataFrame(rows)
    frame.to_csv(args.out / "methods.csv", index=False)
    pareto(frame, args.out / "pareto.png",
           f"{args.family} x{args.width:g}, CIFAR-10 {RESOLUTION} px, ort-cpu: budget {args.budget_ratio:g} x base")
    columns = ["method", "predicted_ms", "measured_ms", "spread_pct", "within_budget", "over_budget_pct",
               "test_accuracy", "wall_s"]
    with pd.option_context("display.width", 160):
        print(frame[columns].to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"base: measured {frame['base_measured_ms'].iloc[0]:.4f} ms, test accuracy "
          f"{frame['base_test_accuracy'].iloc[0]:.4f}; budget {frame['budget_ms'].iloc[0]:.4f} ms")


if __name__ == "__main__":
    main()
