"""``fc``: the linear classifier on the pooled features."""
from __future__ import annotations

from hwadapt.ops.base import OpKind, register_op


@register_op
class Linear(OpKind):
    name = "fc"
    features = ("head",)
    fixed_output = True
    flat_input = True
    flat_output = True

    def weight_shapes(self, op):
        return ((op.cout, op.cin), (op.cout,))

    def torch(self, op, inputs, weights):
        import torch.nn.functional as F

        return F.linear(inputs[0], weights[0], weights[1])

    def onnx(self, graph, index, op, inputs, weights):
        graph.node("Gemm", [inputs[0], graph.const(f"w{index}", weights[0]), graph.const(f"b{index}", weights[1])],
                   graph.name(index), transB=1)

    def tflite(self, graph, index, op, inputs, weights):
        fb = graph.fb
        out = graph.tensor(f"t{index}", [1, op.cout])
        w = graph.tensor(f"w{index}", [op.cout, op.cin], weights[0])
        b = graph.tensor(f"b{index}", [op.cout], weights[1])
        options = fb.FullyConnectedOptionsT()
        options.fusedActivationFunction = fb.ActivationFunctionType.NONE
        graph.operator(fb.BuiltinOperator.FULLY_CONNECTED, [inputs[0], w, b], [out],
                       fb.BuiltinOptions.FullyConnectedOptions, options)
        return out
