"""NetAdapt (Yang et al., ECCV 2018) on hwadapt's channel groups.

Each iteration sets a latency target a little below the current network's predicted
latency, makes one proposal per channel group (:mod:`hwadapt.adapt.proposals`), builds
each by weight surgery keeping the highest-L2 filters, fine-tunes it briefly, and keeps
the proposal with the best *holdout* accuracy (or the best accuracy-drop / latency-drop
ratio). It stops when the prediction meets the budget, then fine-tunes the result longer.
Every kept network and every finished proposal is on disk (:mod:`hwadapt.adapt.rundir`),
so an interrupted run resumes where it stopped.

An iteration's proposals are independent tasks for the job's executor
(:mod:`hwadapt.cluster`): serially here, or in parallel on Ray workers. Each is
deterministic given its seed (``seed*100_003 + iteration*1_009 + index``) and the
iteration's network, and the selection reads the results in proposal order, so the
family is the same on every engine (at the same number of torch threads: a worker
trains with one). The driver writes each proposal as it finishes; a re-run builds only
the proposals not written yet.
"""
from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass

import torch

from hwadapt.adapt.proposals import Predict, Proposal, closest_to_target, iteration_target, propose
from hwadapt.adapt.registry import AdaptJob, Member, Method, MethodError, Outcome, register_method, setting
from hwadapt.adapt.rundir import RunDir, write_json
from hwadapt.adapt.surgery import CRITERIA, shrink_group
from hwadapt.arch import Arch
from hwadapt.cluster import Executor, SerialExecutor, TaskContext
from hwadapt.data import Splits
from hwadapt.materialize.torch_net import Net, load_checkpoint, save_checkpoint
from hwadapt.progress import Reporter
from hwadapt.train import TrainConfig, evaluate, finetune, fit
from hwadapt.train.device import cpu_copy

RESULT_FILE = "result.json"
SELECTIONS = ("accuracy", "ratio")


@dataclass(frozen=True)
class NetAdaptSettings:
    first_step: float = setting(0.025, "First iteration's reduction, as a fraction of the base latency.")
    decay: float = setting(0.96, "Each iteration's reduction is this times the last one's.")
    granularity: int = setting(8, "Channels a proposal removes at least (and keeps at least).")
    short_steps: int = setting(100, "Short-term fine-tune of each proposal, in SGD steps.")
    short_lr: float = setting(0.01, "Short-term fine-tune learning rate.")
    long_epochs: int = setting(10, "Long-term fine-tune of the result, in epochs.")
    long_lr: float = setting(0.05, "Long-term fine-tune learning rate (restarting at the training rate).")
    select: str = setting("accuracy", "Which proposal to keep: accuracy | ratio (accuracy lost per ms saved).")
    criterion: str = setting("l2", "Filter importance for surgery: l2 | l1.")
    max_iters: int = setting(100, "Iterations at most.")
    batch_size: int = setting(128, "Fine-tuning batch size.")
    weight_decay: float = setting(1e-4, "Fine-tuning weight decay.")
    graft: int = setting(0, "Long-term fine-tune as this many copies grafted in a ring (filter grafting), the best "
                            "on the holdout kept; 0: one network.")

    def __post_init__(self) -> None:
        if self.select not in SELECTIONS:
            raise MethodError(f"unknown --select {self.select!r}; use one of {', '.join(SELECTIONS)}")
        if self.criterion not in CRITERIA:
            raise MethodError(f"unknown --criterion {self.criterion!r}; use one of {', '.join(CRITERIA)}")
        if not (0 < self.first_step < 1 and 0 < self.decay <= 1):
            raise MethodError("first step must be in (0, 1) and decay in (0, 1]")
        if self.graft == 1 or self.graft < 0:
            raise MethodError(f"--graft {self.graft}: grafting needs a ring of 2 networks or more (0: none)")

    def train_config(self, lr: float, seed: int, epochs: int = 0) -> TrainConfig:
        return TrainConfig(epochs=epochs, lr=lr, batch_size=self.batch_size, weight_decay=self.weight_decay,
                           seed=seed)


@dataclass
class Loop:
    """One NetAdapt run: the job, its settings, its folder and how it prices networks."""

    job: AdaptJob
    settings: NetAdaptSettings
    run: RunDir

    @property
    def predict(self) -> Predict:
        return self.job.predictor.predict_ms

    @property
    def splits(self) -> Splits:
        return self.job.splits

    @property
    def reporter(self) -> Reporter:
        return self.job.reporter

    @property
    def executor(self) -> Executor:
        return self.job.executor or SerialExecutor(self.job.device, self.job.reporter)


