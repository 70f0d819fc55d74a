"""The registry of model families.

A family is one module in this package that registers a :class:`Family`: the builder of
its base network (from a width multiplier, resolution and class count), the space of
networks it can become (what a LUT must cover, and the random members that calibrate
and validate it) and the channel grid a LUT measures it on. Adding a family is adding
one module.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np

from hwadapt.arch.groups import balanced_widths, random_widths
from hwadapt.arch.lowering import lower
from hwadapt.arch.spec import Arch
from hwadapt.errors import ArchError
from hwadapt.ops import Op
from hwadapt.registry import Registry

Builder = Callable[..., Arch]  # (*, width, resolution, num_classes) -> the base network


@dataclass(frozen=True)
class Grid:
    """The channel counts a LUT measures each shape class at (see
    :func:`hwadapt.lut.space.channel_grid`): every ``granularity`` step up to
    ``dense_until``, then ``points`` evenly spaced counts, each with the counts below it in
    every residue class of ``period`` on an output axis (``input_period`` on a conv's
    input axis). ``backends``: overrides per backend (a channel tile is the backend's
    kernels', not the family's)."""

    granularity: int = 8
    dense_until: int = 32
    points: int = 4
    period: int = 32
    input_period: int = 0
    backends: dict[str, dict[str, int]] = field(default_factory=lambda: {"ort-cpu": {"input_period": 16}})

    def settings(self, backend: str = "") -> dict[str, int]:
        """The grid for ``backend`` as the LUT's sidecar records it."""
        base = {k: v for k, v in asdict(self).items() if k != "backends"}
        return {**base, **self.backends.get(backend, {})}


@dataclass(frozen=True)
class Space:
    """What a family can become: the ops it reaches (at maximal channel counts), which a
    LUT must cover, and a sampler of random members, which calibrate and validate it."""

    ops: Callable[[int, int], list[Op]]  # (resolution, num_classes) -> ops
    sample: Callable[[int, int, np.random.Generator], Arch]  # (resolution, num_classes, rng) -> member
    # (resolution, num_classes, count, rng) -> members that cover the space evenly together
    balanced: Callable[[int, int, int, np.random.Generator], list[Arch]] | None = None

    def sample_many(self, resolution: int, num_classes: int, count: int, rng: np.random.Generator) -> list[Arch]:
        """``count`` members drawn together: evenly spread where the space knows how, else
        independent draws."""
        if self.balanced is not None:
            return self.balanced(resolution, num_classes, count, rng)
        return [self.sample(resolution, num_classes, rng) for _ in range(count)]


@dataclass(frozen=True)
class Family:
    name: str
    build: Builder
    description: str = ""
    grid: Grid = Grid()
    custom_space: Space | None = None  # None: the base network with random per-layer widths

    @property
    def space(self) -> Space:
        return self.custom_space or width_space(self.build)

    def base(self, width: float = 1.0, resolution: int = 224, num_classes: int = 1000) -> Arch:
        if width <= 0:
            raise ArchError(f"width multiplier must be positive, got {width}")
        return self.build(width=width, resolution=resolution, num_classes=num_classes)


def width_space(builder: Builder) -> Space:
    """The base network (width 1) with random per-layer widths: every group a multiple of 8
    between a quarter of its width and its width (:func:`~hwadapt.arch.groups.random_widths`)."""
    def base(r: int, c: int) -> Arch:
        return builder(width=1.0, resolution=r, num_classes=c)

    return Space(ops=lambda r, c: lower(base(r, c)),
                 sample=lambda r, c, rng: random_widths(base(r, c), rng),
                 balanced=lambda r, c, count, rng: balanced_widths(base(r, c), count, rng))


FAMILIES: Registry[Family] = Registry("family", ArchError)


def register_family(family: Family) -> Family:
    return FAMILIES.register(family.name, family)


def family(name: str, *, grid: Grid = Grid(), space: Space | None = None) -> Callable[[Builder], Builder]:
    """Decorator: register the decorated builder as family ``name`` (its docstring's
    first line describes it)."""
    def wrap(builder: Builder) -> Builder:
        doc = (builder.__doc__ or "").strip().splitlines()
        register_family(Family(name, builder, doc[0] if doc else "", grid, space))
        return builder

    return wrap


def get_family(name: str) -> Family:
    return FAMILIES[name]


def build(name: str, *, width: float = 1.0, resolution: int = 224, num_classes: int = 1000) -> Arch:
    """The base network of family ``name``."""
    return get_family(name).base(width, resolution, num_classes)


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round a channel count to the nearest multiple of ``divisor``, losing at most 10%."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded
