"""``mbconv``: MobileNetV2's inverted residual: pointwise expansion to ``mid`` + BN + act
(absent when ``mid`` is 0), depthwise conv(kernel, stride) + BN + act, pointwise
projection to ``out`` + BN (linear); a residual add if ``residual`` (None: when the stride
is 1 and the input width equals ``out``, MobileNetV2's rule)."""
from __future__ import annotations

from dataclasses import replace

from torch import nn

from hwadapt.blocks.base import Block, BlockKind, keeps_input, register_block
from hwadapt.blocks.layers import ConvBNAct
from hwadapt.ops import Op, conv_out_size


class MBConvModule(nn.Module):
    def __init__(self, block: Block, cin: int, size: int, act: str) -> None:
        super().__init__()
        mid = block.mid or cin
        self.expand = ConvBNAct(cin, mid, 1, 1, size, act) if block.mid else None
        self.dw = ConvBNAct(mid, mid, block.kernel, block.stride, size, act, groups=mid)
        self.project = ConvBNAct(mid, block.out, 1, 1, conv_out_size(size, block.stride), None)
        self.residual = keeps_input(block, cin)

    def forward(self, x):
        y = self.expand(x) if self.expand is not None else x
        y = self.project(self.dw(y))
        return x + y if self.residual else y


@register_block
class MBConvBlock(BlockKind):
    name = "mbconv"

    def validate(self, block, cin):
        if block.residual and (block.stride != 1 or block.out != cin):
            return f"a residual needs stride 1 and out == in ({cin})"
        return None

    def tied_to_input(self, block, cin):
        return keeps_input(block, cin)

    def inner_widths(self, block):
        return ("mid",) if block.mid else ()

    def freeze(self, block, cin):
        return replace(block, residual=keeps_input(block, cin)) if block.residual is None else block

    def lower(self, block, cin, size, act, index, x, emit):
        block_input, mid = x, block.mid or cin
        if block.mid:
            x = emit(Op("conv", cin, mid, size, 1, 1, act, index, "expand", (x,)))
        x = emit(Op("dwconv", mid, mid, size, block.kernel, block.stride, act, index, "dw", (x,)))
        out_size = conv_out_size(size, block.stride)
        x = emit(Op("conv", mid, block.out, out_size, 1, 1, "none", index, "project", (x,)))
        if keeps_input(block, cin):
            x = emit(Op("add", block.out, block.out, out_size, block=index, role="add", inputs=(x, block_input)))
        return x

    def module(self, block, cin, size, act):
        return MBConvModule(block, cin, size, act)

    def unit_channels(self, block, inp, out, mid):
        hidden = mid if len(mid) else inp
        units = [("expand", mid, inp)] if len(mid) else []
        return units + [("dw", hidden, None), ("project", out, hidden)]

    def producers(self, block, field):
        return ("expand",) if field == "mid" else ("project",)
