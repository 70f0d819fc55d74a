"""``hwadapt graft`` as a library call, and grafting as a long-term fine-tune.

A run trains N networks grafted in a ring (``grafted/``) and the same N networks (same
initialisations, learning rates and batches) independently (``independent/``), so that
``report.json`` holds each network's accuracy both ways at equal epochs. Each set resumes
from the last epoch all its networks finished.
"""
from __future__ import annotations

import dataclasses
import json
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from hwadapt.adapt.workflow import claim, subsets
from hwadapt.data import Splits, load_dataset
from hwadapt.data.splits import HOLDOUT_FRACTION
from hwadapt.families import build
from hwadapt.graft.exchange import BACKENDS, worker_threads
from hwadapt.graft.rule import GraftError, GraftSettings
from hwadapt.graft.worker import GraftPlan, finished_epoch, finished_results
from hwadapt.materialize.torch_net import Net
from hwadapt.progress import QUIET, Reporter
from hwadapt.train import TrainConfig

REPORT_FILE = "report.json"


@dataclass(frozen=True)
class GraftJob:
    """What ``hwadapt graft`` is asked: N networks of a family, trained grafted and alone."""

    out: Path
    family: str
    data: str
    nets: int
    train: TrainConfig
    settings: GraftSettings = GraftSettings()
    width: float = 1.0
    resolution: int = 32
    difflr: bool = True
    train_images: int | None = None
    holdout: float = HOLDOUT_FRACTION
    backend: str = "processes"
    device: str = "cpu"


@dataclass
class GraftReport:
    family: str
    width: float
    data: str
    nets: int
    epochs: int
    settings: dict[str, Any]  # A, c, level
    difflr: bool
    networks: list[dict[str, Any]]  # per network: rank, lr, grafted / independent test and holdout accuracy, gain
    mean_gain: float  # grafted minus independent test accuracy, averaged over the networks
    wall_s: dict[str, float]  # per set, this run's

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(dataclasses.asdict(self), indent=2) + "\n")


def backend_of(name: str):
    try:
        return BACKENDS[name]
    except KeyError:
        raise GraftError(f"unknown grafting backend {name!r}; known: {', '.join(sorted(BACKENDS))}") from None


def train_set(plan: GraftPlan, backend: str, reporter: Reporter, label: str) -> list[dict[str, Any]]:
    """Every network of a set, trained (or resumed from the epoch all finished, or read
    back when the set is complete)."""
    done = finished_results(plan.out, plan.nets)
    if done is not None:
        return done
    start = finished_epoch(plan.out, plan.nets)
    if start:
        reporter.note(f"{label}: resuming after epoch {start}")
    return backend_of(backend).run(replace(plan, start=start), reporter, label)


def run_graft(job: GraftJob, reporter: Reporter = QUIET) -> GraftReport:
    """Train the grafted set and the independent set (or resume them); write ``report.json``."""
    if job.nets < 2:
        raise GraftError(f"grafting needs at least 2 networks in the ring, got --nets {job.nets}")
    splits = subsets(load_dataset(job.data, job.resolution, seed=job.train.seed, holdout_fraction=job.holdout),
                     job.train_images, None, job.train.seed)
    arch = build(job.family, width=job.width, resolution=job.resolution, num_classes=splits.num_classes)
    identity = {"arch": arch.to_dict(), "data": splits.source, "nets": job.nets, "train": dataclasses.asdict(job.train),
                "settings": dataclasses.asdict(job.settings), "difflr": job.difflr, "train_images": job.train_images,
                "holdout": job.holdout}
    claim(job.out, identity, "a graft run")
    backend_of(job.backend)
    plan = GraftPlan(arch.to_dict(), splits, job.train, job.nets, job.out / "grafted", job.settings,
                     difflr=job.difflr, threads=worker_threads(job.nets), device=job.device)
    wall: dict[str, float] = {}
    found = {}
    for name, set_plan in (("grafted", plan), ("independent", replace(plan, out=job.out / "independent",
                                                                       graft=False))):
        started = time.perf_counter()
        found[name] = train_set(set_plan, job.backend, reporter, f"{name}: {job.nets} networks")
        wall[name] = time.perf_counter() - started
    networks = [{"rank": g["rank"], "lr": g["lr"], "grafted_test_accuracy": g["test_accuracy"],
                 "independent_test_accuracy": i["test_accuracy"], "grafted_holdout_accuracy": g["holdout_accuracy"],
                 "independent_holdout_accuracy": i["holdout_accuracy"], "gain": g["test_accuracy"] - i["test_accuracy"]}
                for g, i in zip(found["grafted"], found["independent"])]
    report = GraftReport(job.family, job.width, splits.source, job.nets, job.train.epochs,
                         dataclasses.asdict(job.settings), job.difflr, networks,
                         sum(n["gain"] for n in networks) / len(networks), wall)
    report.save(job.out / REPORT_FILE)
    return report


def graft_finetune(net: Net, splits: Splits, config: TrainConfig, out: Path, nets: int, *,
                   settings: GraftSettings = GraftSettings(), reporter: Reporter = QUIET,
                   device: str = "cpu", backend: str = "processes") -> tuple[Path, dict[str, Any], float]:
    """Fine-tune ``net`` as ``nets`` copies grafted in a ring (each its own learning rate
    and batches), in ``out`` (resumable); returns the checkpoint of the copy with the best
    holdout accuracy, its result (history, holdout and test accuracy) and the training
    seconds of all the copies together."""
    if nets < 2:
        raise GraftError(f"grafting needs at least 2 networks in the ring, got {nets}")
    init = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
    plan = GraftPlan(net.arch.to_dict(), splits, config, nets, out, settings, init=init,
                     threads=worker_threads(nets), device=device)
    results = train_set(plan, backend, reporter, f"grafted fine-tune: {nets} networks")
    best = max(results, key=lambda r: r["holdout_accuracy"])
    return Path(best["checkpoint"]), best, sum(e["seconds"] for r in results for e in r["history"])


def copy_checkpoint(source: Path, target: Path) -> None:
    """Put the checkpoint at ``source`` in ``target`` (replacing what is there)."""
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target)
