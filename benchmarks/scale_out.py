"""Scaling out: training on a GPU, NetAdapt's proposals on Ray workers, a search on CUDA.

On the GPU machine ``gpu_check.sh`` runs every stage in a few minutes; here, the NetAdapt
stage alone answers how much faster an iteration is on ``--workers`` than serially:

    nice -n 19 python benchmarks/scale_out.py --data cifar10:../shared/data/cifar10-jpeg.tar.gz \
        --stages netadapt --devices cpu --workers 0 2 --train-base 2 --out benchmarks/results/netadapt_workers

``--make-subset SRC DST`` writes a smaller CIFAR-10 archive (the first images of each
class) to carry to a machine without the data.

Stages, in order of importance; each writes its rows as soon as it ends, and a stage
that would not fit the time left (``--budget-s``) is skipped and says so:

1. ``env``: torch, CUDA, the GPU, cores, Ray.
2. ``epoch``: MobileNetV1 x0.5 on CIFAR-10 (32 px, batch 128): seconds per epoch on
   CUDA (the second epoch: the first pays cuDNN's autotuning) and on this machine's CPU
   cores (a part of an epoch, scaled), both scaled to a full 45,000-image epoch, and
   against the development host's CPU epoch (``--host-epoch-s``, measured there).
   The CUDA run's network is the base of stage 3.
3. ``netadapt_cpu``: one NetAdapt iteration serially (every core) and with 2/4/8 Ray
   workers (one core each) on the CPU, each engine in a fresh folder, Ray's start timed
   apart; the kept proposal must match the serial one.
4. ``search``: a ProxylessNAS search on CUDA with the paper's schedule (arch lr 1e-3,
   an architecture step every 5 weight steps, the ``target`` latency form): E[latency]
   and the argmax per epoch against the target (the search alone, no derive swap).
5. ``netadapt_cuda``: stage 3 on the GPU (the workers share it).

Writes into ``--out``: ``results.json`` (every stage's figures), ``epoch.csv``,
``netadapt_cpu.csv``, ``netadapt_cuda.csv``, ``search.csv`` and ``search.png``; work
folders go to ``--work``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tarfile
import time
import traceback
from collections import Counter
from dataclasses import replace
from pathlib import Path, PurePosixPath

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_LUT = ROOT / "benchmarks" / "results" / "netadapt_cifar10_v1x05_reduced_s21" / "lut_mobilenet_v1_32.parquet"
FULL_EPOCH = 45_000  # CIFAR-10's training images less the 10% holdout
PROXYLESS_LUT = ROOT / "benchmarks" / "results" / "proxyless_cifar10_reduced_s19" / "ort-cpu_proxyless_32.parquet"
# The development host's CPU epoch of the same network and batch (2 cores, shared; 2026-12-04,
# 4,000 images scaled, load average 2.6 from other jobs), measured there with
# `scale_out.py --stages env epoch --devices cpu --cpu-images 4000`; see benchmarks/README.md.
HOST_EPOCH_S = 208.2


class Budget:
    """The run's deadline: a stage is started only when its estimate fits what is left."""

    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def left(self) -> float:
        return self.deadline - time.monotonic()


def subset(source: Path, target: Path, per_class: dict[str, int]) -> Counter:
    """Copy the first ``per_class[split]`` images of each class of each split."""
    kept: Counter = Counter()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    with tarfile.open(source, "r:gz") as src, tarfile.open(tmp, "w:gz") as dst:
        for member in src:
            parts = PurePosixPath(member.name).parts
            if not member.isfile() or len(parts) < 3 or parts[-3] not in per_class:
                continue
            key = (parts[-3], parts[-2])
            if kept[key] < per_class[parts[-3]]:
                dst.addfile(member, src.extractfile(member))
                kept[key] += 1
    tmp.replace(target)
    return kept


def env_stage(args) -> dict:
    import torch

    info = {"torch": torch.__version__, "cuda": torch.cuda.is_available(), "cpus": os.cpu_count(),
            "python": platform.python_version(), "torch_threads": torch.get_num_threads()}
    if torch.cuda.is_available():
        info |= {"gpu": torch.cuda.get_device_name(0), "cuda_version": torch.version.cuda}
    try:
        import ray

        info["ray"] = ray.__version__
    except ImportError:
        info["ray"] = None
    return info


def _splits(args, images: int | None):
    from hwadapt.data import load_dataset

    splits = load_dataset(args.data, 32, seed=0)
    return replace(splits, train=splits.train.subset(images, 0)) if images else splits


def _timed_epoch(net, splits, optimizer, seed: int) -> float:
    """Seconds of one pass of SGD over ``splits.train`` (the kernels finished)."""
    import numpy as np
    import torch

    from hwadapt.train.loop import steps_per_epoch, train_steps

    steps = steps_per_epoch(splits, 128)
    started = time.perf_counter()
    train_steps(net, splits, optimizer, base_lr=0.05, first_step=0, steps=steps, total_steps=steps, batch_size=128,
                rng=np.random.default_rng(seed))
    if next(net.parameters()).is_cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - started


