"""Deployment weights: the arrays of each op of ``lower(arch)`` (None for weightless ops).

BN is folded into the preceding convolution, as inference engines do. Weights keep
PyTorch's layouts (conv: cout x cin/groups x k x k; fc: cout x cin); each emitter
transposes for its own format. An op's ``role`` names the unit of its block's module
that it deploys.
"""
from __future__ import annotations

import numpy as np

from hwadapt.arch.lowering import lower
from hwadapt.arch.spec import Arch
from hwadapt.materialize.torch_net import Net
from hwadapt.ops import Op, Weights

OpWeights = list[Weights | None]


def folded_weights(net: Net) -> OpWeights:
    """Trained, BN-folded weights of ``net`` aligned with ``lower(net.arch)``: each block's
    ops from its module (:meth:`~hwadapt.blocks.BlockKind.op_weights`), the classifier's."""
    out: OpWeights = []
    for op in lower(net.arch):
        if op.kind == "fc":
            out.append((net.fc.weight.detach().cpu().numpy().copy(), net.fc.bias.detach().cpu().numpy().copy()))
        elif op.spec.weight_shapes(op):
            block = net.arch.blocks[op.block]
            out.append(block.spec.op_weights(op, net.blocks[op.block]))
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
