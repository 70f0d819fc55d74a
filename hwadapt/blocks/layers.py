"""The trainable layer every block is made of: conv + BN (+ activation), SAME-padded."""
from __future__ import annotations

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
