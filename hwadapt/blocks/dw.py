"""``dw``: a depthwise convolution + BN + activation on its own, keeping the channels of
its input (and which of them are carried): the depthwise half of MobileNetV1's block, as
RM leaves MobileNetV2's blocks."""
from __future__ import annotations

from torch import nn

from hwadapt.blocks.base import Block, BlockKind, register_block
from hwadapt.blocks.conv import lower_partial
from hwadapt.blocks.layers import ConvBNAct, PartialAct
from hwadapt.ops import Op


class DWModule(nn.Module):
    def __init__(self, block: Block, cin: int, size: int, act: str) -> None:
        super().__init__()
        self.dw = ConvBNAct(cin, cin, block.kernel, block.stride, size, None if block.carry else act, groups=cin)
        self.act = PartialAct(block.out, act) if block.carry else None

    def forward(self, x):
        y = self.dw(x)
        return self.act(y) if self.act is not None else y


@register_block
class DWBlock(BlockKind):
    name = "dw"

    def validate(self, block, cin):
        if block.width != cin:
            return f"a depthwise block keeps its input's {cin} channels (out + carry), not {block.width}"
        return None

    def tied_to_input(self, block, cin):
        return True

    def lower(self, block, cin, size, act, index, x, emit):
        op = Op("dwconv", cin, cin, size, block.kernel, block.stride, "none" if block.carry else act, index, "dw",
                (x,))
        return lower_partial(block, size, act, index, x, emit, op)

    def module(self, block, cin, size, act):
        return DWModule(block, cin, size, act)

    def unit_channels(self, block, inp, out, mid):
        return [("dw", inp, None)]
