"""MorphNet (Gordon et al., CVPR 2018), with channels priced by what the device does.

Each cycle:
1. **shrink**: train with an L1 on the BN scales, each channel weighted by what it costs
   (:mod:`hwadapt.adapt.shrink`): its marginal latency from the LUT's calibrated
   predictor, its FLOPs or its weights (``--cost``), re-priced at the alive structure
   every ``--refresh-steps``; the coefficient is ``--strength`` over the network's
   initial cost (MorphNet's rule of thumb: strength ~ 1 / initial cost). Channels whose
   scale stays above ``--threshold`` are alive; the alive widths are the learned
   structure (``cycleN/learned.json``).
2. **expand**: the largest uniform multiplier over the learned structure whose predicted
   latency meets the budget (the paper's expand step; MorphNet's released code leaves it
   to the user), widths rounded to ``--granularity`` (``cycleN/expanded.json``).
3. **retrain**: fine-tune the strongest channels' weights (``--retrain finetune``; a group
   cannot grow past the width it had, there are no weights beyond it) or train the
   expanded network anew (``scratch``; a group may grow up to the family's full width,
   which the LUT covers).

The next cycle starts from the retrained network. ``regulariser.png`` shows the
regulariser's cost of the alive structure and its predicted latency over the steps.
"""
from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass

import torch

from hwadapt.adapt.gamma import ALIVE, alive_widths, keep_strongest, magnitudes
from hwadapt.adapt.marginal import PRICES, UNITS, tile_span
from hwadapt.adapt.registry import AdaptJob, Member, Method, MethodError, Outcome, register_method, setting
from hwadapt.adapt.rundir import RunDir
from hwadapt.adapt.shrink import ShrinkPlan, shrink, shrink_png
from hwadapt.adapt.surgery import prune
from hwadapt.adapt.workflow import NARROWEST
from hwadapt.arch import Arch, set_widths, width_groups
from hwadapt.families import build
from hwadapt.lut.predictor import LatencyPredictor
from hwadapt.lut.store import LutError
from hwadapt.materialize.torch_net import Net, load_checkpoint
from hwadapt.train import TrainConfig, evaluate, fit
from hwadapt.train.loop import steps_per_epoch

COSTS = ("latency", "flops", "size")
RETRAIN = ("finetune", "scratch")
PLOT_FILE = "regulariser.png"


@dataclass(frozen=True)
class MorphNetSettings:
    cost: str = setting("latency", "What a channel costs: latency (its marginal latency on the LUT) | flops | size.")
    strength: float = setting(1.0, "Regulariser strength, in units of 1 / the network's initial cost.")
    threshold: float = setting(ALIVE, "A channel is alive while its |BN scale| exceeds this.")
    shrink_epochs: int = setting(10, "Structure-learning epochs per cycle (with the regulariser).")
    shrink_lr: float = setting(0.05, "Structure-learning learning rate (fixed).")
    refresh_steps: int = setting(200, "Steps between re-pricing the channels at the alive structure.")
    cycles: int = setting(1, "Shrink/expand cycles.")
    retrain: str = setting("finetune", "After expanding: finetune (the strongest channels' weights) | scratch.")
    retrain_epochs: int = setting(10, "Epochs of training after each expand.")
    retrain_lr: float = setting(0.05, "Learning rate after each expand (SGD, cosine).")
    granularity: int = setting(8, "Expanded widths are multiples of this.")
    batch_size: int = setting(128, "Batch size.")
    weight_decay: float = setting(1e-4, "Weight decay (not on BN scales).")

    def __post_init__(self) -> None:
        if self.cost not in COSTS:
            raise MethodError(f"unknown --cost {self.cost!r}; use one of {', '.join(COSTS)}")
        if self.retrain not in RETRAIN:
            raise MethodError(f"unknown --retrain {self.retrain!r}; use one of {', '.join(RETRAIN)}")
        if min(self.shrink_epochs, self.refresh_steps, self.cycles, self.retrain_epochs, self.granularity) < 1:
            raise MethodError("--shrink-epochs, --refresh-steps, --cycles, --retrain-epochs and --granularity "
                              "must be at least 1")
        if self.strength < 0 or self.threshold < 0:
            raise MethodError("--strength and --threshold must not be negative")


