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

if TYPE_CHECKING:
    import numpy as np
    from torch import nn

Emit = Callable[[Op], int]  # appends an op to the lowered list, returns its index
UnitChannels = tuple[str, "np.ndarray", "np.ndarray | None"]  # unit, kept outputs, kept inputs (None: depthwise)


@dataclass(frozen=True)
class Block:
    """One block of a network: its kind, output width and the fields its kind reads.

    ``mid`` is an inner width (an expansion, a ResNet block's first conv); ``residual``
    is the kind's shortcut choice (None: the kind's rule from the shapes).
    """

    kind: str
    out: int
    kernel: int = 3
    stride: int = 1
    mid: int = 0
    residual: bool | None = None

    @property
    def spec(self) -> BlockKind:
        return block_kind(self.kind)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if not data["mid"]:
            data.pop("mid")
        if data["residual"] is None:
            data.pop("residual")
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
        """Whether the output width must equal the input width (a residual, an identity)."""
        return False

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
        output channels ``out`` and inner channels ``mid``."""
        return []

    def producers(self, block: Block, field: str) -> tuple[str, ...]:
        """The units whose output filters are the channels of ``field`` ("out" or an inner width)."""
        return ()


BLOCK_KINDS: dict[str, BlockKind] = {}


def register_block(kind: type[BlockKind]) -> type[BlockKind]:
    """Class decorator: register one instance of ``kind`` under ``kind.name``."""
    BLOCK_KINDS[kind.name] = kind()
    return kind


def block_kind(name: str) -> BlockKind:
    try:
        return BLOCK_KINDS[name]
    except KeyError:
        raise ArchError(f"unknown block kind {name!r}; known: {', '.join(sorted(BLOCK_KINDS))}") from None
