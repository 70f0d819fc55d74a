"""``add``: the elementwise sum of a residual connection, with an optional activation
(a ResNet's ReLU after the sum; TFLite fuses it into the ADD)."""
from __future__ import annotations

from hwadapt.ops.base import OpKind, register_op, torch_activation


@register_op
class Add(OpKind):
    name = "add"
    features = ("add",)
    one_axis = True
    arity = 2

    def torch(self, op, inputs, weights):
        return torch_activation(inputs[0] + inputs[1], op.act)

    def onnx(self, graph, index, op, inputs, weights):
        pre = graph.pre_activation(index, op.act)
        graph.node("Add", list(inputs), pre)
        graph.activate(index, pre, op.act)

    def tflite(self, graph, index, op, inputs, weights):
        fb = graph.fb
        options = fb.AddOptionsT()
        options.fusedActivationFunction = graph.fused(op.act)
        out = graph.tensor(f"t{index}", graph.nhwc(self.output_shape(op)))
        graph.operator(fb.BuiltinOperator.ADD, list(inputs), [out], fb.BuiltinOptions.AddOptions, options)
        return out