@dataclass(frozen=True)
class Expansion:
    widths: dict[str, int]
    arch: Arch
    multiplier: float
    predicted_ms: float


def _scaled(alive: dict[str, int], ceiling: dict[str, int], multiplier: float, granularity: int,
            floor: int) -> dict[str, int]:
    """``multiplier`` x each alive width, to the nearest multiple of ``granularity``, kept
    within [floor, ceiling]."""
    return {name: min(ceiling[name], max(min(floor, ceiling[name]),
                                         granularity * math.floor(multiplier * width / granularity + 0.5)))
            for name, width in alive.items()}


def _breakpoints(alive: dict[str, int], ceiling: dict[str, int], granularity: int) -> list[float]:
    """The multipliers at which some group's rounded width steps up, largest first (and 0)."""
    points = {0.0}
    for name, width in alive.items():
        if width > 0:
            steps = -(-ceiling[name] // granularity)
            points |= {(k - 0.5) * granularity / width * (1 + 1e-9) for k in range(1, steps + 1)}
    return sorted(points, reverse=True)


def expand(learned: Arch, alive: dict[str, int], ceiling: dict[str, int], predictor: LatencyPredictor,
           budget_ms: float, granularity: int, floor: int = NARROWEST) -> Expansion:
    """The largest uniform multiplier over the alive widths whose predicted latency meets
    ``budget_ms`` (widths the table does not cover do not meet it); none does: every group
    at its narrowest (which the workflow has checked meets the budget)."""
    tried = set()
    for multiplier in _breakpoints(alive, ceiling, granularity):
        widths = _scaled(alive, ceiling, multiplier, granularity, floor)
        key = tuple(sorted(widths.items()))
        if key in tried:
            continue
        tried.add(key)
        arch = set_widths(learned, widths)
        try:
            predicted = predictor.predict_ms(arch)
        except LutError:
            continue
        if predicted <= budget_ms:
            return Expansion(widths, arch, multiplier, predicted)
    arch = set_widths(learned, _scaled(alive, ceiling, 0.0, granularity, floor))
    return Expansion(_scaled(alive, ceiling, 0.0, granularity, floor), arch, 0.0, predictor.predict_ms(arch))


def ceiling(net: Net, retrain: str) -> dict[str, int]:
    """How wide each group may grow: as wide as it is when fine-tuning; when training anew,
    as wide as the family's full-width network (what its LUT covers) has it."""
    own = {g.name: g.width(net.arch) for g in width_groups(net.arch)}
    if retrain == "finetune":
        return own
    arch = net.arch
    full = build(arch.family, width=max(1.0, float(arch.meta.get("width", 1.0))), resolution=arch.resolution,
                 num_classes=arch.num_classes)
    wide = {g.name: g.width(full) for g in width_groups(full)}
    return {name: max(width, wide.get(name, width)) for name, width in own.items()}


def _row(net: Net, job: AdaptJob, stage: str, holdout: float, **extra) -> dict:
    return {"stage": stage, "arch": net.arch.to_dict(), "predicted_ms": job.predictor.predict_ms(net.arch),
            "holdout_accuracy": holdout, "test_accuracy": evaluate(net, job.splits.test, job.splits), **extra}


def shrink_plan(job: AdaptJob, s: MorphNetSettings) -> ShrinkPlan:
    price = PRICES[s.cost](job.predictor)
    return ShrinkPlan("morphnet", price, tile_span(job.predictor), s.strength / price(job.base.arch),
                      s.shrink_epochs * steps_per_epoch(job.splits, s.batch_size), s.refresh_steps, s.shrink_lr,
                      s.batch_size, s.weight_decay, s.threshold, NARROWEST)


def run_cycle(job: AdaptJob, s: MorphNetSettings, index: int, net: Net) -> tuple[Net, dict]:
    """Shrink ``net`` (in place), expand its learned structure to the budget, retrain."""
    folder = job.out / f"cycle{index}"
    history = shrink(net, job, shrink_plan(job, s), folder / "shrink", seed=job.seed * 1_000 + index)
    found = magnitudes(net, "morphnet")
    alive = alive_widths(found, s.threshold, 0)  # a group with none alive does not grow when expanded
    learned = set_widths(net.arch, {name: max(NARROWEST, width) for name, width in alive.items()})
    learned.save(folder / "learned.json")
    expansion = expand(learned, alive, ceiling(net, s.retrain), job.predictor, job.budget_ms, s.granularity)
    expansion.arch.save(folder / "expanded.json")
    if s.retrain == "finetune":
        start = prune(net, keep_strongest(found, expansion.widths))
    else:
        torch.manual_seed(job.seed * 1_000 + index)
        start = Net(expansion.arch).to(job.device)
    config = TrainConfig(epochs=s.retrain_epochs, lr=s.retrain_lr, batch_size=s.batch_size,
                         weight_decay=s.weight_decay, seed=job.seed)
    summary = fit(start, job.splits, config, folder / "retrain",
                  identity={"from": f"cycle{index}", "retrain": s.retrain}, reporter=job.reporter)
    unchanged = all(alive[g.name] >= g.width(net.arch) for g in width_groups(net.arch))
    row = _row(start, job, f"cycle {index}", summary["holdout_accuracy"], cycle=index,
               multiplier=expansion.multiplier, learned=alive, learned_predicted_ms=job.predictor.predict_ms(learned),
               unchanged=unchanged, history=history)
    job.reporter.note(f"cycle {index}: learned structure {row['learned_predicted_ms']:.4g} ms predicted, expanded "
                      f"x{expansion.multiplier:.3g} to {expansion.predicted_ms:.4g} ms; "
                      f"test {row['test_accuracy']:.4f}")
    return start, row


def adapt(job: AdaptJob, s: MorphNetSettings) -> dict:
    """Run (or resume) every cycle; returns the state (the base's row and one per cycle)."""
    run = RunDir(job.out)
    state = run.open(job.identity)
    if state is None:
        state = {"identity": job.identity, "config": asdict(s),
                 "base": _row(job.base, job, "base", evaluate(job.base, job.splits.holdout, job.splits)),
                 "cycles": []}
        run.save(state)
    net = copy.deepcopy(job.base) if not state["cycles"] else \
        load_checkpoint(job.out / f"cycle{len(state['cycles'])}" / "retrain", job.device)[0]
    for index in range(len(state["cycles"]) + 1, s.cycles + 1):
        net, row = run_cycle(job, s, index, net)
        state["cycles"].append(row)
        run.save(state)
    return state


def notes(state: dict, s: MorphNetSettings) -> list[str]:
    return [f"cycle {row['cycle']}: no channel fell to --threshold {s.threshold:g}, so the learned structure is the "
            f"network itself (raise --strength or --shrink-epochs)" for row in state["cycles"] if row["unchanged"]]


@register_method
class MorphNet(Method):
    name = "morphnet"
    description = "MorphNet: L1 on BN scales weighted by each channel's latency (or FLOPs, size), expand, retrain"
    Settings = MorphNetSettings

    def check(self, base: Net, settings: MorphNetSettings) -> None:
        magnitudes(base, self.name)

    def run(self, job: AdaptJob, settings: MorphNetSettings) -> Outcome:
        state = adapt(job, settings)
        rows = state["cycles"]
        shrink_png(job.out / PLOT_FILE, [row["history"] for row in rows], UNITS[settings.cost], job.budget_ms,
                   f"{job.base.arch.family}: MorphNet, {settings.cost} cost, to {job.budget_ms:.3g} ms")
        family = [{k: v for k, v in row.items() if k != "history"} for row in rows]
        result = {**family[-1], "stage": "long-term"}
        members = [Member(None, state["base"])]
        members += [Member(job.out / f"cycle{row['cycle']}" / "retrain", row) for row in family[:-1]]
        details = {"cost": settings.cost, "coefficient": shrink_plan(job, settings).coefficient, "plot": PLOT_FILE,
                   "cycles": [{k: row[k] for k in ("cycle", "learned", "learned_predicted_ms", "multiplier",
                                                   "predicted_ms", "test_accuracy")} for row in family]}
        return Outcome(job.out / f"cycle{len(rows)}" / "retrain", result["predicted_ms"], members, result,
                       details=details, notes=notes(state, settings))
