"""Blocks, and the registry of their kinds.

A :class:`Block` is one entry of an architecture description: plain data (a kind and
its widths), JSON-serialisable. Its *kind* is a :class:`BlockKind` spec registered from
its own module in this package, holding everything that differs between kinds: which
shapes are valid, how the block lowers to fused ops (:mod:`hwadapt.ops`), which of its
widths are tied to its input (a residual) and which are free, its trainable PyTorch
module, and which of that module's convolutions own which channels (for pruning).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from hwadapt.errors import ArchError
from hwadapt.ops import Op
from hwadapt.ops.clip import channel_bounds
from hwadapt.registry import Registry

if TYPE_CHECKING:
    import numpy as np
    from torch import nn

Emit = Callable[[Op], int]  # appends an op to the lowered list, returns its index
UnitChannels = tuple[str, "np.ndarray", "np.ndarray | None"]  # unit, kept outputs, kept inputs (None: depthwise)


@dataclass(frozen=True)
class Block:
    """One block of a network: its kind, output width and the fields its kind reads.

    ``mid`` is an inner width (an expansion, a ResNet block's first conv); ``residual``
    is the kind's shortcut choice (None: the kind's rule from the shapes). ``carry``: output
    channels after the ``out`` ones that the activation leaves alone (where a network
    re-parameterised by RM carries a residual through: :mod:`hwadapt.rm`).
    """

    kind: str
    out: int
    kernel: int = 3
    stride: int = 1
    mid: int = 0
    residual: bool | None = None
    carry: int = 0

    @property
    def spec(self) -> BlockKind:
        return block_kind(self.kind)

    @property
    def width(self) -> int:
        """Output channels: the activated ones and the carried ones."""
        return self.out + self.carry

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for name, empty in (("mid", 0), ("residual", None), ("carry", 0)):
            if data[name] == empty:
                data.pop(name)
        return data


class BlockKind:
    """The spec of one block kind; subclasses override what differs from a block whose
    output width is free and that has no inner width."""

    name: ClassVar[str]
    odd_kernel: ClassVar[bool] = True

    def validate(self, block: Block, cin: int) -> str | None:
        """Why ``block`` cannot follow ``cin`` channels (None: it can)."""
        return None

    def tied_to_input(self, block: Block, cin: int) -> bool:
        """Whether the output widths must equal the input's (a residual, an identity, a
        depthwise convolution)."""
        return False

    def output_fields(self, block: Block) -> tuple[str, ...]:
        """The fields whose widths make up the output, in channel order."""
        return ("out", "carry") if block.carry else ("out",)

    def inner_widths(self, block: Block) -> tuple[str, ...]:
        """Fields of ``block`` holding free widths inside it (each its own channel group)."""
        return ()

    def freeze(self, block: Block, cin: int) -> Block:
        """``block`` with the choices its kind infers from the shapes made explicit, so that
        changing widths cannot change its structure."""
        return block

    def lower(self, block: Block, cin: int, size: int, act: str, index: int, x: int, emit: Emit) -> int:
        """Emit the block's fused ops reading op ``x``; returns the index of its output op."""
        raise NotImplementedError

    def module(self, block: Block, cin: int, size: int, act: str) -> nn.Module:
        """The trainable PyTorch module; each weighted op's ``role`` names its unit there."""
        raise NotImplementedError

    def unit_channels(self, block: Block, inp: np.ndarray, out: np.ndarray, mid: np.ndarray) -> list[UnitChannels]:
        """Which channels each conv unit keeps when the block keeps input channels ``inp``,
        output channels ``out`` (every output field's, in channel order) and inner channels
        ``mid`` (a unit the module lacks, such as an identity shortcut's, is passed over)."""
        return []

    def producers(self, block: Block, field: str) -> tuple[str, ...]:
        """The units whose output filters hold the channels of ``field`` (an output field or
        an inner width; a unit the module lacks is passed over)."""
        return ()

    def op_weights(self, op: Op, module: nn.Module) -> tuple[np.ndarray, ...] | None:
        """The deployed arrays of one of the block's lowered ops: a convolution's unit (the
        one its ``role`` names) with BN folded in; a per-channel activation's bounds (the
        module's ``act`` activates the first ``active`` channels)."""
        from hwadapt.blocks.layers import fold_bn

        if op.kind == "clip":
            return channel_bounds(op.act, module.act.active, op.cout - module.act.active)
        return fold_bn(getattr(module, op.role))


BLOCK_KINDS: Registry[BlockKind] = Registry("block kind", ArchError)
register_block = BLOCK_KINDS.instance  # class decorator of a block kind's spec


def block_kind(name: str) -> BlockKind:
    return BLOCK_KINDS[name]


def keeps_input(block: Block, cin: int) -> bool:
    """The residual rule of blocks whose ``residual`` field chooses an identity shortcut:
    as given, else wherever the shape allows one (stride 1, ``out`` equal to the input width)."""
    if block.residual is None:
        return block.stride == 1 and cin == block.out
    return block.residual
