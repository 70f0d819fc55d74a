"""The NetAdapt loop (Yang et al., ECCV 2018) on hwadapt channel groups.

Each iteration sets a latency target a little below the current network's predicted
latency, makes one proposal per channel group (:mod:`hwadapt.adapt.proposals`), builds
each by weight surgery keeping the highest-L2 filters, fine-tunes it briefly, and keeps
the proposal with the best *holdout* accuracy (or the best accuracy-drop / latency-drop
ratio). It stops when the prediction meets the budget, then fine-tunes the result longer.
"""
from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass

from rich.progress import Progress

from hwadapt.adapt.proposals import Predict, Proposal, closest_to_target, iteration_target, propose
from hwadapt.adapt.rundir import RunDir, write_json
from hwadapt.adapt.surgery import CRITERIA, shrink_group
from hwadapt.data import Splits
from hwadapt.errors import HwadaptError
from hwadapt.materialize.torch_net import Net, load_checkpoint, save_checkpoint
from hwadapt.train import TrainConfig, evaluate, finetune, fit

RESULT_FILE = "result.json"
SELECTIONS = ("accuracy", "ratio")


class AdaptError(HwadaptError):
    """Settings NetAdapt cannot work with."""


@dataclass(frozen=True)
class AdaptConfig:
    budget_ms: float
    first_step: float = 0.025  # of the initial latency, removed by the first iteration
    decay: float = 0.96  # NetAdapt's reduction schedule: each step is this times the last
    granularity: int = 8
    short_steps: int = 100  # short-term fine-tune of each proposal, in SGD steps
    short_lr: float = 0.01
    long_epochs: int = 10  # long-term fine-tune of the final network
    long_lr: float = 0.05  # restarts at the training lr: +3 points on CIFAR-10 over 0.01 (benchmarks README, run E)
    select: str = "accuracy"
    criterion: str = "l2"
    max_iters: int = 100
    batch_size: int = 128
    weight_decay: float = 1e-4
    seed: int = 0

    def __post_init__(self) -> None:
        if self.budget_ms <= 0:
            raise AdaptError(f"budget must be positive, got {self.budget_ms} ms")
        if self.select not in SELECTIONS:
            raise AdaptError(f"unknown --select {self.select!r}; use one of {', '.join(SELECTIONS)}")
        if self.criterion not in CRITERIA:
            raise AdaptError(f"unknown --criterion {self.criterion!r}; use one of {', '.join(CRITERIA)}")
        if not (0 < self.first_step < 1 and 0 < self.decay <= 1):
            raise AdaptError("first step must be in (0, 1) and decay in (0, 1]")

    def train_config(self, lr: float, epochs: int = 0) -> TrainConfig:
        return TrainConfig(epochs=epochs, lr=lr, batch_size=self.batch_size,
                           weight_decay=self.weight_decay, seed=self.seed)


def _row(net: Net, splits: Splits, iteration: int, predicted_ms: float, holdout: float, *,
         group: str = "", stage: str = "short-term", seconds: float = 0.0) -> dict:
    """A family member; ``seconds``: the training time spent to get it (the iteration's
    short-term fine-tunes, or the long-term epochs), kept across interruptions."""
    return {"iteration": iteration, "stage": stage, "group": group, "arch": net.arch.to_dict(),
            "predicted_ms": predicted_ms, "holdout_accuracy": holdout,
            "test_accuracy": evaluate(net, splits.test, splits), "seconds": seconds}


def start_state(base: Net, splits: Splits, predict: Predict, config: AdaptConfig, run: RunDir,
                identity: dict) -> dict:
    """Record the base network as family member 0."""
    initial = predict(base.arch)
    save_checkpoint(base, run.member(0))
    row = _row(base, splits, 0, initial, evaluate(base, splits.holdout, splits), stage="base")
    state = {"identity": identity, "config": asdict(config), "initial_ms": initial, "phase": "search",
             "rows": [row], "stop": None}
    run.save(state)
    return state


def _stop(state: dict, run: RunDir, reason: str, message: str) -> None:
    state["phase"], state["stop"] = "long-term", {"reason": reason, "message": message}
    run.save(state)


def _build_proposal(current: Net, proposal: Proposal, splits: Splits, config: AdaptConfig, run: RunDir,
                    iteration: int, index: int, progress: Progress | None) -> dict:
    """Shrink, fine-tune briefly and score one proposal (or reload it when already done)."""
    folder = run.proposal(iteration, proposal.group)
    if (folder / RESULT_FILE).is_file():
        return json.loads((folder / RESULT_FILE).read_text())
    started = time.perf_counter()
    net = shrink_group(current, proposal.group, proposal.width, config.criterion)
    task = progress.add_task(f"  fine-tune {proposal.group}->{proposal.width}", total=config.short_steps,
                             status="") if progress else None
    finetune(net, splits, config.short_steps, lr=config.short_lr, config=config.train_config(config.short_lr),
             seed=config.seed * 100_003 + iteration * 1_009 + index, progress=progress, task=task)
    if progress is not None:
        progress.remove_task(task)
    result = {"group": proposal.group, "width": proposal.width, "predicted_ms": proposal.predicted_ms,
              "holdout_accuracy": evaluate(net, splits.holdout, splits),
              "seconds": time.perf_counter() - started}
    save_checkpoint(net, folder)
    write_json(folder / RESULT_FILE, result)
    return result


