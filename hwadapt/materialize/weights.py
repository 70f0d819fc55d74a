"""Deployment weights: one (weight, bias) pair per weighted op of ``lower(arch)``.

BN is folded into the preceding convolution, as inference engines do. Weights keep
PyTorch's layouts (conv: cout x cin/groups x k x k; fc: cout x cin); each emitter
transposes for its own format.
"""
from __future__ import annotations

import numpy as np
import torch

from hwadapt.arch.ops import Op, lower, weight_shape, weighted
from hwadapt.arch.spec import Arch
from hwadapt.materialize.torch_net import ConvBNAct, Net

OpWeights = list[tuple[np.ndarray, np.ndarray] | None]


def fold_bn(unit: ConvBNAct) -> tuple[np.ndarray, np.ndarray]:
    bn = unit.bn
    scale = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach()
    weight = unit.conv.weight.detach() * scale.view(-1, 1, 1, 1)
    bias = bn.bias.detach() - bn.running_mean * scale
    return weight.numpy().astype(np.float32), bias.numpy().astype(np.float32)


def _units(net: Net) -> list[ConvBNAct]:
    """Conv units in the order ``lower`` emits their ops."""
    units = []
    for block in net.blocks:
        for name in ("conv", "expand", "dw", "pw", "project"):
            unit = getattr(block, name, None)
            if isinstance(unit, ConvBNAct):
                units.append(unit)
    return units


def folded_weights(net: Net) -> OpWeights:
    """Trained, BN-folded weights of ``net`` aligned with ``lower(net.arch)``."""
    units = iter(_units(net))
    out: OpWeights = []
    for op in lower(net.arch):
        if op.kind in ("conv", "dwconv"):
            out.append(fold_bn(next(units)))
        elif op.kind == "fc":
            out.append((net.fc.weight.detach().numpy().copy(), net.fc.bias.detach().numpy().copy()))
        else:
            out.append(None)
    return out


def random_weights(ops: list[Op], seed: int = 0) -> OpWeights:
    """He-scaled random weights: enough to time a graph (values do not change speed)."""
    rng = np.random.default_rng(seed)
    out: OpWeights = []
    for op in ops:
        if not weighted(op):
            out.append(None)
            continue
        shape = weight_shape(op)
        fan_in = int(np.prod(shape[1:]))
        weight = rng.standard_normal(shape).astype(np.float32) * np.float32(np.sqrt(2.0 / fan_in))
        out.append((weight, np.zeros(op.cout, np.float32)))
    return out


def arch_weights(arch: Arch, net: Net | None = None, seed: int = 0) -> OpWeights:
    """Trained weights if a network is given, else random ones."""
    return folded_weights(net) if net is not None else random_weights(lower(arch), seed)
