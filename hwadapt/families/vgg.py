"""VGG-16 with BN, the CIFAR variant (Simonyan and Zisserman, 2015; as network slimming and
stripe-wise pruning use it): 13 3x3 convolutions with per-layer widths and 5 2x2
max-pools, then global pooling and the classifier."""
from __future__ import annotations

from hwadapt.arch.spec import Arch
from hwadapt.blocks import Block
from hwadapt.families.base import family, make_divisible

LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


@family("vgg16")
def vgg16(*, width: float = 1.0, resolution: int = 32, num_classes: int = 10) -> Arch:
    """VGG-16 with BN (CIFAR variant): 13 convolutions of per-layer width, 5 max-pools."""
    blocks, channels = [], 3
    for entry in LAYOUT:
        if entry == "M":
            blocks.append(Block("maxpool", channels, kernel=2, stride=2))
        else:
            channels = make_divisible(entry * width)
            blocks.append(Block("conv", channels, kernel=3, stride=1))
    return Arch("vgg16", resolution, num_classes, tuple(blocks), act="relu", meta={"width": width})
