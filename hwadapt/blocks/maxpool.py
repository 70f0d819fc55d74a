"""``maxpool``: max pooling (kernel, stride) between stages, keeping the channels (ResNet's
stem, VGG's stages)."""
from __future__ import annotations

from torch import nn

from hwadapt.blocks.base import Block, BlockKind, register_block
from hwadapt.ops import Op, same_pads


class MaxPoolModule(nn.Module):
    def __init__(self, block: Block, cin: int, size: int) -> None:
        super().__init__()
        before, after = same_pads(size, block.kernel, block.stride)
        self.pad = nn.ConstantPad2d((before, after, before, after), float("-inf")) if before or after else None
        self.pool = nn.MaxPool2d(block.kernel, block.stride)

    def forward(self, x):
        return self.pool(self.pad(x) if self.pad is not None else x)


@register_block
class MaxPoolBlock(BlockKind):
    name = "maxpool"
    odd_kernel = False

    def validate(self, block, cin):
        if block.out != cin or block.carry:
            return f"max pooling keeps its input's {cin} channels"
        return None

    def tied_to_input(self, block, cin):
        return True

    def lower(self, block, cin, size, act, index, x, emit):
        return emit(Op("maxpool", cin, cin, size, block.kernel, block.stride, block=index, role="pool", inputs=(x,)))

    def module(self, block, cin, size, act):
        return MaxPoolModule(block, cin, size)
