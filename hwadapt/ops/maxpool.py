"""``maxpool``: max pooling over a kernel x kernel window with SAME padding (padded
positions never win), as ResNet's stem and VGG's stages use it."""
from __future__ import annotations

from hwadapt.ops.base import OpKind, register_op, same_pads
from hwadapt.ops.conv import same_pad_torch


@register_op
class MaxPool(OpKind):
    name = "maxpool"
    features = ("maxpool",)
    one_axis = True

    def torch(self, op, inputs, weights):
        import torch.nn.functional as F

        return F.max_pool2d(same_pad_torch(inputs[0], op, value=float("-inf")), op.kernel, op.stride)

    def onnx(self, graph, index, op, inputs, weights):
        before, after = same_pads(op.size, op.kernel, op.stride)
        graph.node("MaxPool", [inputs[0]], graph.name(index), kernel_shape=[op.kernel, op.kernel],
                   strides=[op.stride, op.stride], pads=[before, before, after, after])

    def tflite(self, graph, index, op, inputs, weights):
        fb = graph.fb
        options = fb.Pool2DOptionsT()
        options.padding, options.strideH, options.strideW = fb.Padding.SAME, op.stride, op.stride
        options.filterHeight = options.filterWidth = op.kernel
        options.fusedActivationFunction = fb.ActivationFunctionType.NONE
        out = graph.tensor(f"t{index}", graph.nhwc(self.output_shape(op)))
        graph.operator(fb.BuiltinOperator.MAX_POOL_2D, [inputs[0]], [out], fb.BuiltinOptions.Pool2DOptions, options)
        return out
