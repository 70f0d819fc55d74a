"""Magnitude pruning of the surviving weights (global or layer-wise), and the random
mask of the same layer-wise sparsity that serves as a control."""
from __future__ import annotations

import torch
from torch import nn

from hwadapt.errors import HwadaptError
from hwadapt.lottery.masks import Masks


class PruneError(HwadaptError):
    """A pruning rate or mask that cannot be used."""


def check_rate(rate: float) -> float:
    if not 0.0 < rate < 1.0:
        raise PruneError(f"--rate must be in (0, 1) (the fraction of the remaining weights each level prunes), "
                         f"got {rate}")
    return rate


def _keep_largest(scores: torch.Tensor, alive: torch.Tensor, count: int) -> torch.Tensor:
    """A mask of the ``count`` largest ``scores`` among the ``alive`` entries (ties broken
    by position, so the count is exact)."""
    flat = torch.where(alive.flatten(), scores.flatten().double(), torch.tensor(float("-inf"), dtype=torch.float64))
    keep = torch.zeros(flat.numel(), dtype=torch.bool)
    keep[torch.topk(flat, count, sorted=False).indices] = True
    return keep.view_as(alive)


def magnitude_masks(net: nn.Module, masks: Masks, rate: float, layerwise: bool = False) -> Masks:
    """Prune ``rate`` of the weights ``masks`` still keeps (the weights it names), the
    smallest by magnitude in ``net``: across all layers together (``layerwise`` False), or
    the same fraction of each layer."""
    check_rate(rate)
    params = dict(net.named_parameters())
    weights = {name: params[name].detach().cpu().abs() for name in masks}
    alive = {name: mask.cpu() for name, mask in masks.items()}
    if layerwise:
        return {name: _keep_largest(weights[name], alive[name], _survivors(int(alive[name].sum()), rate))
                for name in masks}
    names = list(masks)
    scores = torch.cat([weights[n].flatten() for n in names])
    flat_alive = torch.cat([alive[n].flatten() for n in names])
    keep = _keep_largest(scores, flat_alive, _survivors(int(flat_alive.sum()), rate))
    return dict(zip(names, (part.view_as(alive[n]) for n, part in zip(names, keep.split([alive[n].numel()
                                                                                          for n in names])))))


def _survivors(count: int, rate: float) -> int:
    """How many of ``count`` weights survive pruning ``rate`` of them (at least one)."""
    return max(1, count - round(rate * count))


def random_masks(masks: Masks, generator: torch.Generator) -> Masks:
    """A random mask keeping as many weights in each layer as ``masks`` does."""
    out = {}
    for name, mask in masks.items():
        order = torch.randperm(mask.numel(), generator=generator)
        keep = torch.zeros(mask.numel(), dtype=torch.bool)
        keep[order[:int(mask.sum())]] = True
        out[name] = keep.view_as(mask)
    return out
