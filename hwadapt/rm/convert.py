"""RM on trained weights: a ResNet or MobileNetV2 in eval mode becomes a ``plain`` network
that computes the same outputs (:mod:`hwadapt.rm.structure` says which blocks it is made
of; this module fills them).

Every weight is taken with its BN folded in (as a runtime runs it), the new kernels are
assembled in float64, and each plain layer gets them with a BN that passes its input
through (scale 1, the folded bias as its shift), so the plain network trains on from
there like any other.
"""
from __future__ import annotations

import numpy as np
import torch

from hwadapt.blocks import Block
from hwadapt.blocks.layers import ConvBNAct, fold_bn
from hwadapt.materialize.torch_net import Net
from hwadapt.ops import conv_out_size, same_pads
from hwadapt.rm.structure import RmError, plain_arch

Layer = tuple[np.ndarray, np.ndarray]  # a deployed conv: weight (cout, cin/groups, k, k), bias (cout,)


def folded(unit: ConvBNAct) -> Layer:
    weight, bias = fold_bn(unit)
    return weight.astype(np.float64), bias.astype(np.float64)


def dirac(channels: int, kernel: int, tap: int, groups_of_one: bool = False) -> np.ndarray:
    """A kernel passing each of ``channels`` channels through from input position ``tap``
    of the window (a depthwise one when ``groups_of_one``)."""
    weight = np.zeros((channels, 1 if groups_of_one else channels, kernel, kernel))
    for c in range(channels):
        weight[c, 0 if groups_of_one else c, tap, tap] = 1.0
    return weight


def basic_layers(module, block: Block, cin: int, size: int) -> list[Layer]:
    """A basic block's two plain convolutions. The first passes the input through on
    ``cin`` extra channels, read where the shortcut reads it (the 1x1 shortcut of stride
    ``s`` reads position ``i * s``: the window's tap ``same_pads(...)[0]``); the second
    adds the shortcut of those channels at its window's centre."""
    w1, b1 = folded(module.conv1)
    carry = dirac(cin, block.kernel, same_pads(size, block.kernel, block.stride)[0])
    first = (np.concatenate([w1, carry]), np.concatenate([b1, np.zeros(cin)]))
    w2, b2 = folded(module.conv2)
    centre = same_pads(conv_out_size(size, block.stride), block.kernel, 1)[0]
    if module.shortcut is None:
        shortcut, shift = dirac(cin, block.kernel, centre), np.zeros(block.out)
    else:
        projection, shift = folded(module.shortcut)
        shortcut = np.zeros((block.out, cin, block.kernel, block.kernel))
        shortcut[:, :, centre, centre] = projection[:, :, 0, 0]
    return [first, (np.concatenate([w2, shortcut], axis=1), b2 + shift)]


def resnet_layers(net: Net) -> list[Layer | None]:
    """One deployed layer per plain block (None for a max-pool)."""
    layers: list[Layer | None] = []
    size = net.arch.resolution
    for block, module, cin in zip(net.arch.blocks, net.blocks, net.arch.input_widths()):
        if block.kind == "basic":
            layers += basic_layers(module, block, cin, size)
        else:
            layers.append(folded(module.conv) if block.kind == "conv" else None)
        size = conv_out_size(size, block.stride)
    return layers


def pointwise(layer: Layer) -> tuple[np.ndarray, np.ndarray]:
    return layer[0][:, :, 0, 0], layer[1]


def fuse(after: Layer, before: tuple[np.ndarray, np.ndarray]) -> Layer:
    """Two 1x1 convolutions with nothing between them, as one."""
    (w_after, b_after), (w_before, b_before) = pointwise(after), before
    return (w_after @ w_before)[:, :, None, None], w_after @ b_before + b_after


def mobilenet_layers(net: Net) -> list[Layer]:
    """One deployed layer per plain block of a MobileNetV2 (see :func:`mobilenet_plain`)."""
    stem = net.blocks[0]
    layers: list[Layer] = [folded(stem.conv)]
    pending: tuple[np.ndarray, np.ndarray] | None = None  # the last projection, linear, awaiting fusion
    cin = net.arch.blocks[0].width
    for block, module in zip(net.arch.blocks[1:], net.blocks[1:]):
        if block.kind == "conv":
            layers.append(fuse(folded(module.conv), pending))
            pending = None
            continue
        carry = cin if module.residual else 0
        if block.mid:
            w, b = folded(module.expand)
            expand = (np.concatenate([w, np.eye(cin)[:, :, None, None][:carry]]), np.concatenate([b, np.zeros(carry)]))
            layers.append(fuse(expand, pending) if pending is not None else expand)
        w, b = folded(module.dw)
        centre = same_pads(1, block.kernel, 1)[0]
        layers.append((np.concatenate([w, dirac(carry, block.kernel, centre, groups_of_one=True)]),
                       np.concatenate([b, np.zeros(carry)])))
        w, b = pointwise(folded(module.project))
        pending = (np.concatenate([w, np.eye(block.out)[:, :carry]], axis=1), b)
        cin = block.out
    return layers


def set_deployed(unit: ConvBNAct, layer: Layer) -> None:
    """Give ``unit`` the deployed layer: its weight, and a BN that adds the bias."""
    weight, bias = (torch.from_numpy(a.astype(np.float32)) for a in layer)
    bn = unit.bn
    with torch.no_grad():
        unit.conv.weight.copy_(weight)
        bn.weight.fill_(1.0)
        bn.bias.copy_(bias)
        bn.running_mean.zero_()
        bn.running_var.fill_(1.0 - bn.eps)


def reparameterize(net: Net) -> Net:
    """The plain network computing what ``net`` computes in eval mode."""
    if net.training:
        raise RmError("RM needs the network in eval mode: BN must use its running statistics (call .eval())")
    plain = Net(plain_arch(net.arch))
    layers = resnet_layers(net) if any(b.kind == "basic" for b in net.arch.blocks) else mobilenet_layers(net)
    for block, module, layer in zip(plain.arch.blocks, plain.blocks, layers):
        if layer is not None:
            set_deployed(module.dw if block.kind == "dw" else module.conv, layer)
    with torch.no_grad():
        plain.fc.weight.copy_(net.fc.weight)
        plain.fc.bias.copy_(net.fc.bias)
    return plain.eval()

