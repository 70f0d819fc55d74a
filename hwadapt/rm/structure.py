"""What RM (Meng et al., "RMNet: equivalently removing residual connection from networks")
makes of an architecture: the plain chain, block by block, before any weights.

- A ResNet basic block with input ``x`` (non-negative: it follows a ReLU) becomes two
  convolutions: the first computes the block's first conv *and* passes ``x`` through on
  ``cin`` extra channels (a Dirac kernel; the ReLU leaves non-negative values alone), the
  second adds the block's second conv of the first part to the shortcut of the carried
  part (a Dirac kernel for an identity shortcut, the 1x1 projection otherwise).
- A MobileNetV2 inverted residual block with input ``x`` carries ``x`` through its
  expansion and depthwise convolution on extra channels that the activation leaves alone
  (``carry``: ReLU6 would clip them), and its projection adds it back. The projection is
  linear, so it is fused with the next block's expansion (or the 1x1 head): a chain of
  depthwise and pointwise convolutions, MobileNetV1-like.

The carried channels widen every layer they pass through: RM alone makes a network
slower, and what it buys is widths that are no longer tied, to be pruned freely.
"""
from __future__ import annotations

from hwadapt.arch.spec import Arch
from hwadapt.blocks import Block
from hwadapt.errors import HwadaptError

PLAIN = "plain"


class RmError(HwadaptError):
    """A network RM cannot re-parameterise."""


def plain_blocks_of_basic(block: Block, cin: int) -> list[Block]:
    return [Block("conv", block.mid + cin, kernel=block.kernel, stride=block.stride),
            Block("conv", block.out, kernel=block.kernel, stride=1)]


def resnet_plain(arch: Arch) -> Arch:
    """The plain chain of a network of conv, max-pool and basic blocks (ReLU)."""
    if arch.act != "relu":
        raise RmError(f"RM of basic blocks needs ReLU (carried channels must come out of it unchanged), "
                      f"not {arch.act}")
    blocks: list[Block] = []
    for block, cin in zip(arch.blocks, arch.input_widths()):
        if block.kind == "basic":
            blocks += plain_blocks_of_basic(block, cin)
        elif block.kind in ("conv", "maxpool"):
            blocks.append(block)
        else:
            raise RmError(f"RM of {arch.family} cannot handle a {block.kind} block next to basic blocks")
    return Arch(PLAIN, arch.resolution, arch.num_classes, tuple(blocks), act="relu",
                meta={"source": arch.family, "width": arch.meta.get("width")})


def mobilenet_plain(arch: Arch) -> Arch:
    """The MobileNetV1-like chain of a MobileNetV2 (a stem, inverted residual blocks, a 1x1 head)."""
    blocks: list[Block] = [arch.blocks[0]]
    pending = False  # a linear projection waits to be fused into the next pointwise convolution
    cin = arch.blocks[0].width
    for block in arch.blocks[1:]:
        if block.kind == "mbconv":
            carry = cin if block.spec.tied_to_input(block, cin) else 0
            if block.mid:
                blocks.append(Block("conv", block.mid, kernel=1, carry=carry))
            elif pending or carry:
                raise RmError("RM needs an expansion after a projection or around a residual")
            hidden = block.mid or cin
            blocks.append(Block("dw", hidden, kernel=block.kernel, stride=block.stride, carry=carry))
            pending = True
        elif block.kind == "conv" and block.kernel == 1 and pending:
            blocks.append(Block("conv", block.out, kernel=1))
            pending = False
        else:
            raise RmError(f"RM of {arch.family} cannot fuse a projection into a {block.kind} block "
                          f"(kernel {block.kernel}); a 1x1 head must follow the last block")
        cin = block.width
    if pending:
        raise RmError("RM of a MobileNetV2 needs the 1x1 head after its last block")
    return Arch(PLAIN, arch.resolution, arch.num_classes, tuple(blocks), act=arch.act,
                meta={"source": arch.family, "width": arch.meta.get("width")})


def plain_arch(arch: Arch) -> Arch:
    """The plain chain RM makes of ``arch``."""
    kinds = {block.kind for block in arch.blocks}
    if "basic" in kinds:
        return resnet_plain(arch)
    if "mbconv" in kinds:
        return mobilenet_plain(arch)
    raise RmError(f"RM removes residual connections of basic or inverted residual blocks; "
                  f"{arch.family} has none")
