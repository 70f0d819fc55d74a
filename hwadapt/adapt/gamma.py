"""BN scales (gammas) as the gates of a network's channels, and their L1 regulariser.

A channel group's channels are produced by one or more convolutions, each followed by a
BN (:func:`hwadapt.adapt.surgery.producers`; a residual-tied group has several). A
channel whose BN scale is near zero outputs a constant and can be removed; in a tied
group only when every producer's scale is, so a group's magnitude for a channel is the
largest of its producers' |gamma| (MorphNet's grouping by maximum), and that is both what
the regulariser charges for and what decides whether the channel is alive.

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
from hwadapt.arch import Arch, set_widths, width_groups
from hwadapt.materialize.torch_net import Net
from hwadapt.train.loop import StepHook

ALIVE = 1e-2  # a channel is alive while its magnitude exceeds this (MorphNet's Keras examples)


@dataclass(frozen=True)
class GroupNorms:
    """The BNs holding one group's scales, each with the slice of its channels that do."""

    name: str
    norms: tuple[tuple[nn.BatchNorm2d, slice], ...]

    def magnitude(self) -> torch.Tensor:
        """Per channel, the largest |gamma| over the group's producers."""
        return torch.stack([bn.weight[part].abs() for bn, part in self.norms]).amax(dim=0)


def _batch_norm(unit: nn.Module) -> nn.BatchNorm2d | None:
    return next((m for m in unit.modules() if isinstance(m, nn.BatchNorm2d) and m.affine), None)


def group_norms(net: Net, method: str) -> list[GroupNorms]:
    """Every channel group's BNs; a one-line error naming the first group without one
    (``method`` needs a learnable BN scale on every channel)."""
    found = []
    for group in width_groups(net.arch):
        units = producers(net, group)
        norms = [(_batch_norm(unit), part) for unit, part in units]
        if not units or any(bn is None for bn, _ in norms):
            raise MethodError(f"{method} needs a BatchNorm with a learnable scale after every convolution that "
                              f"produces channels; channel group {group.name} has none")
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
