"""Latency-saliency knapsack pruning (HALP: Shen et al., NeurIPS 2022) on the LUT.

Pruning step k of K (after ``--interval-steps`` training steps):
1. **importance**: each channel's first-order Taylor estimate on its BNs,
   ``(gamma * dL/dgamma + beta * dL/dbeta)^2`` summed over the group's BNs (its
   producers' and the depthwise ones that filter it: in a MobileNet a pointwise BN's
   estimate is zero, :mod:`hwadapt.adapt.gamma` says why), averaged over the steps
   since the last pruning step;
2. **latency cost**: each group's marginal latency on the LUT's calibrated predictor, at
   every width it may keep (multiples of ``--granularity``), every other group as it is;
3. **knapsack**: each group keeps a prefix of its channels by importance, the prefixes
   chosen together to keep the most importance within the step's latency target
   (a multiple-choice knapsack over the groups, solved by dynamic programming on the sum
   of the groups' costs; when the network it picks is priced over the target as a whole,
   the capacity shrinks by the excess and it picks again).

Targets decay geometrically from the base's latency to the budget over the K steps;
then the pruned network is fine-tuned. Every step's network is in ``steps/NNN`` and the
run resumes after the last finished step.
"""
from __future__ import annotations

import copy
from dataclasses import asdict, dataclass

import numpy as np
import torch

from hwadapt.adapt.gamma import group_norms
from hwadapt.adapt.marginal import savings
from hwadapt.adapt.registry import AdaptJob, Member, Method, MethodError, Outcome, register_method, setting
from hwadapt.adapt.rundir import RunDir
from hwadapt.adapt.surgery import keep_top, prune
from hwadapt.adapt.workflow import NARROWEST
from hwadapt.arch import Arch, set_widths, width_groups
from hwadapt.lut.predictor import LatencyPredictor
from hwadapt.materialize.torch_net import Net, load_checkpoint, save_checkpoint
from hwadapt.train import TrainConfig, evaluate, fit
from hwadapt.train.loop import StepHook, make_optimizer, train_steps

BINS = 2000  # the knapsack's resolution: its capacity in this many steps
RETRIES = 20  # times the capacity shrinks when the pick is priced over the target
SHOWN = 5  # pruning steps on the family plot, evenly spread (each costs a test-set evaluation)


@dataclass(frozen=True)
class KnapsackSettings:
    prune_steps: int = setting(30, "Pruning steps; the latency target decays to the budget over them (HALP: 30).")
    interval_steps: int = setting(40, "Training steps before each pruning step, Taylor importance averaged over "
                                      "them (HALP: 40).")
    prune_lr: float = setting(0.01, "Learning rate while pruning (fixed).")
    finetune_epochs: int = setting(10, "Fine-tuning epochs after the last pruning step.")
    finetune_lr: float = setting(0.05, "Fine-tuning learning rate (SGD, cosine).")
    granularity: int = setting(8, "Each group keeps a multiple of this many channels, or all of them.")
    batch_size: int = setting(128, "Batch size.")
    weight_decay: float = setting(1e-4, "Weight decay (not on BN scales).")

    def __post_init__(self) -> None:
        if min(self.prune_steps, self.interval_steps, self.finetune_epochs, self.granularity) < 1:
            raise MethodError("--prune-steps, --interval-steps, --finetune-epochs and --granularity must be at "
                              "least 1")


class Taylor(StepHook):
    """Accumulates each channel's first-order Taylor importance on its BN after every backward pass."""

    def __init__(self, net: Net) -> None:
        self.groups = group_norms(net, "knapsack")
        with torch.no_grad():
            self.sums = {g.name: torch.zeros_like(g.magnitude(), dtype=torch.float32) for g in self.groups}
        self.steps = 0

    def after_backward(self) -> None:
        with torch.no_grad():
            for group in self.groups:
                self.sums[group.name] += sum((bn.weight[part] * bn.weight.grad[part]
                                              + bn.bias[part] * bn.bias.grad[part]).float() ** 2
                                             for bn, part in group.norms)
        self.steps += 1

    def importance(self) -> dict[str, np.ndarray]:
        """Each group's per-channel importance, averaged over the steps seen."""
        steps = max(self.steps, 1)
        return {name: (total / steps).cpu().numpy().astype(np.float64) for name, total in self.sums.items()}


