"""MobileNetV2 (Sandler et al., 2018): inverted residual blocks with ReLU6."""
from __future__ import annotations

from hwadapt.arch.spec import Arch
from hwadapt.blocks import Block
from hwadapt.families.base import family, make_divisible

LAYOUT = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
          (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))  # expansion, channels, repeats, stride


@family("mobilenet_v2")
def mobilenet_v2(*, width: float = 1.0, resolution: int = 224, num_classes: int = 1000) -> Arch:
    """MobileNetV2: inverted residual blocks (expansion 6), ReLU6, linear bottlenecks."""
    cin = make_divisible(32 * width)
    blocks = [Block("conv", cin, kernel=3, stride=2)]
    for expansion, channels, repeats, stride in LAYOUT:
        cout = make_divisible(channels * width)
        for r in range(repeats):
            mid = cin * expansion if expansion != 1 else 0
            blocks.append(Block("mbconv", cout, kernel=3, stride=stride if r == 0 else 1, mid=mid,
                                residual=r > 0))
            cin = cout
    blocks.append(Block("conv", make_divisible(1280 * max(1.0, width)), kernel=1, stride=1))
    return Arch("mobilenet_v2", resolution, num_classes, tuple(blocks), act="relu6", meta={"width": width})