def epoch_stage(args, progress) -> list[dict]:
    """Seconds per training epoch per device (no evaluation in it), scaled to a full
    CIFAR-10 epoch. On CUDA the second epoch is the figure (the first pays cuDNN's
    autotuning and the allocator's growth)."""
    import torch

    from hwadapt.families import build
    from hwadapt.materialize.torch_net import Net, save_checkpoint
    from hwadapt.train import TrainConfig, evaluate
    from hwadapt.train.device import resolve_device
    from hwadapt.train.loop import make_optimizer

    rows = []
    for device in args.devices:
        where = resolve_device(device)
        splits = _splits(args, args.cpu_images if where.type == "cpu" else args.cuda_images)
        torch.manual_seed(0)
        net = Net(build("mobilenet_v1", width=0.5, resolution=32, num_classes=10)).to(where)
        optimizer = make_optimizer(net, TrainConfig(batch_size=128))
        times = [_timed_epoch(net, splits, optimizer, epoch) for epoch in range(1 if where.type == "cpu" else 2)]
        out = save_checkpoint(net, args.work / f"epoch_{where.type}")  # the base of the NetAdapt stages
        rows.append({"device": str(where), "threads": torch.get_num_threads(), "images": len(splits.train),
                     "epoch_s": times[-1], "first_epoch_s": times[0],
                     "full_epoch_s": times[-1] * FULL_EPOCH / len(splits.train),
                     "holdout_accuracy": evaluate(net, splits.holdout, splits), "checkpoint": str(out)})
        progress.note(f"epoch on {where}: {rows[-1]['full_epoch_s']:.1f} s per {FULL_EPOCH} images")
    frame = pd.DataFrame(rows)
    cpu = frame[frame["device"] == "cpu"]["full_epoch_s"]
    if len(cpu):
        frame["speedup_vs_cpu"] = float(cpu.iloc[0]) / frame["full_epoch_s"]
    if args.host_epoch_s:
        frame["speedup_vs_dev_host_cpu"] = args.host_epoch_s / frame["full_epoch_s"]
    return frame.to_dict("records")


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


def netadapt_stage(args, device: str, checkpoint: Path, progress, budget: Budget) -> list[dict]:
    """One iteration per engine on ``device``; skips what would not fit."""
    rows, families = [], {}
    for workers in args.workers:
        if budget.left() < args.netadapt_estimate_s:
            progress.note(f"netadapt {device} workers {workers}: skipped ({budget.left():.0f} s left)")
            continue
        engine_args = argparse.Namespace(
            out=args.work / "netadapt", data=args.data, lut=args.lut, device=device, seed=0, iterations=1,
            short_steps=args.short_steps, train_images=args.netadapt_images, holdout_images=1000)
        found, families[workers] = run_engine(engine_args, checkpoint, workers, progress)
        serial = [r["seconds"] for r in rows if r["workers"] == 0]
        for row in found:
            row["same_family"] = families[workers] == families.get(0, families[workers])
            row["ratio_to_serial"] = row["seconds"] / serial[0] if serial else None
        rows += found
    return rows


