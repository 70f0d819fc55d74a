"""Architecture description: blocks with per-layer widths, families, channel groups."""
from hwadapt.arch.families import FAMILIES, build, make_divisible
from hwadapt.arch.groups import WidthGroup, random_widths, set_widths, width_groups
from hwadapt.arch.ops import Op, lower
from hwadapt.arch.spec import Arch, ArchError, Block
from hwadapt.arch import proxyless  # noqa: E402,F401  (registers the proxyless family)

__all__ = ["Arch", "ArchError", "Block", "FAMILIES", "Op", "WidthGroup", "build", "lower",
           "make_divisible", "random_widths", "set_widths", "width_groups"]
