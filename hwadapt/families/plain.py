"""``plain``: the chains RM makes of residual networks (:mod:`hwadapt.rm`): convolutions,
depthwise convolutions and max-pools with per-layer widths, and channels carried through
unactivated where a MobileNetV2 residual passed.

Its space is the RM'd spaces of the families RM covers at the resolution (the CIFAR
ResNets below ``IMAGENET_PX``, ResNet-18 from there on, MobileNetV2 at both): one LUT of
this family prices every plain network RM makes of them. Its base network is RM's chain
of ResNet-20."""
from __future__ import annotations

import numpy as np

from hwadapt.arch.groups import balanced_widths, random_widths
from hwadapt.arch.lowering import lower
from hwadapt.arch.spec import Arch
from hwadapt.families.base import Family, Space, build, register_family
from hwadapt.rm.structure import PLAIN, plain_arch

IMAGENET_PX = 128  # from this input side on, the ImageNet ResNet is RM's source, not the CIFAR ones


def sources(resolution: int) -> tuple[str, ...]:
    """The families whose RM'd spaces make up the plain space at ``resolution``."""
    return ("resnet18" if resolution >= IMAGENET_PX else "resnet20", "mobilenet_v2")


def rm_base(source: str, resolution: int, num_classes: int, width: float = 1.0) -> Arch:
    return plain_arch(build(source, width=width, resolution=resolution, num_classes=num_classes))


def plain(*, width: float = 1.0, resolution: int = 32, num_classes: int = 10) -> Arch:
    """RM's plain chain of ResNet-20 at ``width``."""
    return rm_base("resnet20", resolution, num_classes, width)


def space_ops(resolution: int, num_classes: int):
    return [op for source in sources(resolution) for op in lower(rm_base(source, resolution, num_classes))]


def sample(resolution: int, num_classes: int, rng: np.random.Generator) -> Arch:
    return random_widths(rm_base(str(rng.choice(sources(resolution))), resolution, num_classes), rng)


def balanced(resolution: int, num_classes: int, count: int, rng: np.random.Generator) -> list[Arch]:
    """``count`` members, as even a share from each source as the count allows."""
    shares = [len(part) for part in np.array_split(np.arange(count), len(sources(resolution)))]
    return [arch for source, share in zip(sources(resolution), shares) if share
            for arch in balanced_widths(rm_base(source, resolution, num_classes), share, rng)]


register_family(Family(PLAIN, plain, "RM's plain chains of ResNets and MobileNetV2 (per-layer widths, carried channels)",
                       custom_space=Space(space_ops, sample, balanced)))