def search_stage(args, progress) -> list[dict]:
    """The search alone on CUDA with the paper's schedule; its history, epoch by epoch."""
    from hwadapt.nas.pipeline import SearchJob, prepare, run_search
    from hwadapt.nas.search import PAPER_SCHEDULE, SearchConfig
    from hwadapt.nas.latency import latency_table
    from hwadapt.families.proxyless import ProxylessSpace
    from hwadapt.lut.predictor import LatencyPredictor

    table = latency_table(LatencyPredictor.load(args.proxyless_lut), ProxylessSpace(32, 10, 1.0))
    low, high = table.of(table.fastest()), table.of(table.slowest())
    target = round(low + args.search_target * (high - low), 4)
    config = SearchConfig(target_ms=target, epochs=args.search_epochs, warmup_epochs=args.search_warmup,
                          batch_size=64, **PAPER_SCHEDULE)
    job = SearchJob(str(args.proxyless_lut), args.data, str(args.work / "search"), config,
                    train_images=args.search_images, holdout_images=args.search_images // 9,
                    device=args.search_device)
    ctx = prepare(job)
    run_search(ctx, progress)
    history = json.loads((ctx.out / "search" / "search.json").read_text())["history"]
    (args.out / "search.png").write_bytes((ctx.out / "search" / "search.png").read_bytes())
    return [{"epoch": h["epoch"], "target_ms": target, "expected_ms": h["expected_ms"],
             "sharpened_ms": h["sharpened_ms"], "argmax_predicted_ms": h["argmax_predicted_ms"],
             "argmax_error_pct": (h["argmax_predicted_ms"] / target - 1) * 100, "multiplier": h["multiplier"],
             "arch_steps": h["arch_steps"], "seconds": h["seconds"], "device": args.search_device}
            for h in history]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="cifar10:PATH (a subset made by --make-subset will do)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/scale_out"))
    parser.add_argument("--work", type=Path, default=Path("/tmp/gpu_check"))
    parser.add_argument("--stages", nargs="+", default=["env", "epoch", "netadapt", "search"])
    parser.add_argument("--devices", nargs="+", default=["cuda", "cpu"])
    parser.add_argument("--budget-s", type=float, default=330.0, help="stop starting stages after this")
    parser.add_argument("--cuda-images", type=int, default=None, help="default: every training image")
    parser.add_argument("--cpu-images", type=int, default=4000)
    parser.add_argument("--host-epoch-s", type=float, default=HOST_EPOCH_S)
    parser.add_argument("--lut", type=Path, default=DEFAULT_LUT)
    parser.add_argument("--train-base", type=int, default=0, metavar="EPOCHS",
                        help="without the epoch stage: train the NetAdapt base here for this many epochs")
    parser.add_argument("--make-subset", nargs=2, type=Path, metavar=("SRC", "DST"),
                        help="write a CIFAR-10 archive of --subset-train/--subset-test images per class and stop")
    parser.add_argument("--subset-train", type=int, default=2500)
    parser.add_argument("--subset-test", type=int, default=200)
    parser.add_argument("--workers", nargs="+", type=int, default=[0, 2, 4, 8])
    parser.add_argument("--short-steps", type=int, default=50)
    parser.add_argument("--netadapt-images", type=int, default=10_000)
    parser.add_argument("--netadapt-estimate-s", type=float, default=25.0)
    parser.add_argument("--proxyless-lut", type=Path, default=PROXYLESS_LUT)
    parser.add_argument("--search-device", default="cuda")
    parser.add_argument("--search-epochs", type=int, default=8)
    parser.add_argument("--search-warmup", type=int, default=2)
    parser.add_argument("--search-images", type=int, default=18_000)
    parser.add_argument("--search-target", type=float, default=0.5, help="where in the space's range")
    parser.add_argument("--search-estimate-s", type=float, default=90.0)
    return parser.parse_args()


def trained_base(args, progress) -> Path:
    """A MobileNetV1 x0.5 trained here for ``--train-base`` epochs (resumable): the NetAdapt
    stage's base when the epoch stage does not run."""
    from hwadapt.families import build
    from hwadapt.materialize.torch_net import Net
    from hwadapt.train import TrainConfig, fit

    splits = _splits(args, args.netadapt_images)
    out = args.work / "base"
    fit(Net(build("mobilenet_v1", width=0.5, resolution=32, num_classes=10)), splits,
        TrainConfig(epochs=args.train_base, batch_size=128), out, identity={"data": splits.source}, reporter=progress)
    return out


def main() -> None:
    args = parse_args()
    if args.make_subset:
        kept = subset(*args.make_subset, {"train": args.subset_train, "test": args.subset_test})
        print(f"{args.make_subset[1]}: {sum(kept.values())} images in {len(kept)} class folders")
        return
    budget = Budget(args.budget_s)
    from hwadapt.cli.common import reporter

    args.out.mkdir(parents=True, exist_ok=True)
    args.work.mkdir(parents=True, exist_ok=True)
    results: dict = {"args": {k: str(v) for k, v in vars(args).items()}}

    def save() -> None:
        (args.out / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")

    def stage(name: str, run) -> object:
        started = time.monotonic()
        try:
            found = run()
        except Exception as exc:  # a broken stage is recorded, the next ones still run
            results[name] = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()[-4000:]}
            print(f"stage {name} failed: {type(exc).__name__}: {exc}", flush=True)
            found = None
        else:
            results[name] = found
            if isinstance(found, list) and found:
                pd.DataFrame(found).to_csv(args.out / f"{name}.csv", index=False)
                print(f"\n{name}\n{pd.DataFrame(found).round(4).to_string(index=False)}\n", flush=True)
        results.setdefault("stage_seconds", {})[name] = time.monotonic() - started
        save()
        return found

    with reporter() as progress:
        if "env" in args.stages:
            stage("env", lambda: env_stage(args))
        checkpoint = trained_base(args, progress) if args.train_base else None
        if "epoch" in args.stages:
            rows = stage("epoch", lambda: epoch_stage(args, progress)) or []
            checkpoint = next((Path(r["checkpoint"]) for r in rows if r["device"].startswith("cuda")),
                              next((Path(r["checkpoint"]) for r in rows), None))
        if "netadapt" in args.stages and checkpoint is not None and "cpu" in args.devices:
            stage("netadapt_cpu", lambda: netadapt_stage(args, "cpu", checkpoint, progress, budget))
        if "search" in args.stages:
            if budget.left() < args.search_estimate_s:
                results["search"] = {"skipped": f"{budget.left():.0f} s left"}
                save()
            else:
                stage("search", lambda: search_stage(args, progress))
        if "netadapt" in args.stages and checkpoint is not None and "cuda" in args.devices:
            stage("netadapt_cuda", lambda: netadapt_stage(args, "cuda", checkpoint, progress, budget))
    print(f"results in {args.out}", flush=True)


if __name__ == "__main__":
    main()
