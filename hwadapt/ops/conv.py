"""``conv``: a full convolution (odd kernel, stride 1 or 2) + folded BN + activation."""
from __future__ import annotations

from hwadapt.ops.base import Op, OpKind, register_op, same_pads, torch_activation


def same_pad_torch(x, op: Op, value: float = 0.0):
    """``x`` padded as TensorFlow's SAME does for ``op``'s window."""
    import torch.nn.functional as F

    before, after = same_pads(op.size, op.kernel, op.stride)
    return F.pad(x, (before, after, before, after), value=value) if before or after else x


@register_op
class Conv(OpKind):
    name = "conv"
    # a 1x1 convolution and a k x k one scale differently inside a network
    features = ("conv1x1", "convkxk")
    depthwise = False

    def feature(self, op: Op) -> str:
        return self.features[0] if op.kernel == 1 else self.features[1]

    def groups(self, op: Op) -> int:
        return op.cin if self.depthwise else 1

    def weight_shapes(self, op: Op) -> tuple[tuple[int, ...], ...]:
        return ((op.cout, op.cin // self.groups(op), op.kernel, op.kernel), (op.cout,))

    def torch(self, op, inputs, weights):
        import torch.nn.functional as F

        x = F.conv2d(same_pad_torch(inputs[0], op), weights[0], weights[1], op.stride, groups=self.groups(op))
        return torch_activation(x, op.act)

    def onnx(self, graph, index, op, inputs, weights):
        before, after = same_pads(op.size, op.kernel, op.stride)
        pre = graph.pre_activation(index, op.act)
        graph.node("Conv", [inputs[0], graph.const(f"w{index}", weights[0]), graph.const(f"b{index}", weights[1])],
                   pre, kernel_shape=[op.kernel, op.kernel], strides=[op.stride, op.stride],
                   pads=[before, before, after, after], group=self.groups(op))
        graph.activate(index, pre, op.act)

    def tflite(self, graph, index, op, inputs, weights):
        fb = graph.fb
        filters = graph.tensor(f"w{index}", [op.cout, op.kernel, op.kernel, op.cin], weights[0].transpose(0, 2, 3, 1))
        return self.emit_tflite(graph, index, op, inputs[0], filters, weights[1], fb.Conv2DOptionsT(),
                                fb.BuiltinOperator.CONV_2D, fb.BuiltinOptions.Conv2DOptions)

    def emit_tflite(self, graph, index, op, x, filters, bias, options, code, options_type) -> int:
        """The convolution operator with SAME padding and the fused activation."""
        options.padding, options.strideH, options.strideW = graph.fb.Padding.SAME, op.stride, op.stride
        options.dilationHFactor = options.dilationWFactor = 1
        options.fusedActivationFunction = graph.fused(op.act)
        bias_tensor = graph.tensor(f"b{index}", [op.cout], bias)
        out = graph.tensor(f"t{index}", graph.nhwc(self.output_shape(op)))
        graph.operator(code, [x, filters, bias_tensor], [out], options_type, options)
        return out
