"""Channel groups: the widths of an :class:`Arch` that must change together.

A residual add ties the output width of a block to its input; a skip block passes its
input through (:meth:`~hwadapt.blocks.BlockKind.tied_to_input`). Each group is one free
width; setting it keeps every tie (and hence every residual connection) intact.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from hwadapt.arch.spec import Arch
from hwadapt.errors import ArchError

Member = tuple[int, str]  # (block index, "out" or the field of an inner width)


@dataclass(frozen=True)
class WidthGroup:
    name: str
    members: tuple[Member, ...]

    def width(self, arch: Arch) -> int:
        block, field = self.members[0]
        return getattr(arch.blocks[block], field)


def freeze_residuals(arch: Arch) -> Arch:
    """Make every shortcut a kind infers explicit, so changing widths cannot add or drop one."""
    return arch.with_blocks([b.spec.freeze(b, cin) for b, cin in zip(arch.blocks, arch.input_widths())])


def width_groups(arch: Arch) -> list[WidthGroup]:
    """The free widths of ``arch``, in block order; the classifier's width is fixed.

    A block tied to its input extends the group of each of its input's output fields
    (``out``, and ``carry`` where channels are carried); any other block opens new groups.
    A group is named after its field and its first block (``out3``, ``carry5``, ``mid4``)."""
    groups: list[list[Member]] = []
    inner: list[Member] = []
    open_groups: dict[str, list[Member]] = {}  # the group each output field of the last block belongs to
    for i, (block, cin) in enumerate(zip(arch.blocks, arch.input_widths())):
        tied = i > 0 and block.spec.tied_to_input(block, cin)
        fields = block.spec.output_fields(block)
        following = {}
        for field in fields:
            if tied and field in open_groups:
                open_groups[field].append((i, field))
                following[field] = open_groups[field]
            else:
                following[field] = [(i, field)]
                groups.append(following[field])
        open_groups = following
        inner += [(i, name) for name in block.spec.inner_widths(block)]
    named = [WidthGroup(f"{m[0][1]}{m[0][0]}", tuple(m)) for m in groups]
    named += [WidthGroup(f"{name}{i}", ((i, name),)) for i, name in inner]
    return named


def set_widths(arch: Arch, widths: dict[str, int]) -> Arch:
    """A copy of ``arch`` with the named groups set to the given widths."""
    arch = freeze_residuals(arch)
    groups = {g.name: g for g in width_groups(arch)}
    blocks = list(arch.blocks)
    for name, width in widths.items():
        if name not in groups:
            raise ArchError(f"no channel group {name!r}; groups are {', '.join(groups)}")
        if width < 1:
            raise ArchError(f"group {name}: width must be positive, got {width}")
        for index, field in groups[name].members:
            blocks[index] = replace(blocks[index], **{field: int(width)})
    return arch.with_blocks(blocks)


def width_choices(group: WidthGroup, arch: Arch, granularity: int = 8, low: float = 0.25) -> np.ndarray:
    """The widths a random member may give ``group``: multiples of ``granularity`` in
    [``low`` x its width in ``arch``, that width] (the width itself if none is)."""
    top = group.width(arch)
    bottom = max(granularity, int(np.ceil(low * top / granularity)) * granularity)
    choices = np.arange(bottom, top + 1, granularity)
    return choices if len(choices) else np.array([top])


def random_widths(arch: Arch, rng: np.random.Generator, *, granularity: int = 8,
                  low: float = 0.25) -> Arch:
    """``arch`` with every group set to a random multiple of ``granularity`` in
    [``low`` x width, width]: the per-layer-width samples used to validate a LUT."""
    return set_widths(arch, {group.name: int(rng.choice(width_choices(group, arch, granularity, low)))
                             for group in width_groups(arch)})


def stratified_picks(options: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` indices into ``options`` ordered choices, one from each of ``count`` equal
    strata of the range (at one random offset into every stratum), in random order: one
    axis of a Latin hypercube. With fewer options than picks, each option comes up
    equally often (within one)."""
    return np.floor((rng.permutation(count) + rng.random()) * options / count).astype(int)


def balanced_widths(arch: Arch, count: int, rng: np.random.Generator, *, granularity: int = 8,
                    low: float = 0.25) -> list[Arch]:
    """``count`` networks like :func:`random_widths`, drawn together so that every group's
    widths cover its range evenly (a Latin hypercube over the groups).

    Why: a LUT's predictor is fitted on a few dozen such networks, and independent draws
    leave some layer's widths lopsided by chance (in one 19-network draw the fourth
    MobileNetV1 layer averaged 63 channels where the space averages 80), which shifts the
    fit for every network priced later (docs/measurement.md)."""
    groups = width_groups(arch)
    choices = [width_choices(group, arch, granularity, low) for group in groups]
    picks = [options[stratified_picks(len(options), count, rng)] for options in choices]
    return [set_widths(arch, {group.name: int(widths[i]) for group, widths in zip(groups, picks)})
            for i in range(count)]
