"""ResNets (He et al., 2016) of basic blocks: the CIFAR networks ``resnet20`` and
``resnet56`` (a 3x3 stem of 16, three stages at 16/32/64 of 3 and 9 blocks) and the
ImageNet network ``resnet18`` (a 7x7 stride-2 stem, a 3x3 max-pool, four stages at
64/128/256/512 of 2 blocks). Where a stage changes the shape, the shortcut is a 1x1
conv + BN (option B); elsewhere it is the identity, which ties the block's width to its
input's (one channel group for the whole stage)."""
from __future__ import annotations

from hwadapt.arch.spec import Arch
from hwadapt.blocks import Block
from hwadapt.families.base import family, make_divisible


def stages(widths: tuple[int, ...], repeats: int, width: float, first_stride: int) -> list[Block]:
    """Basic blocks, ``repeats`` per stage; each stage after the first halves the map."""
    blocks = []
    for index, channels in enumerate(widths):
        out = make_divisible(channels * width)
        for r in range(repeats):
            stride = (first_stride if index == 0 else 2) if r == 0 else 1
            blocks.append(Block("basic", out, kernel=3, stride=stride, mid=out))
    return blocks


def cifar_resnet(name: str, depth: int, width: float, resolution: int, num_classes: int) -> Arch:
    repeats = (depth - 2) // 6
    blocks = [Block("conv", make_divisible(16 * width), kernel=3, stride=1), *stages((16, 32, 64), repeats, width, 1)]
    return Arch(name, resolution, num_classes, tuple(blocks), act="relu", meta={"width": width})


@family("resnet20")
def resnet20(*, width: float = 1.0, resolution: int = 32, num_classes: int = 10) -> Arch:
    """ResNet-20 for CIFAR: a 3x3 stem of 16 and 3 stages of 3 basic blocks (16/32/64)."""
    return cifar_resnet("resnet20", 20, width, resolution, num_classes)


@family("resnet56")
def resnet56(*, width: float = 1.0, resolution: int = 32, num_classes: int = 10) -> Arch:
    """ResNet-56 for CIFAR: a 3x3 stem of 16 and 3 stages of 9 basic blocks (16/32/64)."""
    return cifar_resnet("resnet56", 56, width, resolution, num_classes)


@family("resnet18")
def resnet18(*, width: float = 1.0, resolution: int = 224, num_classes: int = 1000) -> Arch:
    """ResNet-18 for ImageNet: a 7x7 stride-2 stem, a 3x3 max-pool, 4 stages of 2 basic blocks."""
    stem = make_divisible(64 * width)
    blocks = [Block("conv", stem, kernel=7, stride=2), Block("maxpool", stem, kernel=3, stride=2),
              *stages((64, 128, 256, 512), 2, width, 1)]
    return Arch("resnet18", resolution, num_classes, tuple(blocks), act="relu", meta={"width": width})
