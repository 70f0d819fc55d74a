"""Lowering an :class:`Arch` to the primitive operators a backend runs.

Every materialiser (PyTorch, ONNX, TFLite) and the LUT predictor walk the same list,
so the three exported forms and the price of a network always describe one graph.
BN is folded into its convolution and the activation fused into it, which is how
ONNX Runtime and LiteRT execute conv+BN+act: one kernel.
"""
from __future__ import annotations

from dataclasses import dataclass

from hwadapt.arch.spec import Arch

OP_KINDS = ("conv", "dwconv", "add", "pool", "fc")


@dataclass(frozen=True)
class Op:
    """One fused operator.

    ``inputs`` are indices of the producing ops in the lowered list (-1 is the network
    input). ``size`` is the input's spatial side (square feature maps).
    """

    kind: str
    cin: int
    cout: int
    size: int
    kernel: int = 1
    stride: int = 1
    act: str = "none"
    block: int = -1
    role: str = ""
    inputs: tuple[int, ...] = ()

    @property
    def out_size(self) -> int:
        if self.kind in ("pool", "fc"):
            return 1
        return conv_out_size(self.size, self.stride)

    @property
    def shape_class(self) -> tuple[str, int, int, int, str]:
        """What fixes an op's cost apart from its channel counts."""
        return (self.kind, self.size, self.kernel, self.stride, self.act)

    @property
    def channels(self) -> tuple[int, int]:
        return (self.cin, self.cout)


def conv_out_size(size: int, stride: int) -> int:
    """Output side of a 'same'-padded convolution."""
    return (size + stride - 1) // stride


def same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """(before, after) zero padding of TensorFlow's SAME convention.

    PyTorch pads symmetrically; TFLite pads SAME, which puts the extra row after for
    stride 2 on even inputs. Using SAME everywhere keeps the three forms identical.
    """
    out = conv_out_size(size, stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def lower(arch: Arch) -> list[Op]:
    """The fused operator list of ``arch``, in execution order."""
    ops: list[Op] = []
    size, cin, last = arch.resolution, arch.in_channels, -1

    def add(op: Op) -> int:
        ops.append(op)
        return len(ops) - 1

    for i, block in enumerate(arch.blocks):
        block_input = last
        if block.kind == "skip":
            continue
        if block.kind == "conv":
            last = add(Op("conv", cin, block.out, size, block.kernel, block.stride, arch.act, i, "conv", (last,)))
        elif block.kind == "dwsep":
            last = add(Op("dwconv", cin, cin, size, block.kernel, block.stride, arch.act, i, "dw", (last,)))
            dsize = conv_out_size(size, block.stride)
            last = add(Op("conv", cin, block.out, dsize, 1, 1, arch.act, i, "pw", (last,)))
        elif block.kind == "mbconv":
            mid = block.mid or cin
            if block.mid:
                last = add(Op("conv", cin, mid, size, 1, 1, arch.act, i, "expand", (last,)))
            last = add(Op("dwconv", mid, mid, size, block.kernel, block.stride, arch.act, i, "dw", (last,)))
            dsize = conv_out_size(size, block.stride)
            last = add(Op("conv", mid, block.out, dsize, 1, 1, "none", i, "project", (last,)))
            if block.has_residual(cin):
                last = add(Op("add", block.out, block.out, dsize, block=i, role="add", inputs=(last, block_input)))
        size = conv_out_size(size, block.stride)
        cin = block.out
    last = add(Op("pool", cin, cin, size, role="pool", inputs=(last,)))
    add(Op("fc", cin, arch.num_classes, 1, role="fc", inputs=(last,)))
    return ops


def weighted(op: Op) -> bool:
    """Whether the op carries a weight and bias."""
    return op.kind in ("conv", "dwconv", "fc")


def weight_shape(op: Op) -> tuple[int, ...]:
    """A weighted op's weight, in PyTorch's layout (conv: cout x cin/groups x k x k; fc: cout x cin)."""
    if op.kind == "conv":
        return (op.cout, op.cin, op.kernel, op.kernel)
    if op.kind == "dwconv":
        return (op.cout, 1, op.kernel, op.kernel)
    return (op.cout, op.cin)
