"""``stripes``: the second half of a stripe-wise pruned k x k convolution (Meng et al.,
"Pruning filter in filter", 2020), + bias + activation.

A k x k convolution is the sum, over the k*k positions (taps) of its window, of a 1x1
convolution read at that tap's offset. Stripe-wise pruning kills (filter, tap) pairs;
the surviving ones (stripes) are computed by one 1x1 convolution with one output map per
stripe (an ordinary ``conv`` op), and this op adds them up: for each tap, the stripe maps
of the filters alive there are gathered into filter order (a filter dead at the tap
reads a zero map), shifted to the tap's offset and subsampled by the stride; the taps'
maps are summed with the bias, and the activation applied.

Input: the S stripe maps at the layer's input side (``cin`` = S); ``cout``: the filters;
``kernel`` and ``stride``: the layer's. Weights: the gather map (k*k, cout), int64,
entry [t, o] the stripe map of filter o at tap t or S for none; and the bias.

What it costs: a padded copy of the S maps, then per live tap a gather of ``cout`` maps
and a strided slice, and a sum of as many maps: linear in S and in ``cout`` at one side,
window and stride, and in the number of live taps. The LUT measures (S, cout) with the
stripes spread over the taps at random (at S of a few per tap, every tap live): a layer
whose stripes crowd into fewer taps costs less than its price.
"""
from __future__ import annotations

import numpy as np

from hwadapt.ops.base import Op, OpKind, register_op, same_pads, torch_activation


def live_taps(gather, stripes: int) -> np.ndarray:
    """The taps at which some filter has a stripe (a gather map's rows that read one)."""
    return np.flatnonzero((np.asarray(gather) < stripes).any(axis=1))


