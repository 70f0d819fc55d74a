"""NetAdapt's wall time per iteration, serially against Ray workers (``--workers``).

One job -- MobileNetV1 x0.5 on a CIFAR-10 subset, priced by a MobileNetV1 32 px LUT -- is
run for ``--iterations`` iterations once per engine (0: serial; N: N Ray workers), each
in a fresh folder, and each iteration is timed. Ray's start is timed apart: a long run
pays it once. Every engine must keep the serial run's proposals (checked, ``same_family``).

    nice -n 19 python benchmarks/netadapt_workers.py --workers 0 2 --out benchmarks/results/netadapt_workers

Written to ``--out``: ``iterations.csv`` (one row per engine and iteration) and
``summary.json`` (mean seconds per iteration per engine, its range, and the ratio to
serial). The base network is trained once into ``--out/base`` when ``--checkpoint`` is
not given (``--base-epochs``).
"""
from __future__ import annotations

import argparse
import json
import shutil
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = "cifar10:" + str(ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar.gz")
DEFAULT_LUT = ROOT / "benchmarks" / "results" / "netadapt_cifar10_v1x05_reduced_s21" / "lut_mobilenet_v1_32.parquet"


def base_checkpoint(args, progress) -> Path:
    """The network to adapt: ``--checkpoint``, or one trained here (resumable)."""
    if args.checkpoint:
        return args.checkpoint
    from hwadapt.data import load_dataset
    from hwadapt.families import build
    from hwadapt.materialize.torch_net import Net
    from hwadapt.train import TrainConfig, fit
    from hwadapt.train.device import resolve_device

    out = args.out / "base"
    splits = load_dataset(args.data, 32, seed=args.seed)
    splits = replace(splits, train=splits.train.subset(args.train_images, args.seed))
    net = Net(build("mobilenet_v1", width=0.5, resolution=32, num_classes=10)).to(resolve_device(args.device))
    fit(net, splits, TrainConfig(epochs=args.base_epochs, batch_size=128, seed=args.seed), out,
        identity={"data": splits.source, "train_images": args.train_images}, reporter=progress)
    return out


def run_engine(args, checkpoint: Path, workers: int, progress) -> tuple[list[dict], list[str]]:
    """``--iterations`` NetAdapt iterations with ``workers`` Ray workers (0: serially);
    returns a row per iteration and the groups it kept."""
    from hwadapt.adapt.netadapt import Loop, iterate, start_state
    from hwadapt.adapt.rundir import RunDir
    from hwadapt.adapt.workflow import prepare_job
    from hwadapt.cluster import make_executor

    folder = args.out / "runs" / f"{args.device}_w{workers}"
    shutil.rmtree(folder, ignore_errors=True)
    settings = {"short_steps": args.short_steps, "max_iters": args.iterations, "long_epochs": 0}
    job, config = prepare_job("netadapt", checkpoint, args.lut, args.data, folder, budget_ratio=0.5,
                              settings=settings, seed=args.seed, train_images=args.train_images,
                              holdout_images=args.holdout_images, force=True, device=args.device, reporter=progress)
    started = time.perf_counter()
    with make_executor(workers or None, device=job.device, reporter=progress) as executor:
        startup = time.perf_counter() - started
        loop = Loop(replace(job, executor=executor), config, RunDir(folder))
        state = start_state(loop)
        rows = []
        for iteration in range(1, args.iterations + 1):
            began = time.perf_counter()
            iterate(loop, state)
            kept = state["rows"][-1]
            rows.append({"device": args.device, "workers": workers, "iteration": iteration,
                         "seconds": time.perf_counter() - began, "engine_start_s": startup,
                         "kept": kept["group"], "predicted_ms": kept["predicted_ms"],
                         "holdout_accuracy": kept["holdout_accuracy"]})
            progress.note(f"{args.device}, workers {workers}: iteration {iteration} in {rows[-1]['seconds']:.1f} s, "
                          f"kept {kept['group']}")
    return rows, [r["kept"] for r in rows]


def summarise(frame: pd.DataFrame, families: dict[int, list[str]]) -> list[dict]:
    serial = frame[frame["workers"] == 0]["seconds"].mean() if (frame["workers"] == 0).any() else None
    out = []
    for workers, rows in frame.groupby("workers"):
        mean = rows["seconds"].mean()
        out.append({"device": rows["device"].iloc[0], "workers": int(workers), "iterations": len(rows),
                    "mean_s": mean, "min_s": rows["seconds"].min(), "max_s": rows["seconds"].max(),
                    "engine_start_s": rows["engine_start_s"].iloc[0],
                    "ratio_to_serial": mean / serial if serial else None,
                    "same_family": families[int(workers)] == families.get(0, families[int(workers)])})
    return out


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/netadapt_workers"))
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--lut", type=Path, default=DEFAULT_LUT)
    parser.add_argument("--checkpoint", type=Path, default=None, help="a trained MobileNetV1 x0.5 (32 px)")
    parser.add_argument("--workers", nargs="+", type=int, default=[0, 2], help="0: serial")
    parser.add_argument("--iterations", type=int, default=2)
    parser.add_argument("--short-steps", type=int, default=40)
    parser.add_argument("--train-images", type=int, default=5000)
    parser.add_argument("--holdout-images", type=int, default=1000)
    parser.add_argument("--base-epochs", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch threads of the serial run (0: every core)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    from hwadapt.cli.common import reporter
    from hwadapt.train.device import set_threads

    set_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    rows, families = [], {}
    with reporter() as progress:
        checkpoint = base_checkpoint(args, progress)
        for workers in args.workers:
            found, families[workers] = run_engine(args, checkpoint, workers, progress)
            rows += found
    frame = pd.DataFrame(rows)
    suffix = "" if args.device == "cpu" else f"_{args.device.replace(':', '')}"
    frame.to_csv(args.out / f"iterations{suffix}.csv", index=False)
    summary = summarise(frame, families)
    (args.out / f"summary{suffix}.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(pd.DataFrame(summary).round(3).to_string(index=False))


if __name__ == "__main__":
    main()