def _row(net: Net, splits: Splits, iteration: int, predicted_ms: float, holdout: float, *,
         group: str = "", stage: str = "short-term", seconds: float = 0.0) -> dict:
    """A family member; ``seconds``: the training time spent to get it (the iteration's
    short-term fine-tunes, or the long-term epochs), kept across interruptions."""
    return {"iteration": iteration, "stage": stage, "group": group, "arch": net.arch.to_dict(),
            "predicted_ms": predicted_ms, "holdout_accuracy": holdout,
            "test_accuracy": evaluate(net, splits.test, splits), "seconds": seconds}


def start_state(loop: Loop) -> dict:
    """Record the base network as family member 0."""
    base = loop.job.base
    initial = loop.predict(base.arch)
    save_checkpoint(base, loop.run.member(0))
    row = _row(base, loop.splits, 0, initial, evaluate(base, loop.splits.holdout, loop.splits), stage="base")
    state = {"identity": loop.job.identity, "config": asdict(loop.settings), "initial_ms": initial,
             "phase": "search", "rows": [row], "stop": None}
    loop.run.save(state)
    return state


def _stop(state: dict, run: RunDir, reason: str, message: str) -> None:
    state["phase"], state["stop"] = "long-term", {"reason": reason, "message": message}
    run.save(state)


@dataclass(frozen=True)
class IterationData:
    """What every proposal of an iteration starts from (sent once to the workers)."""

    arch: dict  # the iteration's network
    state: dict[str, torch.Tensor]  # its weights, on the CPU
    splits: Splits
    settings: NetAdaptSettings
    seed: int  # the job's


@dataclass(frozen=True)
class ProposalTask:
    index: int
    group: str
    width: int
    predicted_ms: float
    seed: int  # its fine-tune's batches: seed*100_003 + iteration*1_009 + index


@dataclass
class BuiltProposal:
    result: dict  # written as the proposal's result.json
    net: Net  # fine-tuned, on the CPU


def build_proposal(data: IterationData, task: ProposalTask, context: TaskContext) -> BuiltProposal:
    """Shrink the iteration's network by one group, fine-tune it briefly and score it on
    the holdout: one task, the same wherever it runs."""
    s = data.settings
    started = time.perf_counter()
    current = Net(Arch.from_dict(data.arch))
    current.load_state_dict(data.state)
    net = shrink_group(current.to(context.device), task.group, task.width, s.criterion)
    reporter = context.reporter
    bar = reporter.start(f"  fine-tune {task.group}->{task.width}", total=s.short_steps)
    finetune(net, data.splits, s.short_steps, lr=s.short_lr, config=s.train_config(s.short_lr, data.seed),
             seed=task.seed, reporter=reporter, task=bar)
    reporter.finish(bar)
    result = {"group": task.group, "width": task.width, "predicted_ms": task.predicted_ms,
              "holdout_accuracy": evaluate(net, data.splits.holdout, data.splits),
              "seconds": time.perf_counter() - started}
    return BuiltProposal(result, net.cpu())


def build_proposals(loop: Loop, current: Net, proposals: list[Proposal], iteration: int, task: int) -> list[dict]:
    """Every proposal's result, in proposal order: read back when already on disk, else
    built by the executor and written as each finishes."""
    run, results = loop.run, {}
    todo = []
    for index, proposal in enumerate(proposals):
        done = run.proposal(iteration, proposal.group) / RESULT_FILE
        if done.is_file():
            results[index] = json.loads(done.read_text())
            loop.reporter.advance(task, 1, f"{proposal.group}: {results[index]['holdout_accuracy']:.3f} (saved)")
        else:
            todo.append(ProposalTask(index, proposal.group, proposal.width, proposal.predicted_ms,
                                     loop.job.seed * 100_003 + iteration * 1_009 + index))
    data = IterationData(current.arch.to_dict(), cpu_copy(current.state_dict()), loop.splits, loop.settings,
                         loop.job.seed)
    for position, built in loop.executor.map(build_proposal, data, todo):
        proposal = todo[position]
        folder = run.proposal(iteration, proposal.group)
        save_checkpoint(built.net, folder)
        write_json(folder / RESULT_FILE, built.result)  # last: a result.json means the proposal is whole
        results[proposal.index] = built.result
        loop.reporter.advance(task, 1, f"{proposal.group}: {built.result['holdout_accuracy']:.3f}")
    return [results[index] for index in range(len(proposals))]


def _select(results: list[dict], current: dict, how: str) -> dict:
    if how == "accuracy":
        return max(results, key=lambda r: (r["holdout_accuracy"], -r["predicted_ms"]))
    return min(results, key=lambda r: ((current["holdout_accuracy"] - r["holdout_accuracy"] + 1e-6)
                                       / (current["predicted_ms"] - r["predicted_ms"] + 1e-5)))


