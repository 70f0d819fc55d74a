"""RM then prune, against pruning the residual network directly (CIFAR-10, 32 px).

For each backend (ONNX Runtime, LiteRT; 1 thread) and one budget of --budget-ratio x the
base network's *measured* latency:
  - ResNet-20: pruned directly by each --methods method (widths tied by residuals move
    together), RM'd (`hwadapt rm`) then pruned by the same methods on a LUT of the plain
    family (every width free), and the width-multiplier baseline;
  - MobileNetV2: measured before RM, after RM (the carried channels widen every layer),
    and RM'd then pruned.
Stages resume when re-run with the same arguments and --out (trainings, LUTs and method
runs keep their folders). Prints one table (network, method, predicted, measured with
its windows' spread, within budget, test accuracy, wall time) and writes rmnet.csv and
pareto_<backend>.png under --out.

    python benchmarks/rmnet_cifar10.py --data ../shared/data/cifar10-jpeg.tar.gz \\
        --out benchmarks/results/rmnet_cifar10
"""
from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from device_agents import make_agent  # noqa: E402
from hwadapt.adapt.registry import setting_overrides  # noqa: E402
from hwadapt.adapt.workflow import adapt_network, prepare_job, subsets  # noqa: E402
from hwadapt.cli.common import reporter  # noqa: E402
from hwadapt.data import load_dataset  # noqa: E402
from hwadapt.families import build  # noqa: E402
from hwadapt.lut.predictor import LatencyPredictor  # noqa: E402
from hwadapt.lut.profile import build_lut  # noqa: E402
from hwadapt.materialize.torch_net import Net, load_checkpoint  # noqa: E402
from hwadapt.rm.workflow import rm_checkpoint  # noqa: E402
from hwadapt.train import TrainConfig, evaluate, fit  # noqa: E402

RESOLUTION = 32
# settings that fit a 2-core CPU: larger first steps than NetAdapt's paper schedule
REDUCED = {
    "netadapt": {"first_step": 0.1, "decay": 0.9, "short_steps": 30, "short_lr": 0.01, "long_epochs": 4,
                 "long_lr": 0.05},
    "multiplier": {},
    "slimming": {"sparsity": 2e-3, "shrink_epochs": 6, "shrink_lr": 0.1, "refresh_steps": 100, "finetune_epochs": 6,
                 "finetune_lr": 0.05},
}


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="CIFAR-10 folder or .tar.gz (train/<class>, test/<class>)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/rmnet_cifar10"))
    parser.add_argument("--backends", default="ort-cpu,litert-cpu")
    parser.add_argument("--methods", default="netadapt", help="methods that prune, directly and after RM")
    parser.add_argument("--resnet-width", type=float, default=0.5)
    parser.add_argument("--mobilenet-width", type=float, default=0.5)
    parser.add_argument("--epochs", type=int, default=15, help="base training epochs")
    parser.add_argument("--budget-ratio", type=float, default=0.5, help="of the base's measured latency")
    parser.add_argument("--train-images", type=int, default=10000)
    parser.add_argument("--holdout-images", type=int, default=2000)
    parser.add_argument("--set", action="append", default=[], metavar="METHOD.FIELD=VALUE",
                        help="override one reduced setting (repeatable)")
    return parser.parse_args()


def settings_of(overrides: list[str]) -> dict[str, dict]:
    given = setting_overrides(overrides)
    return {name: {**REDUCED.get(name, {}), **given.get(name, {})} for name in {*REDUCED, *given}}


def train_base(args, family: str, width: float) -> Path:
    folder = args.out / f"{family}_x{width:g}"
    splits = subsets(load_dataset(f"cifar10:{args.data}", RESOLUTION), args.train_images, args.holdout_images, 0)
    net = Net(build(family, width=width, resolution=RESOLUTION, num_classes=10))
    with reporter() as progress:
        fit(net, splits, TrainConfig(epochs=args.epochs, lr=0.05), folder,
            identity={"data": splits.source, "train_images": args.train_images}, reporter=progress)
    return folder


def table_of(args, backend: str, family: str) -> Path:
    path = args.out / f"lut_{backend}_{family}_{RESOLUTION}.parquet"
    with make_agent(backend, threads=1) as agent, reporter() as progress:
        build_lut(agent, family, RESOLUTION, path, num_classes=10, reporter=progress)
    return path


def measured(args, checkpoint: Path, lut: Path) -> tuple[float, float, float, float]:
    """A checkpoint's measured latency on the LUT's device, its windows' spread (%), its
    test accuracy and its price."""
    net, _ = load_checkpoint(checkpoint)
    predictor = LatencyPredictor.load(lut)
    figure = predictor.target.measure([net.arch], [net])[0]
    splits = load_dataset(f"cifar10:{args.data}", RESOLUTION)
    return figure.ms, figure.spread_pct, evaluate(net, splits.test, splits), predictor.predict_ms(net.arch)


