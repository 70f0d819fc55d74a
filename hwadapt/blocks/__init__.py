"""Block kinds: one module per kind, each registering its :class:`BlockKind` spec."""
from hwadapt.blocks import basic, conv, dw, dwsep, maxpool, mbconv, skip  # noqa: F401  (each registers its kind)
from hwadapt.blocks.base import BLOCK_KINDS, Block, BlockKind, UnitChannels, block_kind, register_block

__all__ = ["BLOCK_KINDS", "Block", "BlockKind", "UnitChannels", "block_kind", "register_block"]
