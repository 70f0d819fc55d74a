"""Structure learning with an L1 on BN scales: MorphNet's shrink step and network
slimming's sparsity training, resumable, with the plot of how it went.

The network trains at a fixed learning rate (MorphNet's advice: a decaying rate would
freeze the structure before it forms) with :class:`~hwadapt.adapt.gamma.GammaL1` added
to its loss. Every ``refresh`` steps the channels are priced again at the structure the
scales have learned so far (the *alive* structure), a row of the history is written and
the network, its optimizer and the history are checkpointed, so a re-run continues
from the last refresh.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from hwadapt.adapt.gamma import GammaL1, alive_arch, alive_widths, magnitudes  # noqa: E402
from hwadapt.adapt.marginal import Price, margins  # noqa: E402
from hwadapt.adapt.registry import AdaptJob  # noqa: E402
from hwadapt.adapt.rundir import RunDirError  # noqa: E402
from hwadapt.materialize.torch_net import WEIGHTS_FILE, Net, load_checkpoint, save_checkpoint  # noqa: E402
from hwadapt.train import TrainConfig  # noqa: E402
from hwadapt.train.loop import make_optimizer, train_steps  # noqa: E402


@dataclass(frozen=True)
class ShrinkPlan:
    """How to learn a structure: the regulariser (a price and a coefficient) and the training."""

    method: str  # whose plan (for error messages)
    price: Price  # what a network costs; a channel is charged its group's marginal price
    span: int  # channels a marginal price is taken over (:func:`~hwadapt.adapt.marginal.tile_span`)
    coefficient: float  # multiplies the weighted sum of magnitudes
    steps: int
    refresh: int  # steps between re-pricing, history rows and checkpoints
    lr: float  # fixed
    batch_size: int
    weight_decay: float
    threshold: float  # alive above this magnitude
    floor: int  # narrowest width a table prices


def charge(net: Net, plan: ShrinkPlan, hook: GammaL1) -> None:
    """Price each group's channels at the alive structure: a channel whose removal the
    price says saves nothing (or costs) is not charged."""
    structure = alive_arch(net.arch, magnitudes(net, plan.method), plan.threshold, plan.floor)
    hook.weights = {name: max(0.0, margin.per_channel)
                    for name, margin in margins(structure, plan.price, plan.span, plan.floor).items()}


def history_row(net: Net, plan: ShrinkPlan, job: AdaptJob, step: int, loss: float | None, penalty: float) -> dict:
    found = magnitudes(net, plan.method)
    structure = alive_arch(net.arch, found, plan.threshold, plan.floor)
    return {"step": step, "loss": loss, "penalty": penalty, "cost": plan.price(structure),
            "predicted_ms": job.predictor.predict_ms(structure),
            "alive": alive_widths(found, plan.threshold, plan.floor)}


def shrink(net: Net, job: AdaptJob, plan: ShrinkPlan, folder: Path, seed: int) -> list[dict]:
    """Train ``net`` (in place) under the regulariser for ``plan.steps`` steps, resuming
    from ``folder``; returns the history (a row at step 0 and one per refresh)."""
    hook = GammaL1(net, plan.method, plan.coefficient)
    config = TrainConfig(lr=plan.lr, batch_size=plan.batch_size, weight_decay=plan.weight_decay, seed=seed)
    optimizer = make_optimizer(net, config)
    if (folder / WEIGHTS_FILE).is_file():
        saved, extra = load_checkpoint(folder, job.device)
        if saved.arch != net.arch:
            raise RunDirError(f"{folder} holds the structure learning of another network; remove it to start again")
        net.load_state_dict(saved.state_dict())
        optimizer.load_state_dict(extra["optimizer"])
        history = extra["history"]
    else:
        charge(net, plan, hook)
        history = [history_row(net, plan, job, 0, None, float(hook.value().detach()))]
    done = history[-1]["step"]
    task = job.reporter.start("learn the structure (L1 on BN scales)", total=plan.steps, done=done)
    while done < plan.steps:
        charge(net, plan, hook)
        steps = min(plan.refresh, plan.steps - done)
        loss = train_steps(net, job.splits, optimizer, base_lr=plan.lr, first_step=0, steps=steps, total_steps=0,
                           batch_size=plan.batch_size, rng=np.random.default_rng([seed, done]),
                           reporter=job.reporter, task=task, hook=hook)
        done += steps
        history.append(history_row(net, plan, job, done, loss, hook.mean_penalty()))
        job.reporter.update(task, status=f"alive structure {history[-1]['predicted_ms']:.4g} ms")
        save_checkpoint(net, folder, {"optimizer": optimizer.state_dict(), "history": history})
    job.reporter.finish(task)
    return history


def shrink_png(path: Path, histories: list[list[dict]], cost_name: str, budget_ms: float, title: str) -> Path:
    """The regulariser's cost of the alive structure, the penalty it adds to the loss, and
    the alive structure's predicted latency over the training steps (one history per
    shrink/expand cycle, one after the other)."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(6.4, 6.0), sharex=True)
    penalty_axis = top.twinx()
    offset = 0
    for cycle, history in enumerate(histories):
        steps = [offset + row["step"] for row in history]
        trained = [row for row in history if row["loss"] is not None]
        first = cycle == 0  # one legend entry per line
        top.plot(steps, [row["cost"] for row in history], "-", color="tab:blue",
                 label="cost of the alive structure" if first else None)
        penalty_axis.plot([offset + row["step"] for row in trained], [row["penalty"] for row in trained], ":",
                          color="tab:red", label="penalty (mean over the steps before)" if first else None)
        bottom.plot(steps, [row["predicted_ms"] for row in history], "-", color="tab:green",
                    label="alive structure, predicted" if first else None)
        if not first:
            for axis in (top, bottom):
                axis.axvline(offset, color="grey", lw=0.5)
        offset = steps[-1]
    bottom.axhline(budget_ms, color="grey", ls="--", label=f"budget {budget_ms:.3g} ms")
    top.set(ylabel=f"regulariser's cost ({cost_name})", title=title)
    penalty_axis.set_ylabel("penalty in the loss", color="tab:red")
    bottom.set(xlabel="training step", ylabel="latency (ms)")
    for axis in (top, bottom):
        axis.grid(alpha=0.3)
    handles = [h for axis in (top, penalty_axis) for h in axis.get_legend_handles_labels()[0]]
    top.legend(handles, [h.get_label() for h in handles], fontsize=8, loc="upper right")
    bottom.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
