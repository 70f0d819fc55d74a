"""Weight surgery: a narrower ``Net`` whose channels are a chosen subset of an old one's.

Channels are kept per channel group (:func:`hwadapt.arch.groups.width_groups`), so a
group's producing convs, their BNs, the depthwise convs that carry the channels, the
consumers' input channels, residual partners and the classifier are sliced with one
index list. ``tests/test_netadapt_surgery.py`` checks this against torch-pruning's
dependency graph.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from hwadapt.arch import Arch, WidthGroup, set_widths, width_groups
from hwadapt.blocks.layers import ConvBNAct
from hwadapt.errors import HwadaptError
from hwadapt.materialize.torch_net import Net

Index = np.ndarray
Criterion = Callable[[torch.Tensor], torch.Tensor]  # filters (cout x ...) -> per-filter score


class SurgeryError(HwadaptError):
    """Channels to keep that do not fit the network."""


def _l2(filters: torch.Tensor) -> torch.Tensor:
    return filters.flatten(1).pow(2).sum(1)


def _l1(filters: torch.Tensor) -> torch.Tensor:
    return filters.flatten(1).abs().sum(1)


# Squared L2 (NetAdapt's criterion) or L1 filter norm, summed over a group's producing convs.
CRITERIA: dict[str, Criterion] = {"l2": _l2, "l1": _l1}


def producers(net: Net, group: WidthGroup) -> list[tuple[ConvBNAct, slice]]:
    """The conv units whose output filters hold the channels of ``group``, each with the
    filters that do (a carried field's follow the block's ``out`` ones)."""
    units = []
    for index, field in group.members:
        block = net.arch.blocks[index]
        start = block.out if field == "carry" else 0
        filters = slice(start, start + getattr(block, field))
        found = (getattr(net.blocks[index], name, None) for name in block.spec.producers(block, field))
        units += [(unit, filters) for unit in found if unit is not None]
    return units


def channel_scores(net: Net, group: WidthGroup, criterion: str = "l2") -> np.ndarray:
    """Importance of each channel of ``group`` (higher is kept first)."""
    if criterion not in CRITERIA:
        raise SurgeryError(f"unknown criterion {criterion!r}; known: {', '.join(CRITERIA)}")
    with torch.no_grad():
        total = sum(CRITERIA[criterion](unit.conv.weight[filters]) for unit, filters in producers(net, group))
    return total.numpy().astype(np.float64)


def keep_top(scores: np.ndarray, width: int) -> Index:
    """Indices of the ``width`` best channels, in their original order."""
    order = np.argsort(-scores, kind="stable")
    return np.sort(order[:width])


def _indices(arch: Arch, keep: dict[str, Index]) -> tuple[list[Index], list[Index]]:
    """Kept output channel indices (every output field's, in channel order) and inner
    channel indices of every block (group names already checked)."""
    kept: list[dict[str, Index]] = [{"out": np.arange(b.out), "carry": np.arange(b.carry), "mid": np.arange(b.mid)}
                                    for b in arch.blocks]
    groups = {g.name: g for g in width_groups(arch)}
    for name, index in keep.items():
        index = np.asarray(index, dtype=np.int64)
        width = groups[name].width(arch)
        if len(index) == 0 or len(np.unique(index)) != len(index) or index.min() < 0 or index.max() >= width:
            raise SurgeryError(f"group {name}: channels to keep must be distinct and in [0, {width})")
        for block, field in groups[name].members:
            kept[block][field] = np.sort(index)
    outs = [np.concatenate([k["out"], b.out + k["carry"]]) for b, k in zip(arch.blocks, kept)]
    return outs, [k["mid"] for k in kept]


def _copy_unit(new: ConvBNAct, old: ConvBNAct, out: Index, inp: Index | None) -> None:
    """Copy ``old`` into ``new``: output channels ``out``; input channels ``inp`` (None: depthwise)."""
    out_t = torch.from_numpy(out).to(old.conv.weight.device)
    weight = old.conv.weight.data.index_select(0, out_t)
    if inp is not None:
        weight = weight.index_select(1, torch.from_numpy(inp).to(weight.device))
    new.conv.weight.data.copy_(weight)
    for name in ("weight", "bias", "running_mean", "running_var"):
        getattr(new.bn, name).data.copy_(getattr(old.bn, name).data.index_select(0, out_t))
    new.bn.num_batches_tracked.copy_(old.bn.num_batches_tracked)


def prune(net: Net, keep: dict[str, Index]) -> Net:
    """A new ``Net`` keeping, for each named group, the listed channels of ``net``."""
    old_arch = net.arch
    new_arch = set_widths(old_arch, {name: len(index) for name, index in keep.items()})
    outs, mids = _indices(old_arch, keep)
    new = Net(new_arch)
    inp = np.arange(old_arch.in_channels)
    for i, block in enumerate(old_arch.blocks):
        for name, out, inputs in block.spec.unit_channels(block, inp, outs[i], mids[i]):
            if getattr(net.blocks[i], name, None) is not None:
                _copy_unit(getattr(new.blocks[i], name), getattr(net.blocks[i], name), out, inputs)
        inp = outs[i]
    with torch.no_grad():
        new.fc.weight.copy_(net.fc.weight.index_select(1, torch.from_numpy(inp).to(net.fc.weight.device)))
        new.fc.bias.copy_(net.fc.bias)
    return new.to(net.fc.weight.device)


def shrink_group(net: Net, group: str, width: int, criterion: str = "l2") -> Net:
    """``net`` with ``group`` narrowed to ``width`` channels, keeping the most important ones."""
    groups = {g.name: g for g in width_groups(net.arch)}
    if group not in groups:
        raise SurgeryError(f"no channel group {group!r}")
    return prune(net, {group: keep_top(channel_scores(net, groups[group], criterion), width)})

