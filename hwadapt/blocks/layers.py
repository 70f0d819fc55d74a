"""The trainable layers blocks are made of: conv + BN (+ activation), SAME-padded, and
an activation of the first channels only; folding BN into the convolution for deployment."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from hwadapt.ops import same_pads


def activation(name: str) -> nn.Module:
    return nn.ReLU6(inplace=True) if name == "relu6" else nn.ReLU(inplace=True)


class ConvBNAct(nn.Sequential):
    """conv + BN (+ activation) with SAME padding for the given input side, so that the
    ONNX and TFLite forms (TensorFlow's SAME) compute the same."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, size: int,
                 act: str | None, groups: int = 1) -> None:
        before, after = same_pads(size, kernel, stride)
        layers: list[nn.Module] = []
        if before == after:
            conv = nn.Conv2d(cin, cout, kernel, stride, padding=before, groups=groups, bias=False)
        else:
            layers.append(nn.ZeroPad2d((before, after, before, after)))
            conv = nn.Conv2d(cin, cout, kernel, stride, padding=0, groups=groups, bias=False)
        layers += [conv, nn.BatchNorm2d(cout)]
        if act and act != "none":
            layers.append(activation(act))
        super().__init__(*layers)

    @property
    def conv(self) -> nn.Conv2d:
        return next(m for m in self if isinstance(m, nn.Conv2d))

    @property
    def bn(self) -> nn.BatchNorm2d:
        return next(m for m in self if isinstance(m, nn.BatchNorm2d))


class PartialAct(nn.Module):
    """The activation on the first ``active`` channels; the others pass unchanged."""

    def __init__(self, active: int, act: str) -> None:
        super().__init__()
        self.active, self.act = active, activation(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.act(x[:, :self.active]), x[:, self.active:]], dim=1)


def fold_bn(unit: ConvBNAct) -> tuple[np.ndarray, np.ndarray]:
    """The unit's convolution with its BN folded in: (weight, bias), as inference engines run it."""
    bn = unit.bn
    scale = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach()
    weight = unit.conv.weight.detach() * scale.view(-1, 1, 1, 1)
    bias = bn.bias.detach() - bn.running_mean * scale
    return weight.cpu().numpy().astype(np.float32), bias.cpu().numpy().astype(np.float32)
