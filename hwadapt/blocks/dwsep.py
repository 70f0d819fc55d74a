"""``dwsep``: MobileNetV1's depthwise-separable block: depthwise conv(kernel, stride) + BN
+ act, then a pointwise conv to ``out`` + BN + act."""
from __future__ import annotations

from torch import nn

from hwadapt.blocks.base import Block, BlockKind, register_block
from hwadapt.blocks.layers import ConvBNAct
from hwadapt.ops import Op, conv_out_size


class DWSepModule(nn.Module):
    def __init__(self, block: Block, cin: int, size: int, act: str) -> None:
        super().__init__()
        self.dw = ConvBNAct(cin, cin, block.kernel, block.stride, size, act, groups=cin)
        self.pw = ConvBNAct(cin, block.out, 1, 1, conv_out_size(size, block.stride), act)

    def forward(self, x):
        return self.pw(self.dw(x))


@register_block
class DWSepBlock(BlockKind):
    name = "dwsep"

    def lower(self, block, cin, size, act, index, x, emit):
        x = emit(Op("dwconv", cin, cin, size, block.kernel, block.stride, act, index, "dw", (x,)))
        return emit(Op("conv", cin, block.out, conv_out_size(size, block.stride), 1, 1, act, index, "pw", (x,)))

    def module(self, block, cin, size, act):
        return DWSepModule(block, cin, size, act)

    def unit_channels(self, block, inp, out, mid):
        return [("dw", inp, None), ("pw", out, inp)]

    def producers(self, block, field):
        return ("pw",)