def adapted(args, backend: str, network: str, method: str, settings: dict, checkpoint: Path, lut: Path,
            budget_ms: float) -> dict:
    """The row of ``method`` run on ``checkpoint`` to ``budget_ms`` on the LUT's device."""
    out = args.out / backend / f"{network.replace(' ', '_')}_{method}"
    with reporter() as progress:
        job, config = prepare_job(method, checkpoint, lut, f"cifar10:{args.data}", out, budget_ms=budget_ms,
                                  settings=settings.get(method, {}), train_images=args.train_images,
                                  holdout_images=args.holdout_images, reporter=progress)
        report = adapt_network(job, config)
    return row(backend, network, method, budget_ms, predicted_ms=report.predicted_ms, measured_ms=report.measured_ms,
               spread_pct=report.measured_spread_pct, test_accuracy=report.test_accuracy, wall_s=report.wall_s)


def as_is(args, backend: str, network: str, method: str, checkpoint: Path, lut: Path) -> dict:
    """The row of a network measured as it is (no budget)."""
    ms, spread, accuracy, predicted = measured(args, checkpoint, lut)
    return row(backend, network, method, None, predicted_ms=predicted, measured_ms=ms, spread_pct=spread,
               test_accuracy=accuracy, wall_s=None)


def row(backend: str, network: str, method: str, budget_ms: float | None, **figures) -> dict:
    within = figures["measured_ms"] <= budget_ms * 1.05 if budget_ms else None
    return {"backend": backend, "network": network, "method": method, "budget_ms": budget_ms, **figures,
            "within_budget_5pct": within}


def family_rows(args, backend: str, settings: dict, family: str, source: Path, plain: Path,
                direct: bool) -> list[dict]:
    """The base network and its RM'd chain as they are, the chain pruned by each method to
    the budget, and (``direct``) the base network pruned by them and the width multiplier."""
    lut, plain_lut = table_of(args, backend, family), table_of(args, backend, "plain")
    rows = [as_is(args, backend, family, "base", source, lut), as_is(args, backend, f"{family} RM", "rm", plain,
                                                                        plain_lut)]
    budget = args.budget_ratio * rows[0]["measured_ms"]
    for method in args.methods.split(","):
        if direct:
            rows.append(adapted(args, backend, family, method, settings, source, lut, budget))
        rows.append(adapted(args, backend, f"{family} RM", method, settings, plain, plain_lut, budget))
    if direct:
        rows.append(adapted(args, backend, family, "multiplier", settings, source, lut, budget))
    return rows


def pareto(frame: pd.DataFrame, path: Path, title: str) -> None:
    fig, ax = plt.subplots(figsize=(6.8, 4.8))
    for (network, method), group in frame.groupby(["network", "method"], sort=False):
        r = group.iloc[0]
        error = r.measured_ms * r.spread_pct / 200 if pd.notna(r.spread_pct) else 0
        ax.errorbar(r.measured_ms, r.test_accuracy, xerr=error, fmt="o", capsize=3, label=f"{network}: {method}")
    for budget in frame["budget_ms"].dropna().unique():
        ax.axvline(budget, color="grey", ls=":")
    ax.set(xlabel="latency (ms, measured end to end)", ylabel="test accuracy", title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    args = arguments()
    args.out.mkdir(parents=True, exist_ok=True)
    settings = settings_of(args.set)
    resnet = train_base(args, "resnet20", args.resnet_width)
    mobilenet = train_base(args, "mobilenet_v2", args.mobilenet_width)
    plains = {}
    for name, source in (("resnet20", resnet), ("mobilenet_v2", mobilenet)):
        plains[name] = args.out / f"{source.name}_rm"
        if not (plains[name] / "rm.json").is_file():
            report = rm_checkpoint(source, plains[name])
            print(f"RM of {name}: max |difference| {report.max_abs_diff}", flush=True)
    rows = []
    for backend in args.backends.split(","):
        rows += family_rows(args, backend, settings, "resnet20", resnet, plains["resnet20"], direct=True)
        rows += family_rows(args, backend, settings, "mobilenet_v2", mobilenet, plains["mobilenet_v2"], direct=False)
        frame = pd.DataFrame(rows)
        frame.to_csv(args.out / "rmnet.csv", index=False)
        pareto(frame[frame["backend"] == backend], args.out / f"pareto_{backend}.png",
               f"RM then prune vs prune directly, CIFAR-10 32 px, {backend}")
    with pd.option_context("display.width", 200):
        print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.4f}"))


if __name__ == "__main__":
    main()
