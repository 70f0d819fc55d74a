"""Filter grafting's rule (Meng et al., "Filter grafting for deep neural networks", CVPR
2020): after each epoch a network takes each layer as a blend of its own and its ring
neighbour's, weighted by how much information each holds.

A layer's information is the entropy of the 10-bin histogram of its weights (over their
own range); its own share is ``alpha = A / pi * arctan(c * (H_own - H_other)) + 0.5``,
between 0.5 - A/2 and 0.5 + A/2, near 0.5 when the two hold as much, and the layer
becomes ``alpha * own + (1 - alpha) * other``. The authors' defaults: A = 0.4, c = 500.
The layers grafted are the convolutions' weights (as the authors' code grafts keys named
``conv``); batch norms and the classifier stay each network's own.

The filter-level variant blends each filter (and its batch norm's channel) by the share
of the two batch-norm scales, ``|g_own| / (|g_own| + |g_other|)``: a filter that has
faded in one network takes over the other's (the authors blend each input channel of
the next convolution by the same shares too; here a filter is blended once).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from hwadapt.blocks.layers import ConvBNAct
from hwadapt.errors import HwadaptError

State = dict[str, torch.Tensor]
LEVELS = ("layer", "filter")


class GraftError(HwadaptError):
    """Grafting that cannot start or go on (a network's worker died, settings it cannot use)."""


@dataclass(frozen=True)
class GraftSettings:
    a: float = 0.4  # the largest departure of a network's own share from one half, doubled
    c: float = 500.0  # how sharply the share follows the entropy difference
    level: str = "layer"  # "layer": the entropy rule per convolution; "filter": per filter by BN scales
    bins: int = 10

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise GraftError(f"unknown grafting level {self.level!r}; use one of {', '.join(LEVELS)}")
        if not 0 <= self.a <= 1 or self.c < 0 or self.bins < 2:
            raise GraftError(f"grafting needs A in [0, 1], c >= 0 and 2 bins or more (A={self.a}, c={self.c})")


def entropy(weights: torch.Tensor, bins: int = 10) -> float:
    """Entropy (nats) of the ``bins``-bin histogram of ``weights`` over their own range (0
    for a constant layer)."""
    values = weights.detach().float().flatten().cpu()
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return 0.0
    counts = torch.histc(values, bins=bins, min=low, max=high)
    p = counts[counts > 0] / values.numel()
    return float(-(p * p.log()).sum())


def alpha(h_own: float, h_other: float, a: float = 0.4, c: float = 500.0) -> float:
    """A network's own share of a layer: ``a / pi * arctan(c * (h_own - h_other)) + 0.5``."""
    return a / math.pi * math.atan(c * (h_own - h_other)) + 0.5


def graft_layers(own: State, other: State, settings: GraftSettings) -> State:
    """``own`` with every convolution weight blended with ``other``'s by the entropy rule."""
    out = dict(own)
    for key, value in own.items():
        if value.ndim == 4:
            share = alpha(entropy(value, settings.bins), entropy(other[key], settings.bins), settings.a, settings.c)
            out[key] = share * value + (1 - share) * other[key].to(value.device)
    return out


def conv_bn_pairs(net: nn.Module) -> list[tuple[str, str]]:
    """(convolution weight key, batch norm prefix) of each conv + BN unit of ``net``."""
    pairs = []
    for name, module in net.named_modules():
        if isinstance(module, ConvBNAct):
            children = dict(module.named_children())
            conv = next(k for k, m in children.items() if isinstance(m, nn.Conv2d))
            bn = next(k for k, m in children.items() if isinstance(m, nn.BatchNorm2d))
            pairs.append((f"{name}.{conv}.weight", f"{name}.{bn}"))
    return pairs


def graft_filters(own: State, other: State, pairs: list[tuple[str, str]]) -> State:
    """``own`` with each filter and its batch norm's channel blended with ``other``'s by the
    share of the two BN scales."""
    out = dict(own)
    for conv, bn in pairs:
        mine, theirs = own[f"{bn}.weight"].abs(), other[f"{bn}.weight"].to(own[f"{bn}.weight"].device).abs()
        share = mine / (mine + theirs).clamp_min(1e-12)
        for key, column in ((conv, share.view(-1, 1, 1, 1)), *((f"{bn}.{p}", share) for p in
                                                                ("weight", "bias", "running_mean", "running_var"))):
            out[key] = column * own[key] + (1 - column) * other[key].to(own[key].device)
    return out


def graft(own: State, other: State, settings: GraftSettings, pairs: list[tuple[str, str]]) -> State:
    """One grafting step of the network holding ``own`` with its neighbour's ``other``."""
    return graft_layers(own, other, settings) if settings.level == "layer" else graft_filters(own, other, pairs)
