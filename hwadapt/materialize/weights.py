"""Deployment weights: the arrays of each op of ``lower(arch)`` (None for weightless ops).

BN is folded into the preceding convolution, as inference engines do. Weights keep
PyTorch's layouts (conv: cout x cin/groups x k x k; fc: cout x cin); each emitter
transposes for its own format. An op's ``role`` names the unit of its block's module
that it deploys.
"""
from __future__ import annotations

import numpy as np
import torch

from hwadapt.arch.lowering import lower
from hwadapt.arch.spec import Arch
from hwadapt.blocks.layers import ConvBNAct
from hwadapt.materialize.torch_net import Net
from hwadapt.ops import Op, Weights

OpWeights = list[Weights | None]


def fold_bn(unit: ConvBNAct) -> Weights:
    bn = unit.bn
    scale = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach()
    weight = unit.conv.weight.detach() * scale.view(-1, 1, 1, 1)
    bias = bn.bias.detach() - bn.running_mean * scale
    return weight.cpu().numpy().astype(np.float32), bias.cpu().numpy().astype(np.float32)


def folded_weights(net: Net) -> OpWeights:
    """Trained, BN-folded weights of ``net`` aligned with ``lower(net.arch)``."""
    out: OpWeights = []
    for op in lower(net.arch):
        if op.kind == "fc":
            out.append((net.fc.weight.detach().cpu().numpy().copy(), net.fc.bias.detach().cpu().numpy().copy()))
        elif op.spec.weight_shapes(op):
            out.append(fold_bn(getattr(net.blocks[op.block], op.role)))
        else:
            out.append(None)
    return out


def random_weights(ops: list[Op], seed: int = 0) -> OpWeights:
    """Random weights: enough to time a graph (values do not change speed)."""
    rng = np.random.default_rng(seed)
    return [op.spec.random_weights(op, rng) for op in ops]


def arch_weights(arch: Arch, net: Net | None = None, seed: int = 0) -> OpWeights:
    """Trained weights if a network is given, else random ones."""
    return folded_weights(net) if net is not None else random_weights(lower(arch), seed)
