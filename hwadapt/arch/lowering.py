"""Lowering an :class:`Arch` to the fused operators a backend runs.

Every materialiser (PyTorch's deployed form, ONNX, TFLite) and the LUT predictor walk
the same list, so the exported forms and the price of a network always describe one
graph. Each block lowers itself (:meth:`~hwadapt.blocks.BlockKind.lower`); pooling and
the classifier close every network.
"""
from __future__ import annotations

from hwadapt.arch.spec import Arch
from hwadapt.ops import Op, conv_out_size


def lower(arch: Arch) -> list[Op]:
    """The fused operator list of ``arch``, in execution order."""
    ops: list[Op] = []

    def emit(op: Op) -> int:
        ops.append(op)
        return len(ops) - 1

    size, cin, last = arch.resolution, arch.in_channels, -1
    for i, block in enumerate(arch.blocks):
        last = block.spec.lower(block, cin, size, arch.act, i, last, emit)
        size, cin = conv_out_size(size, block.stride), block.width
    last = emit(Op("pool", cin, cin, size, role="pool", inputs=(last,)))
    emit(Op("fc", cin, arch.num_classes, 1, role="fc", inputs=(last,)))
    return ops