def step_target(base_ms: float, budget_ms: float, step: int, steps: int) -> float:
    """Step ``step`` (1..``steps``)'s target: geometric from the base's latency to the budget."""
    return base_ms * (budget_ms / base_ms) ** (step / steps)


def width_options(width: int, granularity: int, floor: int = NARROWEST) -> list[int]:
    """The widths a group of ``width`` may keep: multiples of ``granularity`` from ``floor``, and all of them."""
    low = min(floor, width)
    return sorted({low, width} | {w for w in range(granularity, width, granularity) if w >= low})


@dataclass(frozen=True)
class Choice:
    """One group's options: the widths, the importance each keeps, the latency each costs."""

    name: str
    widths: list[int]
    values: np.ndarray
    costs: np.ndarray  # ms over the group's narrowest option, every other group as it is


def choices(arch: Arch, importance: dict[str, np.ndarray], predictor: LatencyPredictor,
            granularity: int) -> tuple[list[Choice], float]:
    """Every group's options, and the latency the sum of their costs may reach for the
    whole to be priced at the current network's (the knapsack's capacity before the cut
    it must make)."""
    found, room = [], 0.0
    for group in width_groups(arch):
        widths = width_options(group.width(arch), granularity)
        saved = savings(arch, predictor.predict_ms, group.name, widths)
        ordered = np.sort(importance[group.name])[::-1]
        kept = np.concatenate([[0.0], np.cumsum(ordered)])
        # a wider option priced below the narrowest counts as costing nothing: conservative
        costs = np.maximum(saved[0] - saved, 0.0)
        found.append(Choice(group.name, widths, kept[widths], costs))
        room += float(costs[-1])
    return found, room


def solve(options: list[Choice], capacity: float, bins: int = BINS) -> dict[str, int]:
    """The width of every group that keeps the most importance with the groups' costs
    summing to at most ``capacity`` (costs rounded up to ``capacity / bins``); every group
    at its narrowest option where nothing fits."""
    if capacity <= 0:
        return {c.name: c.widths[0] for c in options}
    unit = capacity / bins
    best = np.zeros(bins + 1)  # most importance kept at each total cost so far
    picks = []
    for choice in options:
        cost = np.ceil(choice.costs / unit - 1e-9).astype(int)
        table = np.full((len(choice.widths), bins + 1), -np.inf)
        for j, (c, v) in enumerate(zip(cost, choice.values)):
            if c <= bins:
                table[j, c:] = best[:bins + 1 - c] + v
        picks.append(table.argmax(axis=0))
        best = table.max(axis=0)
    widths, budget = {}, bins
    for choice, pick in zip(reversed(options), reversed(picks)):
        j = int(pick[budget])
        widths[choice.name] = choice.widths[j]
        budget -= int(np.ceil(choice.costs[j] / unit - 1e-9))
    return widths


def knapsack_widths(arch: Arch, importance: dict[str, np.ndarray], predictor: LatencyPredictor, target_ms: float,
                    granularity: int) -> dict[str, int]:
    """The widths the knapsack keeps for ``target_ms``; the capacity shrinks by the excess
    while the network it picks is priced over the target."""
    options, room = choices(arch, importance, predictor, granularity)
    capacity = target_ms - predictor.predict_ms(arch) + room
    for _ in range(RETRIES):
        widths = solve(options, capacity)
        excess = predictor.predict_ms(set_widths(arch, widths)) - target_ms
        if excess <= 0 or capacity <= 0:
            return widths
        capacity -= excess
    return solve(options, 0.0)


def prune_to(net: Net, importance: dict[str, np.ndarray], widths: dict[str, int]) -> Net:
    """``net`` keeping each group's ``widths`` most important channels."""
    return prune(net, {name: keep_top(importance[name], width) for name, width in widths.items()})


