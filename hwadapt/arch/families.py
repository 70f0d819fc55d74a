"""Model families: named constructors of :class:`Arch` descriptions.

A family builds its base network from a width multiplier, resolution and class count.
Families register themselves in :data:`FAMILIES` so the CLI and the LUT enumerator can
find them by name.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from hwadapt.arch.groups import balanced_widths, random_widths
from hwadapt.arch.ops import Op, lower
from hwadapt.arch.spec import Arch, ArchError, Block

FamilyBuilder = Callable[..., Arch]
FAMILIES: dict[str, FamilyBuilder] = {}
NARROW_WIDTHS = (0.25, 0.375, 0.5)  # width multipliers of the bases narrow networks are drawn from


@dataclass(frozen=True)
class Space:
    """What a family can become: the ops it reaches (at maximal channel counts), which a
    LUT must cover, and a sampler of random members, which calibrate and validate it."""

    ops: Callable[[int, int], list[Op]]  # (resolution, num_classes) -> ops
    sample: Callable[[int, int, np.random.Generator], Arch]  # (resolution, num_classes, rng) -> member
    # (resolution, num_classes, count, rng) -> members that cover the space evenly together
    balanced: Callable[[int, int, int, np.random.Generator], list[Arch]] | None = None
    # (resolution, num_classes, count, rng) -> networks narrower than any member: the
    # members of the space of a narrower base, where NetAdapt's late members go
    narrow: Callable[[int, int, int, np.random.Generator], list[Arch]] | None = None

    def sample_many(self, resolution: int, num_classes: int, count: int, rng: np.random.Generator) -> list[Arch]:
        """``count`` members drawn together: evenly spread where the space knows how, else
        independent draws."""
        if self.balanced is not None:
            return self.balanced(resolution, num_classes, count, rng)
        return [self.sample(resolution, num_classes, rng) for _ in range(count)]

    def sample_narrow(self, resolution: int, num_classes: int, count: int, rng: np.random.Generator) -> list[Arch]:
        """``count`` networks narrow in every group (none where the space has no narrower form)."""
        return [] if self.narrow is None or count <= 0 else self.narrow(resolution, num_classes, count, rng)


SPACES: dict[str, Space] = {}


def register_space(family: str, space: Space) -> None:
    SPACES[family] = space


def family_space(family: str) -> Space:
    """The registered space, or the default: the base network with random per-layer widths."""
    if family in SPACES:
        return SPACES[family]
    if family not in FAMILIES:
        raise ArchError(f"unknown family {family!r}; known: {', '.join(sorted(FAMILIES))}")
    base = lambda r, c, width=1.0: build(family, width=width, resolution=r, num_classes=c)  # noqa: E731
    return Space(ops=lambda r, c: lower(base(r, c)),
                 sample=lambda r, c, rng: random_widths(base(r, c), rng),
                 balanced=lambda r, c, count, rng: balanced_widths(base(r, c), count, rng),
                 narrow=lambda r, c, count, rng: narrow_members(lambda w: base(r, c, w), count, rng))


def narrow_members(base: Callable[[float], Arch], count: int, rng: np.random.Generator,
                   widths: Sequence[float] = NARROW_WIDTHS) -> list[Arch]:
    """``count`` random-width members of the bases at ``widths`` (``base(width)``), split
    as evenly as the count allows, each width's drawn together (:func:`balanced_widths`)."""
    shares = [len(part) for part in np.array_split(np.arange(count), len(widths))]
    return [arch for width, share in zip(widths, shares) if share
            for arch in balanced_widths(base(width), share, rng)]


def register(name: str) -> Callable[[FamilyBuilder], FamilyBuilder]:
    def wrap(builder: FamilyBuilder) -> FamilyBuilder:
        FAMILIES[name] = builder
        return builder

    return wrap


def build(family: str, *, width: float = 1.0, resolution: int = 224, num_classes: int = 1000) -> Arch:
    """The base network of ``family``."""
    if family not in FAMILIES:
        raise ArchError(f"unknown family {family!r}; known: {', '.join(sorted(FAMILIES))}")
    if width <= 0:
        raise ArchError(f"width multiplier must be positive, got {width}")
    return FAMILIES[family](width=width, resolution=resolution, num_classes=num_classes)


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round a channel count to the nearest multiple of ``divisor``, losing at most 10%."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


V1_LAYOUT = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
             (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))


@register("mobilenet_v1")
def mobilenet_v1(*, width: float = 1.0, resolution: int = 224, num_classes: int = 1000) -> Arch:
    """MobileNetV1 (Howard et al., 2017): a stride-2 stem and 13 depthwise-separable blocks."""
    blocks = [Block("conv", make_divisible(32 * width), kernel=3, stride=2)]
    blocks += [Block("dwsep", make_divisible(c * width), kernel=3, stride=s) for c, s in V1_LAYOUT]
    return Arch("mobilenet_v1", resolution, num_classes, tuple(blocks), act="relu",
                meta={"width": width})


V2_LAYOUT = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
             (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


@register("mobilenet_v2")
def mobilenet_v2(*, width: float = 1.0, resolution: int = 224, num_classes: int = 1000) -> Arch:
    """MobileNetV2 (Sandler et al., 2018): inverted residual blocks with ReLU6."""
    cin = make_divisible(32 * width)
    blocks = [Block("conv", cin, kernel=3, stride=2)]
    for expansion, channels, repeats, stride in V2_LAYOUT:
        cout = make_divisible(channels * width)
        for r in range(repeats):
            mid = cin * expansion if expansion != 1 else 0
            blocks.append(Block("mbconv", cout, kernel=3, stride=stride if r == 0 else 1, mid=mid,
                                residual=r > 0))
            cin = cout
    blocks.append(Block("conv", make_divisible(1280 * max(1.0, width)), kernel=1, stride=1))
    return Arch("mobilenet_v2", resolution, num_classes, tuple(blocks), act="relu6",
                meta={"width": width})
