"""Architecture description: blocks with per-layer widths, lowering to fused ops, channel groups."""
from hwadapt.arch.groups import WidthGroup, random_widths, set_widths, width_groups
from hwadapt.arch.lowering import lower
from hwadapt.arch.spec import Arch
from hwadapt.blocks import Block
from hwadapt.errors import ArchError

__all__ = ["Arch", "ArchError", "Block", "WidthGroup", "lower", "random_widths", "set_widths", "width_groups"]
