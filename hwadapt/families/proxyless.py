"""The ``proxyless`` search space (Cai et al., ICLR 2019), on a MobileNetV2 backbone.

A stride-2 stem conv and a first MBConv (expansion 1) are fixed; then come the
*searchable positions*, each choosing an MBConv with kernel 3, 5 or 7 and expansion 3
or 6, or -- where the block keeps the shape (stride 1, same width) -- ``skip``, the
zero op that leaves only the residual. A 1x1 conv head, pooling and the classifier
close the network. Because every candidate at a position keeps the position's output
width and stride, the input shape of every position is the same for all members:
a block's cost depends on its own choice only, which is what makes the expected
latency a sum over positions.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from hwadapt.arch.groups import stratified_picks
from hwadapt.arch.lowering import lower
from hwadapt.arch.spec import Arch
from hwadapt.blocks import Block
from hwadapt.errors import ArchError
from hwadapt.families.base import Family, Grid, Space, make_divisible, register_family
from hwadapt.ops import Op

KERNELS = (3, 5, 7)
EXPANSIONS = (3, 6)
SKIP = "skip"
# (channels, repeats, stride) of the searchable stages: MobileNetV2's layout after its
# first inverted-residual block, so members compare directly with MobileNetV2.
STAGES = ((24, 2, 2), (32, 3, 2), (64, 4, 2), (96, 3, 1), (160, 3, 2), (320, 1, 1))
DEFAULT_CHOICE = "k3e6"


def choice_names() -> tuple[str, ...]:
    """Every candidate name of the space, in a fixed order: ``k3e3 ... k7e6, skip``."""
    return tuple(f"k{k}e{e}" for k in KERNELS for e in EXPANSIONS) + (SKIP,)


def parse_choice(name: str) -> tuple[int, int]:
    """(kernel, expansion) of an MBConv choice name such as ``k5e3``."""
    try:
        kernel, expansion = name[1:].split("e")
        return int(kernel), int(expansion)
    except ValueError as exc:
        raise ArchError(f"not a proxyless choice name: {name!r}") from exc


@dataclass(frozen=True)
class Position:
    """One searchable block: its input width, output width and stride. ``inner`` blocks
    (all but a stage's first) keep the shape: they have the residual and may be skipped."""

    cin: int
    out: int
    stride: int
    inner: bool

    @property
    def can_skip(self) -> bool:
        return self.inner

    def choices(self) -> tuple[str, ...]:
        return tuple(c for c in choice_names() if c != SKIP or self.can_skip)

    def block(self, choice: str) -> Block:
        if choice == SKIP:
            if not self.can_skip:
                raise ArchError(f"skip is not allowed where the shape changes ({self.cin}->{self.out}, "
                                f"stride {self.stride})")
            return Block("skip", self.out)
        kernel, expansion = parse_choice(choice)
        return Block("mbconv", self.out, kernel=kernel, stride=self.stride, mid=self.cin * expansion,
                     residual=self.inner)


@dataclass(frozen=True)
class ProxylessSpace:
    """The space's shape: resolution, classes, width multiplier, and optionally a fixed
    number of blocks per stage (``depth``; the last stage always has one)."""

    resolution: int = 224
    num_classes: int = 1000
    width: float = 1.0
    depth: int | None = None
    stages: tuple[tuple[int, int, int], ...] = field(default=STAGES)

    def __post_init__(self) -> None:
        if self.width <= 0:
            raise ArchError(f"width multiplier must be positive, got {self.width}")
        if self.depth is not None and self.depth < 1:
            raise ArchError(f"depth must be at least 1 block per stage, got {self.depth}")

    # -- fixed parts -----------------------------------------------------------
    def stem(self) -> tuple[Block, Block]:
        stem = make_divisible(32 * self.width)
        return (Block("conv", stem, kernel=3, stride=2),
                Block("mbconv", make_divisible(16 * self.width), kernel=3, stride=1, mid=0, residual=False))

    def head(self) -> Block:
        return Block("conv", make_divisible(1280 * max(1.0, self.width)), kernel=1, stride=1)

    # -- searchable part ---------------------------------------------------------
    def positions(self) -> list[Position]:
        cin = self.stem()[1].out
        out: list[Position] = []
        for index, (channels, repeats, stride) in enumerate(self.stages):
            last_stage = index == len(self.stages) - 1
            count = repeats if self.depth is None or last_stage else self.depth
            width = make_divisible(channels * self.width)
            for r in range(count):
                out.append(Position(cin, width, stride if r == 0 else 1, inner=r > 0))
                cin = width
        return out

    @property
    def first_position(self) -> int:
        """Index in ``Arch.blocks`` of the first searchable block."""
        return len(self.stem())

    def member(self, choices: list[str] | tuple[str, ...]) -> Arch:
        """The architecture picking ``choices[i]`` at searchable position ``i``."""
        positions = self.positions()
        if len(choices) != len(positions):
            raise ArchError(f"the space has {len(positions)} searchable positions, got {len(choices)} choices")
        blocks = [*self.stem(), *(p.block(c) for p, c in zip(positions, choices)), self.head()]
        return Arch("proxyless", self.resolution, self.num_classes, tuple(blocks), act="relu6",
                    meta={"space": self.to_dict(), "choices": list(choices)})

    def uniform(self, choice: str, fallback: str = DEFAULT_CHOICE) -> Arch:
        """``choice`` wherever a position allows it, ``fallback`` elsewhere."""
        return self.member([choice if choice in p.choices() else fallback for p in self.positions()])

    def default(self) -> Arch:
        return self.uniform(DEFAULT_CHOICE)

    def to_dict(self) -> dict:
        return {"resolution": self.resolution, "num_classes": self.num_classes, "width": self.width,
                "depth": self.depth, "stages": [list(s) for s in self.stages]}

    @classmethod
    def from_dict(cls, data: dict) -> ProxylessSpace:
        return cls(int(data["resolution"]), int(data["num_classes"]), float(data["width"]),
                   None if data.get("depth") is None else int(data["depth"]),
                   tuple(tuple(int(v) for v in s) for s in data.get("stages", STAGES)))

    def with_shape(self, resolution: int, num_classes: int) -> ProxylessSpace:
        return replace(self, resolution=resolution, num_classes=num_classes)


def space_ops(space: ProxylessSpace) -> list[Op]:
    """The union of the operators of every candidate at every position (the LUT's rows)."""
    seen: dict[tuple, Op] = {}
    for choice in choice_names():
        for op in lower(space.uniform(choice)):
            seen.setdefault((op.kind, op.cin, op.cout, op.size, op.kernel, op.stride, op.act), op)
    return list(seen.values())


def proxyless(*, width: float = 1.0, resolution: int = 224, num_classes: int = 1000) -> Arch:
    """The default member of the space: every searchable block an MBConv k3 e6."""
    return ProxylessSpace(resolution, num_classes, width).default()


def random_member(space: ProxylessSpace, rng: np.random.Generator) -> Arch:
    """A member with a uniformly random choice at every position."""
    return space.member([str(rng.choice(p.choices())) for p in space.positions()])


def balanced_members(space: ProxylessSpace, count: int, rng: np.random.Generator) -> list[Arch]:
    """``count`` members whose choices at every position are spread evenly over that
    position's options (:func:`~hwadapt.arch.groups.stratified_picks`), in random
    combinations."""
    picks = [[p.choices()[i] for i in stratified_picks(len(p.choices()), count, rng)] for p in space.positions()]
    return [space.member([column[k] for column in picks]) for k in range(count)]


register_family(Family(
    "proxyless", proxyless, "ProxylessNAS space: MBConv k3/5/7 x e3/6 or skip per position, on MobileNetV2",
    grid=Grid(points=7, backends={}),
    custom_space=Space(
        ops=lambda resolution, num_classes: space_ops(ProxylessSpace(resolution, num_classes)),
        sample=lambda resolution, num_classes, rng: random_member(ProxylessSpace(resolution, num_classes), rng),
        balanced=lambda resolution, num_classes, count, rng: balanced_members(
            ProxylessSpace(resolution, num_classes), count, rng))))
