"""Op kinds: one module per kind, each registering its :class:`OpKind` spec."""
# each module registers its kind
from hwadapt.ops import add, clip, conv, dwconv, fc, kconv, maxpool, pool, stripes, tapsum  # noqa: F401
from hwadapt.ops.base import (ACTIVATIONS, OP_KINDS, Op, OpKind, OpKindError, Weights, conv_out_size, op_kind,
                              register_op, same_pads)

__all__ = ["ACTIVATIONS", "OP_KINDS", "Op", "OpKind", "OpKindError", "Weights", "conv_out_size", "op_kind",
           "register_op", "same_pads"]
