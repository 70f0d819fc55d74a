"""``skip``: the identity (ProxylessNAS's zero op, leaving only the residual); only where
the shape is kept."""
from __future__ import annotations

from torch import nn

from hwadapt.blocks.base import BlockKind, register_block


class SkipModule(nn.Module):
    def forward(self, x):
        return x


@register_block
class SkipBlock(BlockKind):
    name = "skip"

    def validate(self, block, cin):
        if block.stride != 1 or block.out != cin:
            return f"a skip block must keep the shape ({cin} channels, stride 1)"
        return None

    def tied_to_input(self, block, cin):
        return True

    def lower(self, block, cin, size, act, index, x, emit):
        return x

    def module(self, block, cin, size, act):
        return SkipModule()
