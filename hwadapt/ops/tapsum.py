"""``tapsum``: a grouped k x k convolution, one group per filter, that shifts and sums
each filter's tap maps (+ bias + activation): the second half of the ``tapsum`` form of a
stripe-wise pruned convolution (:mod:`hwadapt.stripe.forms`).

The form computes, with a 1x1 convolution, each filter's weights at each of its live
positions (taps) as one map, ``slots`` maps per filter (a filter with fewer live taps
gets maps of zeros); this op reads group o's ``slots`` maps with one-hot kernels, each at
its tap, so that it adds them at their offsets, as the k x k convolution did. Unlike the
``stripes`` op, it is one convolution a runtime has fast kernels for, and it needs no
gather: the price is computing ``slots`` maps for every filter, however few its own.

``cin`` holds the slots per filter, not the input's channels (``slots * cout``): what the
cost depends on at one side, window and stride is slots times filters, and the LUT
measures the two as its axes.
"""
from __future__ import annotations

from hwadapt.ops.base import Op, register_op
from hwadapt.ops.conv import Conv


@register_op
class TapSum(Conv):
    name = "tapsum"
    features = ("tapsum",)

    def feature(self, op):
        return self.features[0]

    def groups(self, op: Op) -> int:
        return op.cout

    def input_shape(self, op):
        return [1, op.cin * op.cout, op.size, op.size]

    def weight_shapes(self, op):
        return ((op.cout, op.cin, op.kernel, op.kernel), (op.cout,))

    def stand_ins(self, op):
        """For a k x k convolution: the 1x1 convolution to its maps and this op, from every
        tap live in some filter (k*k slots) down to one."""
        if op.kind != "conv" or op.kernel == 1:
            return []
        return [alt for slots in (op.kernel ** 2, 1)
                for alt in (Op("conv", op.cin, slots * op.cout, op.size, 1, 1, "none", inputs=op.inputs),
                            Op(self.name, slots, op.cout, op.size, op.kernel, op.stride, op.act, inputs=(0,)))]
