"""``basic``: ResNet's basic block: conv(kernel, stride) to ``mid`` + BN + ReLU, conv(kernel)
to ``out`` + BN, plus a shortcut, then the activation after the sum. The shortcut is the
identity (``residual`` True: stride 1 and ``out`` equal to the input width, which ties
the two widths) or a 1x1 conv(stride) + BN (``residual`` False); None: the identity
wherever the shapes allow it."""
from __future__ import annotations

from dataclasses import replace

from torch import nn

from hwadapt.blocks.base import Block, BlockKind, keeps_input, register_block
from hwadapt.blocks.layers import ConvBNAct, activation
from hwadapt.ops import Op, conv_out_size


class BasicModule(nn.Module):
    def __init__(self, block: Block, cin: int, size: int, act: str) -> None:
        super().__init__()
        self.conv1 = ConvBNAct(cin, block.mid, block.kernel, block.stride, size, act)
        self.conv2 = ConvBNAct(block.mid, block.out, block.kernel, 1, conv_out_size(size, block.stride), None)
        self.shortcut = None if keeps_input(block, cin) else ConvBNAct(cin, block.out, 1, block.stride, size,
                                                                               None)
        self.act = activation(act)

    def forward(self, x):
        y = self.conv2(self.conv1(x))
        return self.act(y + (x if self.shortcut is None else self.shortcut(x)))


@register_block
class BasicBlock(BlockKind):
    name = "basic"

    def validate(self, block, cin):
        if block.mid < 1:
            return "a basic block needs its inner width (mid)"
        if block.residual and (block.stride != 1 or block.out != cin):
            return f"an identity shortcut needs stride 1 and out == in ({cin})"
        return None

    def tied_to_input(self, block, cin):
        return keeps_input(block, cin)

    def inner_widths(self, block):
        return ("mid",)

    def freeze(self, block, cin):
        return replace(block, residual=keeps_input(block, cin)) if block.residual is None else block

    def lower(self, block, cin, size, act, index, x, emit):
        block_input, out_size = x, conv_out_size(size, block.stride)
        x = emit(Op("conv", cin, block.mid, size, block.kernel, block.stride, act, index, "conv1", (x,)))
        x = emit(Op("conv", block.mid, block.out, out_size, block.kernel, 1, "none", index, "conv2", (x,)))
        if not keeps_input(block, cin):
            block_input = emit(Op("conv", cin, block.out, size, 1, block.stride, "none", index, "shortcut",
                                  (block_input,)))
        return emit(Op("add", block.out, block.out, out_size, act=act, block=index, role="add",
                       inputs=(x, block_input)))

    def module(self, block, cin, size, act):
        return BasicModule(block, cin, size, act)

    def unit_channels(self, block, inp, out, mid):
        return [("conv1", mid, inp), ("conv2", out, mid), ("shortcut", out, inp)]  # the shortcut where there is one

    def producers(self, block, field):
        return ("conv1",) if field == "mid" else ("conv2", "shortcut")
