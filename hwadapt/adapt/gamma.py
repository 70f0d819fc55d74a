"""BN scales (gammas) as the gates of a network's channels, and their L1 regulariser.

A channel group's channels are produced by one or more convolutions, each followed by a
BN (:func:`hwadapt.adapt.surgery.producers`; a residual-tied group has several), and may
be filtered one by one by depthwise convolutions, each followed by a BN of its own
(:func:`carriers`). Every one of those BNs scales the channel, and the carriers' matter
most in MobileNets: a pointwise convolution's BN feeds a depthwise convolution and its
BN, which normalises each channel again, so the pointwise scale of a channel can shrink
without changing what the network computes (the loss has no gradient along it, and an
importance read off it alone is zero); the depthwise BN's scale feeds a convolution that
mixes channels, and says how much the channel matters.

A group's magnitude for a channel is therefore the largest |gamma| over all its BNs
(MorphNet's grouping by maximum): the channel is alive while any of them is above the
threshold, which is also what a residual-tied group needs (a channel can go only when
every branch adding into it has let it go).

:class:`GammaL1` is the regulariser of MorphNet and of network slimming: the sum over
groups of a per-channel weight (what one of the group's channels costs) times its
channels' magnitudes. MorphNet weighs channels by their marginal FLOPs, weights or
latency; network slimming by one each.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from hwadapt.adapt.registry import MethodError
from hwadapt.adapt.surgery import keep_top, producers
from hwadapt.arch import Arch, WidthGroup, set_widths, width_groups
from hwadapt.materialize.torch_net import Net
from hwadapt.train.loop import StepHook

ALIVE = 1e-2  # a channel is alive while its magnitude exceeds this (MorphNet's Keras examples)


_OUT, _MID = 1 << 20, 1 << 21  # markers: channel indices from these up are a block's outputs, its inner width's


def carriers(net: Net, group: WidthGroup) -> list[tuple[nn.Module, slice]]:
    """The depthwise units that filter the channels of ``group`` one by one, each with the
    slice of its channels that are the group's (found through the blocks' own account of
    which channels each unit keeps: a depthwise unit keeps its input's or inner ones)."""
    arch, members, found = net.arch, set(group.members), []
    for i, (block, cin) in enumerate(zip(arch.blocks, arch.input_widths())):
        units = block.spec.unit_channels(block, np.arange(cin), np.arange(block.width) + _OUT,
                                         np.arange(block.mid) + _MID)
        for name, kept, inputs in units:
            unit = getattr(net.blocks[i], name, None)
            if inputs is not None or unit is None or not len(kept):
                continue
            if kept.min() >= _MID:
                fields = [((i, "mid"), slice(0, block.mid))]
            elif i > 0:
                before = arch.blocks[i - 1]
                fields = [((i - 1, "out"), slice(0, before.out)), ((i - 1, "carry"), slice(before.out, before.width))]
            else:
                fields = []
            found += [(unit, part) for member, part in fields if member in members]
    return found


@dataclass(frozen=True)
class GroupNorms:
    """The BNs holding one group's scales (its producers', then its carriers'), each with
    the slice of its channels that are the group's."""

    name: str
    norms: tuple[tuple[nn.BatchNorm2d, slice], ...]

    def magnitude(self) -> torch.Tensor:
        """Per channel, the largest |gamma| over the group's BNs."""
        return torch.stack([bn.weight[part].abs() for bn, part in self.norms]).amax(dim=0)


def _batch_norm(unit: nn.Module) -> nn.BatchNorm2d | None:
    return next((m for m in unit.modules() if isinstance(m, nn.BatchNorm2d) and m.affine), None)


def group_norms(net: Net, method: str) -> list[GroupNorms]:
    """Every channel group's BNs; a one-line error naming the first group without one
    (``method`` needs a learnable BN scale on every convolution that makes or filters a
    channel)."""
    found = []
    for group in width_groups(net.arch):
        units = producers(net, group) + carriers(net, group)
        norms = [(_batch_norm(unit), part) for unit, part in units]
        if not units or any(bn is None for bn, _ in norms):
            raise MethodError(f"{method} needs a BatchNorm with a learnable scale after every convolution that "
                              f"makes or filters channels; one of channel group {group.name}'s has none")
        found.append(GroupNorms(group.name, tuple(norms)))
    return found


def magnitudes(net: Net, method: str) -> dict[str, np.ndarray]:
    """Each group's per-channel magnitudes (see :class:`GroupNorms`)."""
    with torch.no_grad():
        return {g.name: g.magnitude().float().cpu().numpy() for g in group_norms(net, method)}


def alive_widths(found: dict[str, np.ndarray], threshold: float, floor: int) -> dict[str, int]:
    """How many channels of each group are alive (at least ``floor``: the narrowest a
    table prices, where a price is wanted)."""
    return {name: max(floor, int((values > threshold).sum())) for name, values in found.items()}


def alive_arch(arch: Arch, found: dict[str, np.ndarray], threshold: float, floor: int) -> Arch:
    """The structure the scales have learned: ``arch`` with every group at its alive width."""
    return set_widths(arch, alive_widths(found, threshold, floor))


def keep_strongest(found: dict[str, np.ndarray], widths: dict[str, int]) -> dict[str, np.ndarray]:
    """For each group, the indices of its ``widths`` channels of largest magnitude."""
    return {name: keep_top(found[name], min(width, len(found[name]))) for name, width in widths.items()}


class GammaL1(StepHook):
    """``coefficient x sum over groups of weight x sum of the group's magnitudes``, added
    to every training step's loss; the weights can change between steps."""

    def __init__(self, net: Net, method: str, coefficient: float) -> None:
        self.groups = group_norms(net, method)
        self.coefficient = coefficient
        self.weights = {g.name: 1.0 for g in self.groups}
        self.total, self.count = 0.0, 0

    def value(self) -> torch.Tensor:
        return self.coefficient * sum(self.weights[g.name] * g.magnitude().sum() for g in self.groups)

    def penalty(self) -> torch.Tensor:
        term = self.value()
        self.total, self.count = self.total + float(term.detach()), self.count + 1
        return term

    def mean_penalty(self) -> float:
        """The mean penalty since the last call (then starts again)."""
        mean = self.total / max(self.count, 1)
        self.total, self.count = 0.0, 0
        return mean