def iterate(loop: Loop, state: dict) -> None:
    """One NetAdapt iteration: proposals, short-term fine-tunes, selection (or a stop)."""
    s, run, budget = loop.settings, loop.run, loop.job.budget_ms
    current_row = state["rows"][-1]
    iteration, current_ms = current_row["iteration"] + 1, current_row["predicted_ms"]
    if current_ms <= budget:
        return _stop(state, run, "budget", f"budget met: predicted {current_ms:.4g} ms <= {budget:.4g} ms")
    if iteration > s.max_iters:
        return _stop(state, run, "max_iters", f"stopped after {s.max_iters} iterations at {current_ms:.4g} ms")
    current, _ = load_checkpoint(run.member(iteration - 1), loop.job.device)
    target = iteration_target(current_ms, state["initial_ms"], iteration - 1, first_step=s.first_step,
                              decay=s.decay, budget_ms=budget)
    proposals = (propose(current.arch, target, loop.predict, s.granularity)
                 or closest_to_target(current.arch, current_ms, loop.predict, s.granularity))
    if not proposals:
        return _stop(state, run, "unreachable", f"budget {budget:.4g} ms unreachable: no channel group can "
                     f"be narrowed further (minimum width {s.granularity}); stopped at {current_ms:.4g} ms")
    task = loop.reporter.start(f"iteration {iteration}: {current_ms:.4g} -> {target:.4g} ms", total=len(proposals))
    results = build_proposals(loop, current, proposals, iteration, task)
    best = _select(results, current_row, s.select)
    net, _ = load_checkpoint(run.adopt(iteration, best["group"]), loop.job.device)
    state["rows"].append(_row(net, loop.splits, iteration, best["predicted_ms"], best["holdout_accuracy"],
                              group=f"{best['group']}={best['width']}",
                              seconds=sum(r.get("seconds", 0.0) for r in results)))
    loop.reporter.finish(task)
    loop.reporter.note(f"iteration {iteration}: kept {best['group']}={best['width']} "
                       f"({best['predicted_ms']:.4g} ms predicted, holdout {best['holdout_accuracy']:.3f})")
    run.save(state)


def long_term(loop: Loop, state: dict) -> None:
    """Fine-tune the last kept network for ``long_epochs`` (resumable per epoch)."""
    s, run = loop.settings, loop.run
    last = state["rows"][-1]
    shutil.rmtree(run.root / "proposals", ignore_errors=True)
    net, _ = load_checkpoint(run.member(last["iteration"]), loop.job.device)
    if s.long_epochs > 0 and s.graft:
        from hwadapt.graft.workflow import copy_checkpoint, graft_finetune  # grafting builds on this package

        config = s.train_config(s.long_lr, loop.job.seed, s.long_epochs)
        best, result, seconds = graft_finetune(net, loop.splits, config, run.root / "graft", s.graft,
                                               reporter=loop.reporter, device=str(loop.job.device))
        copy_checkpoint(best, run.final)
        net, _ = load_checkpoint(run.final, loop.job.device)
        holdout = result["holdout_accuracy"]
    elif s.long_epochs > 0:
        summary = fit(net, loop.splits, s.train_config(s.long_lr, loop.job.seed, s.long_epochs), run.final,
                      identity={"from": f"family/{last['iteration']:03d}"}, reporter=loop.reporter)
        holdout = summary["holdout_accuracy"]
        seconds = sum(epoch.get("seconds", 0.0) for epoch in summary["history"])
    else:
        shutil.rmtree(run.final, ignore_errors=True)
        shutil.copytree(run.member(last["iteration"]), run.final)
        holdout, seconds = last["holdout_accuracy"], 0.0
    state["final"] = _row(net, loop.splits, last["iteration"], last["predicted_ms"], holdout,
                          group=last["group"], stage="long-term", seconds=seconds)
    state["phase"] = "done"
    run.save(state)


def adapt(loop: Loop) -> dict:
    """Run (or resume) NetAdapt up to its fine-tuned result; returns the state."""
    state = loop.run.open(loop.job.identity) or start_state(loop)
    while state["phase"] == "search":
        iterate(loop, state)
    if state["phase"] == "long-term":
        long_term(loop, state)
    return state


@register_method
class NetAdapt(Method):
    name = "netadapt"
    description = "NetAdapt: shrink one channel group per iteration, fine-tune, keep the best (Yang et al. 2018)"
    Settings = NetAdaptSettings

    def run(self, job: AdaptJob, settings: NetAdaptSettings) -> Outcome:
        loop = Loop(job, settings, RunDir(job.out))
        state = adapt(loop)
        members = [Member(None if row["iteration"] == 0 else loop.run.member(row["iteration"]), row)
                   for row in state["rows"]]
        stop = state["stop"] or {}
        return Outcome(loop.run.final, state["final"]["predicted_ms"], members, state["final"],
                       details={"iterations": len(state["rows"]) - 1, "stop_reason": stop.get("reason"),
                                "stop_message": stop.get("message")},
                       notes=[stop["message"]] if stop.get("message") else [])
