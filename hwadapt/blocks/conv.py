"""``conv``: one convolution + BN + activation (a stem, a VGG layer, a 1x1 head).

With ``carry``, the convolution's last ``carry`` output channels are left linear (an RM
re-parameterised network carries a residual through them): the activation is then a
per-channel ``clip`` op of its own after the convolution."""
from __future__ import annotations

from torch import nn

from hwadapt.blocks.base import Block, BlockKind, register_block
from hwadapt.blocks.layers import ConvBNAct, PartialAct
from hwadapt.ops import Op


class ConvModule(nn.Module):
    def __init__(self, block: Block, cin: int, size: int, act: str) -> None:
        super().__init__()
        self.conv = ConvBNAct(cin, block.width, block.kernel, block.stride, size, None if block.carry else act)
        self.act = PartialAct(block.out, act) if block.carry else None

    def forward(self, x):
        y = self.conv(x)
        return self.act(y) if self.act is not None else y


def lower_partial(block: Block, size: int, act: str, index: int, x: int, emit, first: Op) -> int:
    """Emit ``first`` (activated in place when nothing is carried), then the per-channel
    activation of a block that carries channels."""
    x = emit(first)
    if not block.carry:
        return x
    return emit(Op("clip", block.width, block.width, first.out_size, act=act, block=index, role="act", inputs=(x,)))


@register_block
class ConvBlock(BlockKind):
    name = "conv"

    def lower(self, block, cin, size, act, index, x, emit):
        op = Op("conv", cin, block.width, size, block.kernel, block.stride, "none" if block.carry else act, index,
                "conv", (x,))
        return lower_partial(block, size, act, index, x, emit, op)

    def module(self, block, cin, size, act):
        return ConvModule(block, cin, size, act)

    def unit_channels(self, block, inp, out, mid):
        return [("conv", out, inp)]

    def producers(self, block, field):
        return ("conv",)
