"""``clip``: a per-channel activation, each channel clipped to its own bounds.

What a network re-parameterised by RM needs where an activation must act on some channels
and leave others alone: MobileNetV2's ReLU6 on the expanded channels, the identity on the
channels that carry a residual through (:mod:`hwadapt.rm`). It cannot be fused into the
convolution before it (a runtime's fused activation acts on every channel), so it is an
op of its own with its own LUT rows. Its weights are the bounds (-inf/inf where a channel
is not clipped); ``act`` names what the clipped channels do.
"""
from __future__ import annotations

import numpy as np

from hwadapt.ops.base import OpKind, register_op

BOUNDS = {"relu": (0.0, np.inf), "relu6": (0.0, 6.0)}


def channel_bounds(act: str, active: int, linear: int) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) of ``active`` channels under ``act`` followed by ``linear`` unclipped ones."""
    low, high = BOUNDS[act]
    lo = np.concatenate([np.full(active, low), np.full(linear, -np.inf)]).astype(np.float32)
    hi = np.concatenate([np.full(active, high), np.full(linear, np.inf)]).astype(np.float32)
    return lo, hi


@register_op
class Clip(OpKind):
    name = "clip"
    features = ("clip",)
    one_axis = True

    def weight_shapes(self, op):
        return ((op.cout,), (op.cout,))

    def random_weights(self, op, rng):
        """Half the channels clipped, half passed: what the cost depends on is the channel count."""
        return channel_bounds(op.act, op.cout // 2, op.cout - op.cout // 2)

    def torch(self, op, inputs, weights):
        import torch

        lo, hi = (w.view(1, -1, 1, 1) for w in weights)
        return torch.minimum(torch.maximum(inputs[0], lo), hi)

    def onnx(self, graph, index, op, inputs, weights):
        lo = graph.const(f"lo{index}", weights[0].reshape(1, -1, 1, 1))
        hi = graph.const(f"hi{index}", weights[1].reshape(1, -1, 1, 1))
        graph.node("Max", [inputs[0], lo], f"pre{index}")
        graph.node("Min", [f"pre{index}", hi], graph.name(index))

    def tflite(self, graph, index, op, inputs, weights):
        fb = graph.fb
        shape = graph.nhwc(self.output_shape(op))
        lo = graph.tensor(f"lo{index}", [1, 1, 1, op.cout], weights[0])
        hi = graph.tensor(f"hi{index}", [1, 1, 1, op.cout], weights[1])
        floor = graph.tensor(f"pre{index}", shape)
        graph.operator(fb.BuiltinOperator.MAXIMUM, [inputs[0], lo], [floor])
        out = graph.tensor(f"t{index}", shape)
        graph.operator(fb.BuiltinOperator.MINIMUM, [floor, hi], [out])
        return out