def _select(results: list[dict], current: dict, how: str) -> dict:
    if how == "accuracy":
        return max(results, key=lambda r: (r["holdout_accuracy"], -r["predicted_ms"]))
    return min(results, key=lambda r: ((current["holdout_accuracy"] - r["holdout_accuracy"] + 1e-6)
                                       / (current["predicted_ms"] - r["predicted_ms"] + 1e-5)))


def iterate(state: dict, splits: Splits, predict: Predict, config: AdaptConfig, run: RunDir,
            progress: Progress | None = None) -> None:
    """One NetAdapt iteration: proposals, short-term fine-tunes, selection (or a stop)."""
    current_row = state["rows"][-1]
    iteration, current_ms = current_row["iteration"] + 1, current_row["predicted_ms"]
    if current_ms <= config.budget_ms:
        return _stop(state, run, "budget", f"budget met: predicted {current_ms:.3f} ms <= {config.budget_ms:.3f} ms")
    if iteration > config.max_iters:
        return _stop(state, run, "max_iters", f"stopped after {config.max_iters} iterations at {current_ms:.3f} ms")
    current, _ = load_checkpoint(run.member(iteration - 1))
    target = iteration_target(current_ms, state["initial_ms"], iteration - 1, first_step=config.first_step,
                              decay=config.decay, budget_ms=config.budget_ms)
    proposals = (propose(current.arch, target, predict, config.granularity)
                 or closest_to_target(current.arch, current_ms, predict, config.granularity))
    if not proposals:
        return _stop(state, run, "unreachable", f"budget {config.budget_ms:.3f} ms unreachable: no channel group can "
                     f"be narrowed further (minimum width {config.granularity}); stopped at {current_ms:.3f} ms")
    task = progress.add_task(f"iteration {iteration}: {current_ms:.3f} -> {target:.3f} ms",
                             total=len(proposals), status="") if progress else None
    results = []
    for index, proposal in enumerate(proposals):
        results.append(_build_proposal(current, proposal, splits, config, run, iteration, index, progress))
        if progress is not None:
            progress.update(task, advance=1, status=f"{proposal.group}: {results[-1]['holdout_accuracy']:.3f}")
    best = _select(results, current_row, config.select)
    net, _ = load_checkpoint(run.adopt(iteration, best["group"]))
    state["rows"].append(_row(net, splits, iteration, best["predicted_ms"], best["holdout_accuracy"],
                              group=f"{best['group']}={best['width']}",
                              seconds=sum(r.get("seconds", 0.0) for r in results)))
    if progress is not None:
        progress.update(task, status=f"kept {best['group']}={best['width']} "
                                     f"({best['predicted_ms']:.3f} ms, holdout {best['holdout_accuracy']:.3f})")
    run.save(state)


def long_term(state: dict, splits: Splits, config: AdaptConfig, run: RunDir,
              progress: Progress | None = None) -> None:
    """Fine-tune the last kept network for ``long_epochs`` (resumable per epoch)."""
    last = state["rows"][-1]
    shutil.rmtree(run.root / "proposals", ignore_errors=True)
    net, _ = load_checkpoint(run.member(last["iteration"]))
    if config.long_epochs > 0:
        summary = fit(net, splits, config.train_config(config.long_lr, config.long_epochs), run.final,
                      identity={"from": f"family/{last['iteration']:03d}"}, progress=progress)
        holdout = summary["holdout_accuracy"]
        seconds = sum(epoch.get("seconds", 0.0) for epoch in summary["history"])
    else:
        shutil.rmtree(run.final, ignore_errors=True)
        shutil.copytree(run.member(last["iteration"]), run.final)
        holdout, seconds = last["holdout_accuracy"], 0.0
    state["final"] = _row(net, splits, last["iteration"], last["predicted_ms"], holdout,
                          group=last["group"], stage="long-term", seconds=seconds)
    state["phase"] = "measure"
    run.save(state)


def adapt(base: Net, splits: Splits, predict: Predict, config: AdaptConfig, run: RunDir, identity: dict,
          progress: Progress | None = None) -> dict:
    """Run (or resume) NetAdapt up to the measurement phase; returns the state."""
    state = run.open(identity) or start_state(base, splits, predict, config, run, identity)
    while state["phase"] == "search":
        iterate(state, splits, predict, config, run, progress)
    if state["phase"] == "long-term":
        long_term(state, splits, config, run, progress)
    return state