@register_op
class Stripes(OpKind):
    name = "stripes"
    features = ("stripes",)

    def input_shape(self, op):
        return [1, op.cin, op.size, op.size]

    def weight_shapes(self, op):
        return ((op.kernel ** 2, op.cout), (op.cout,))

    def random_weights(self, op, rng):
        """A random layout of S stripes; where S exceeds k*k*cout (grid corners no layer
        reaches), the surplus maps are read by nothing but still copied."""
        cells = op.kernel ** 2 * op.cout
        chosen = np.sort(rng.permutation(cells)[:min(op.cin, cells)])  # maps numbered tap by tap
        gather = np.full(cells, op.cin, np.int64)
        gather[chosen] = np.arange(len(chosen))
        return gather.reshape(op.kernel ** 2, op.cout), np.zeros(op.cout, np.float32)

    def stand_ins(self, op):
        """For a k x k convolution: the 1x1 convolution to one map per stripe and this op,
        from every stripe alive (k*k*cout maps) down to one."""
        if op.kind != "conv" or op.kernel == 1:
            return []
        return [alt for maps in (op.kernel ** 2 * op.cout, 1)
                for alt in (Op("conv", op.cin, maps, op.size, 1, 1, "none", inputs=op.inputs),
                            Op(self.name, maps, op.cout, op.size, op.kernel, op.stride, op.act, inputs=(0,)))]

    @staticmethod
    def span(op: Op) -> int:
        """Rows of the padded input one tap's strided slice covers."""
        return (op.out_size - 1) * op.stride + 1

    def torch(self, op, inputs, weights):
        import torch.nn.functional as F

        gather, bias = weights
        before, after = same_pads(op.size, op.kernel, op.stride)
        padded = F.pad(inputs[0], (before, after, before, after, 0, 1))  # and one zero map, read for "none"
        out, span, step = bias.view(1, -1, 1, 1), self.span(op), op.stride
        for tap in live_taps(gather, op.cin):
            i, j = divmod(int(tap), op.kernel)
            out = out + padded[:, gather[tap]][:, :, i:i + span:step, j:j + span:step]
        return torch_activation(out, op.act)

    def onnx(self, graph, index, op, inputs, weights):
        gather, bias = weights
        before, after = same_pads(op.size, op.kernel, op.stride)
        pads = np.array([0, 0, before, before, 0, 1, after, after], np.int64)
        padded = graph.node("Pad", [inputs[0], graph.const(f"pads{index}", pads)], f"pad{index}")
        axes, steps = graph.const(f"ax{index}", np.array([2, 3], np.int64)), graph.const(
            f"st{index}", np.array([op.stride, op.stride], np.int64))
        terms, span = [], self.span(op)
        for tap in live_taps(gather, op.cin):
            i, j = divmod(int(tap), op.kernel)
            maps = graph.node("Gather", [padded, graph.const(f"g{index}_{tap}", gather[tap])], f"gat{index}_{tap}",
                              axis=1)
            terms.append(graph.node("Slice", [maps, graph.const(f"b{index}_{tap}", np.array([i, j], np.int64)),
                                              graph.const(f"e{index}_{tap}", np.array([i + span, j + span], np.int64)),
                                              axes, steps], f"tap{index}_{tap}"))
        pre = graph.pre_activation(index, op.act)
        graph.node("Sum", [*terms, graph.const(f"b{index}", bias.reshape(1, -1, 1, 1))], pre)
        graph.activate(index, pre, op.act)

    def tflite(self, graph, index, op, inputs, weights):
        fb = graph.fb
        gather, bias = weights
        before, after = same_pads(op.size, op.kernel, op.stride)
        side, span, out_side = op.size + before + after, self.span(op), op.out_size
        int32 = fb.TensorType.INT32
        paddings = np.array([[0, 0], [before, after], [before, after], [0, 1]], np.int32)
        padded = graph.tensor(f"pad{index}", [1, side, side, op.cin + 1])
        graph.operator(fb.BuiltinOperator.PAD, [inputs[0], graph.tensor(f"pads{index}", [4, 2], paddings, int32)],
                       [padded], fb.BuiltinOptions.PadOptions, fb.PadOptionsT())
        steps = graph.tensor(f"st{index}", [4], np.array([1, op.stride, op.stride, 1], np.int32), int32)
        terms = []
        for tap in live_taps(gather, op.cin):
            i, j = divmod(int(tap), op.kernel)
            options = fb.GatherOptionsT()
            options.axis = 3
            maps = graph.tensor(f"gat{index}_{tap}", [1, side, side, op.cout])
            graph.operator(fb.BuiltinOperator.GATHER,
                           [padded, graph.tensor(f"g{index}_{tap}", [op.cout], gather[tap].astype(np.int32), int32)],
                           [maps], fb.BuiltinOptions.GatherOptions, options)
            begin = graph.tensor(f"b{index}_{tap}", [4], np.array([0, i, j, 0], np.int32), int32)
            end = graph.tensor(f"e{index}_{tap}", [4], np.array([1, i + span, j + span, op.cout], np.int32), int32)
            terms.append(graph.tensor(f"tap{index}_{tap}", [1, out_side, out_side, op.cout]))
            graph.operator(fb.BuiltinOperator.STRIDED_SLICE, [maps, begin, end, steps], [terms[-1]],
                           fb.BuiltinOptions.StridedSliceOptions, fb.StridedSliceOptionsT())
        total = terms[0]
        if len(terms) > 1:
            total = graph.tensor(f"sum{index}", [1, out_side, out_side, op.cout])
            graph.operator(fb.BuiltinOperator.ADD_N, terms, [total], fb.BuiltinOptions.AddNOptions, fb.AddNOptionsT())
        options = fb.AddOptionsT()
        options.fusedActivationFunction = graph.fused(op.act)
        out = graph.tensor(f"t{index}", graph.nhwc(self.output_shape(op)))
        graph.operator(fb.BuiltinOperator.ADD, [total, graph.tensor(f"b{index}", [op.cout], bias)], [out],
                       fb.BuiltinOptions.AddOptions, options)
        return out
