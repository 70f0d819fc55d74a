"""Op kinds: one module per kind, each registering its :class:`OpKind` spec."""
from hwadapt.ops import (add, clip, conv, dwconv, fc, kconv, maxpool, pool, stripes,  # noqa: F401  (each registers its kind)
                         tapsum)
from hwadapt.ops.base import (ACTIVATIONS, OP_KINDS, Op, OpKind, OpKindError, Weights, conv_out_size, op_kind,
                              register_op, same_pads)

__all__ = ["ACTIVATIONS", "OP_KINDS", "Op", "OpKind", "OpKindError", "Weights", "conv_out_size", "op_kind",
           "register_op", "same_pads"]