def _row(net: Net, job: AdaptJob, stage: str, evaluated: bool = True, **extra) -> dict:
    return {"stage": stage, "arch": net.arch.to_dict(), "predicted_ms": job.predictor.predict_ms(net.arch),
            "test_accuracy": evaluate(net, job.splits.test, job.splits) if evaluated else None, **extra}


def shown(step: int, steps: int) -> bool:
    """Whether pruning step ``step`` of ``steps`` is on the family plot (the last always is)."""
    return step in {int(k) for k in np.linspace(steps, 1, min(steps, SHOWN)).round()}


def prune_step(job: AdaptJob, s: KnapsackSettings, net: Net, step: int, base_ms: float) -> tuple[Net, dict]:
    """Train ``net`` for the interval, gathering importance, then prune it to the step's target."""
    taylor = Taylor(net)
    config = TrainConfig(lr=s.prune_lr, batch_size=s.batch_size, weight_decay=s.weight_decay, seed=job.seed)
    task = job.reporter.start(f"pruning step {step}/{s.prune_steps}: importance", total=s.interval_steps)
    train_steps(net, job.splits, make_optimizer(net, config), base_lr=s.prune_lr, first_step=0,
                steps=s.interval_steps, total_steps=0, batch_size=s.batch_size,
                rng=np.random.default_rng([job.seed, step]), reporter=job.reporter, task=task, hook=taylor)
    job.reporter.finish(task)
    target = step_target(base_ms, job.budget_ms, step, s.prune_steps)
    importance = taylor.importance()
    if job.predictor.predict_ms(net.arch) > target:
        net = prune_to(net, importance, knapsack_widths(net.arch, importance, job.predictor, target, s.granularity))
    row = _row(net, job, "short-term", shown(step, s.prune_steps), step=step, target_ms=target)
    job.reporter.note(f"pruning step {step}: target {target:.4g} ms, predicted {row['predicted_ms']:.4g} ms"
                      + (f", test {row['test_accuracy']:.4f}" if row["test_accuracy"] is not None else ""))
    return net, row


def adapt(job: AdaptJob, s: KnapsackSettings) -> dict:
    """Run (or resume) the pruning steps and the fine-tune; returns the state."""
    run = RunDir(job.out)
    state = run.open(job.identity)
    if state is None:
        state = {"identity": job.identity, "config": asdict(s), "base": _row(job.base, job, "base"), "steps": []}
        run.save(state)
    done = len(state["steps"])
    net = load_checkpoint(run.member(done), job.device)[0] if done else copy.deepcopy(job.base)
    base_ms = state["base"]["predicted_ms"]
    for step in range(done + 1, s.prune_steps + 1):
        net, row = prune_step(job, s, net, step, base_ms)
        save_checkpoint(net, run.member(step))
        state["steps"].append(row)
        run.save(state)
    config = TrainConfig(epochs=s.finetune_epochs, lr=s.finetune_lr, batch_size=s.batch_size,
                         weight_decay=s.weight_decay, seed=job.seed)
    summary = fit(net, job.splits, config, run.final, identity={"from": f"family/{s.prune_steps:03d}"},
                  reporter=job.reporter)
    state["final"] = _row(net, job, "long-term", holdout_accuracy=summary["holdout_accuracy"])
    run.save(state)
    return state


@register_method
class Knapsack(Method):
    name = "knapsack"
    description = "HALP: Taylor importance on BN, LUT latency per group, knapsack under decaying targets, fine-tune"
    Settings = KnapsackSettings

    def check(self, base: Net, settings: KnapsackSettings) -> None:
        group_norms(base, self.name)

    def run(self, job: AdaptJob, settings: KnapsackSettings) -> Outcome:
        state = adapt(job, settings)
        run = RunDir(job.out)
        members = [Member(None, state["base"])]
        members += [Member(run.member(row["step"]), row) for row in state["steps"]
                    if row["test_accuracy"] is not None]
        return Outcome(run.final, state["final"]["predicted_ms"], members, state["final"],
                       details={"steps": [{k: row[k] for k in ("step", "target_ms", "predicted_ms")}
                                          for row in state["steps"]]})
