"""``dwconv``: a depthwise convolution (one filter per channel) + folded BN + activation."""
from __future__ import annotations

from hwadapt.ops.base import register_op
from hwadapt.ops.conv import Conv


@register_op
class DepthwiseConv(Conv):
    name = "dwconv"
    features = ("dwconv",)
    one_axis = True
    depthwise = True

    def feature(self, op):
        return self.features[0]

    def tflite(self, graph, index, op, inputs, weights):
        fb = graph.fb
        options = fb.DepthwiseConv2DOptionsT()
        options.depthMultiplier = 1
        filters = graph.tensor(f"w{index}", [1, op.kernel, op.kernel, op.cout], weights[0].transpose(1, 2, 3, 0))
        return self.emit_tflite(graph, index, op, inputs[0], filters, weights[1], options,
                                fb.BuiltinOperator.DEPTHWISE_CONV_2D, fb.BuiltinOptions.DepthwiseConv2DOptions)
