"""The filter skeleton of stripe-wise pruning (Meng et al., "Pruning filter in filter",
NeurIPS 2020): one learnable scalar per filter and kernel position of every k x k
convolution (init 1), multiplying the weights, with an L1 penalty pulling it to zero and
a threshold under which a stripe (a filter's weights at one position) dies for good.

The skeleton is a parametrization of the convolution's weight
(:func:`torch.nn.utils.parametrize.register_parametrization`), so the network trains,
checkpoints and resumes through the ordinary training loop. The L1 term is a gradient
hook (``sr * sign(scale)`` added, as the authors' code adds it after backward), and the
threshold is applied as each training forward begins: a stripe whose scale fell below
it at the last step is dead from this step on, masked out of the forward pass (so its
gradient is zero too) whatever its optimizer's momentum does to the stored scale.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils import parametrize

from hwadapt.blocks.base import keeps_input
from hwadapt.errors import HwadaptError
from hwadapt.materialize.torch_net import Net


class StripeError(HwadaptError):
    """Settings stripe-wise pruning cannot work with, or a layer it would leave with nothing."""


class Skeleton(nn.Module):
    """The skeleton of one convolution: ``scale`` (filters x k x k), ``alive`` marking the
    stripes the threshold has not killed. ``may_die``: the layer has an identity path
    around it (the second convolution of a residual block with an identity shortcut), so
    the threshold may kill all its stripes; elsewhere that is refused, naming the layer."""

    def __init__(self, name: str, filters: int, kernel: int, sr: float, threshold: float, may_die: bool) -> None:
        super().__init__()
        self.name, self.sr, self.threshold, self.may_die = name, sr, threshold, may_die
        self.scale = nn.Parameter(torch.ones(filters, kernel, kernel))
        self.register_buffer("alive", torch.ones(filters, kernel, kernel, dtype=torch.bool))
        self.scale.register_hook(self._l1)

    def _l1(self, grad: torch.Tensor) -> torch.Tensor:
        return (grad + self.sr * torch.sign(self.scale.detach())) * self.alive

    def kill(self) -> None:
        """Kill the stripes whose scale fell below the threshold (for good)."""
        survivors = self.alive & (self.scale.detach().abs() >= self.threshold)
        if not survivors.any() and self.alive.any() and not self.may_die:
            raise StripeError(f"{self.name}: --threshold {self.threshold:g} would kill all {self.alive.numel()} "
                              f"stripes of this layer, which has no identity path around it; lower --threshold "
                              f"or --sr (and use a new --out)")
        self.alive.copy_(survivors)
        self.scale.data.mul_(survivors)

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        if self.training and self.threshold > 0:
            self.kill()
        return weight * (self.scale * self.alive).unsqueeze(1)


@dataclass(frozen=True)
class SkeletonSettings:
    sr: float = 1e-5  # L1 strength on the skeleton (the authors' default)
    threshold: float = 0.01  # a stripe whose |scale| falls below this dies

    def __post_init__(self) -> None:
        if self.sr < 0 or not 0 <= self.threshold < 1:
            raise StripeError(f"--sr must be >= 0 and --threshold in [0, 1) (skeletons start at 1), got "
                              f"{self.sr:g} and {self.threshold:g}")


def pruned_units(net: Net) -> dict[str, nn.Conv2d]:
    """The convolutions stripe-wise pruning acts on, by unit name (``blocks.3.conv1``): every
    full (not depthwise) convolution with a window larger than 1x1, as lowered (a
    ``conv`` op's block and role)."""
    from hwadapt.arch.lowering import lower

    units = {}
    for op in lower(net.arch):
        if op.kind == "conv" and op.kernel > 1:
            unit = getattr(net.blocks[op.block], op.role)
            units[unit_name(op.block, op.role)] = unit.conv
    return units


def unit_name(block: int, role: str) -> str:
    return f"blocks.{block}.{role}"


def may_die(net: Net, name: str) -> bool:
    """Whether a unit has an identity path around it: the second convolution of a residual
    block whose shortcut is the identity."""
    _, index, role = name.split(".")
    block, cin = net.arch.blocks[int(index)], net.arch.input_widths()[int(index)]
    return block.kind == "basic" and role == "conv2" and keeps_input(block, cin)


def attach(net: Net, settings: SkeletonSettings) -> Net:
    """Give every pruned convolution of ``net`` a skeleton (in place; returns ``net``)."""
    units = pruned_units(net)
    if not units:
        raise StripeError(f"{net.arch.family} has no full convolution wider than 1x1 to prune stripes of")
    for name, conv in units.items():
        parametrize.register_parametrization(
            conv, "weight", Skeleton(name, conv.out_channels, conv.kernel_size[0], settings.sr, settings.threshold,
                                     may_die(net, name)))
    return net


def skeletons(net: Net) -> dict[str, Skeleton]:
    """The skeleton of each pruned unit, by unit name."""
    return {name: conv.parametrizations.weight[0] for name, conv in pruned_units(net).items()
            if parametrize.is_parametrized(conv, "weight")}


def alive_masks(net: Net) -> dict[str, torch.Tensor]:
    """Which stripes live (filters x k x k, bool), by unit name."""
    return {name: skeleton.alive.detach().cpu().clone() for name, skeleton in skeletons(net).items()}


def folded(net: Net) -> Net:
    """A plain copy of a skeleton network on the CPU, in eval mode: each pruned
    convolution's weight times its skeleton (dead stripes exactly zero)."""
    plain = Net(net.arch)
    state = {key: value for key, value in net.state_dict().items() if ".parametrizations." not in key}
    names = {id(module): name for name, module in net.named_modules()}
    was_training = net.training
    net.eval()  # reading a weight in training mode would apply the threshold
    with torch.no_grad():
        for conv in pruned_units(net).values():
            state[f"{names[id(conv)]}.weight"] = conv.weight.detach().clone()
    net.train(was_training)
    plain.load_state_dict({key: value.cpu() for key, value in state.items()})
    return plain.eval()
