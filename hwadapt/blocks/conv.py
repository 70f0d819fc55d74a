"""``conv``: one convolution + BN + activation (a stem, a VGG layer, a 1x1 head)."""
from __future__ import annotations

from torch import nn

from hwadapt.blocks.base import Block, BlockKind, register_block
from hwadapt.blocks.layers import ConvBNAct
from hwadapt.ops import Op


class ConvModule(nn.Module):
    def __init__(self, block: Block, cin: int, size: int, act: str) -> None:
        super().__init__()
        self.conv = ConvBNAct(cin, block.out, block.kernel, block.stride, size, act)

    def forward(self, x):
        return self.conv(x)


@register_block
class ConvBlock(BlockKind):
    name = "conv"

    def lower(self, block, cin, size, act, index, x, emit):
        return emit(Op("conv", cin, block.out, size, block.kernel, block.stride, act, index, "conv", (x,)))

    def module(self, block, cin, size, act):
        return ConvModule(block, cin, size, act)

    def unit_channels(self, block, inp, out, mid):
        return [("conv", out, inp)]

    def producers(self, block, field):
        return ("conv",)
