"""A channel-structured ticket: a narrower architecture (the one NetAdapt found) whose
channels are the dense network's, trained three ways at an equal number of steps.

* ``rewound``: the channels with the largest trained L2 norm (NetAdapt's criterion,
  chosen once on the dense level 0 of a lottery run, per channel group), their weights
  rewound to the run's step k, trained steps k..T like a ticket;
* ``scratch``: the architecture from a fresh random initialisation, the same steps;
* fine-tuned: NetAdapt's own result (its short-term fine-tunes, then a long-term
  fine-tune of as many epochs): run by ``hwadapt adapt``, not here.

Unlike an unstructured ticket, a structured one is a smaller dense network: every
runtime runs it faster (:mod:`hwadapt.lottery.cost` measures by how much).
"""
from __future__ import annotations

import numpy as np
import torch

from hwadapt.adapt.surgery import channel_scores, keep_top, prune
from hwadapt.arch import Arch, width_groups
from hwadapt.errors import HwadaptError
from hwadapt.lottery.imp import LotteryJob, rewound, train_arm, trained_arm
from hwadapt.lottery.masks import dense_masks
from hwadapt.materialize.torch_net import Net

class StructuredError(HwadaptError):
    """A target architecture that is not a narrowing of the lottery run's network."""


def channel_keep(trained: Net, target: Arch) -> dict[str, np.ndarray]:
    """Per channel group, the ``target`` width's channels of ``trained`` with the largest L2 norm."""
    return {group.name: keep_top(channel_scores(trained, group, "l2"), group.width(target))
            for group in width_groups(trained.arch)}


def narrowed(net: Net, keep: dict[str, np.ndarray], target: Arch) -> Net:
    """``net`` keeping the channels ``keep`` names; an error unless that is ``target``."""
    out = prune(net, keep)
    if out.arch.to_dict()["blocks"] != target.to_dict()["blocks"]:
        raise StructuredError(f"the target architecture is not a narrowing of the {net.arch.family} network "
                              "of the lottery run (different blocks)")
    return out


def structured_arms(job: LotteryJob, target: Arch) -> dict[str, float]:
    """Test accuracy of the ``rewound`` and ``scratch`` arms (resumable, in
    ``structured/`` of the run folder)."""
    trained, _ = trained_arm(job, 0)
    keep = channel_keep(trained, target)
    k = job.settings.rewind_steps
    ticket = narrowed(rewound(job), keep, target)
    torch.manual_seed(job.settings.seed + 7)
    nets = {"rewound": ticket, "scratch": Net(ticket.arch)}
    return {arm: train_arm(job, net, dense_masks(net), 0, arm, start=k, folder=job.out / "structured" / arm)
            for arm, net in nets.items()}
