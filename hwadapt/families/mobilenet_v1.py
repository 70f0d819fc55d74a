"""MobileNetV1 (Howard et al., 2017): a stride-2 stem and 13 depthwise-separable blocks."""
from __future__ import annotations

from hwadapt.arch.spec import Arch
from hwadapt.blocks import Block
from hwadapt.families.base import family, make_divisible

LAYOUT = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
          (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))


@family("mobilenet_v1")
def mobilenet_v1(*, width: float = 1.0, resolution: int = 224, num_classes: int = 1000) -> Arch:
    """MobileNetV1: depthwise-separable blocks, ReLU."""
    blocks = [Block("conv", make_divisible(32 * width), kernel=3, stride=2)]
    blocks += [Block("dwsep", make_divisible(c * width), kernel=3, stride=s) for c, s in LAYOUT]
    return Arch("mobilenet_v1", resolution, num_classes, tuple(blocks), act="relu", meta={"width": width})
