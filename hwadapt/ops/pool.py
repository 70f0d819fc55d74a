"""``pool``: global average pooling to an N x C vector, ahead of the classifier."""
from __future__ import annotations

import numpy as np

from hwadapt.ops.base import OpKind, register_op


@register_op
class GlobalPool(OpKind):
    name = "pool"
    features = ("head",)  # pooling and the classifier: the network's fixed tail
    one_axis = True
    flat_output = True

    def torch(self, op, inputs, weights):
        return inputs[0].mean(dim=(2, 3))

    def onnx(self, graph, index, op, inputs, weights):
        pooled = f"p{index}"
        graph.node("GlobalAveragePool", [inputs[0]], pooled)
        graph.node("Flatten", [pooled], graph.name(index), axis=1)

    def tflite(self, graph, index, op, inputs, weights):
        fb = graph.fb
        out = graph.tensor(f"t{index}", [1, op.cout])
        axes = graph.tensor(f"axes{index}", [2], np.array([1, 2], np.int32), fb.TensorType.INT32)
        options = fb.ReducerOptionsT()
        options.keepDims = False
        graph.operator(fb.BuiltinOperator.MEAN, [inputs[0], axes], [out], fb.BuiltinOptions.ReducerOptions, options)
        return out
