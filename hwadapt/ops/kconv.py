"""``kconv``: a convolution whose window is a kh x kw rectangle cut from a k x k SAME window
(+ folded BN + activation): what a k x k layer becomes when some rows or columns of
its window are dead in every filter (stripe-wise pruning, :mod:`hwadapt.stripe`).

The op's ``kernel`` holds the window's shape as ``kh * 10 + kw`` (:func:`window_code`):
the LUT keys shape classes on (kind, size, kernel, stride, act), and a 3 x 2 window
costs what a 3 x 2 window costs wherever it sits in the k x k frame. Where it sits is
in the weights: the third array holds the pads (top, left, bottom, right) that place
the window's reads where the k x k SAME window read them; a pad is negative where the
window starts inside the frame past the frame's own padding (the input is cropped).
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from hwadapt.ops.base import Op, register_op, same_pads, torch_activation
from hwadapt.ops.conv import Conv


def window_code(rows: int, cols: int) -> int:
    """The ``kernel`` of a ``rows`` x ``cols`` window (one digit each)."""
    if not (0 < rows < 10 and 0 < cols < 10):
        raise ValueError(f"a kconv window is 1-9 rows by 1-9 columns, not {rows} x {cols}")
    return rows * 10 + cols


def window_shape(op: Op) -> tuple[int, int]:
    """(rows, columns) of a ``kconv`` op's window."""
    return divmod(op.kernel, 10)


def frame_pads(size: int, kernel: int, stride: int, row: int, col: int, rows: int, cols: int) -> np.ndarray:
    """Pads (top, left, bottom, right) of the window of ``rows`` x ``cols`` starting at
    (``row``, ``col``) of a ``kernel`` x ``kernel`` SAME window: output pixel y reads input
    row ``y * stride + r - before`` for each of the window's rows r, as the frame did."""
    before = same_pads(size, kernel, stride)[0]
    out = (size + stride - 1) // stride
    top, left = before - row, before - col
    return np.array([top, left, (out - 1) * stride + rows - size - top, (out - 1) * stride + cols - size - left],
                    np.int64)


@register_op
class WindowConv(Conv):
    name = "kconv"

    def feature(self, op):
        # a one-tap window is a 1x1 convolution, any other a small k x k one
        rows, cols = window_shape(op)
        return self.features[0] if rows * cols == 1 else self.features[1]

    def weight_shapes(self, op):
        rows, cols = window_shape(op)
        return ((op.cout, op.cin, rows, cols), (op.cout,), (4,))

    def random_weights(self, op, rng):
        """Timed with the window's own SAME pads: an offset moves a pad by a row or a
        column, which does not move the cost."""
        rows, cols = window_shape(op)
        weight, bias, _ = super().random_weights(op, rng)
        (top, bottom), (left, right) = same_pads(op.size, rows, op.stride), same_pads(op.size, cols, op.stride)
        return weight, bias, np.array([top, left, bottom, right], np.int64)

    def stand_ins(self, op):
        """Every window smaller than a k x k convolution's, with its channels and act."""
        if op.kind != "conv" or op.kernel == 1:
            return []
        return [replace(op, kind=self.name, kernel=window_code(rows, cols))
                for rows in range(1, op.kernel + 1) for cols in range(1, op.kernel + 1)
                if (rows, cols) != (op.kernel, op.kernel)]

    def torch(self, op, inputs, weights):
        import torch.nn.functional as F

        top, left, bottom, right = (int(p) for p in weights[2])
        x = F.pad(inputs[0], (left, right, top, bottom))  # negative pads crop
        return torch_activation(F.conv2d(x, weights[0], weights[1], op.stride), op.act)

    def onnx(self, graph, index, op, inputs, weights):
        pads, x = weights[2], inputs[0]
        crop = np.maximum(-pads, 0)
        if crop.any():
            x = graph.node("Slice", [x, graph.const(f"cs{index}", crop[:2]),
                                     graph.const(f"ce{index}", op.size - crop[2:]),
                                     graph.const(f"ca{index}", np.array([2, 3], np.int64))], f"crop{index}")
        top, left, bottom, right = (int(p) for p in np.maximum(pads, 0))
        pre = graph.pre_activation(index, op.act)
        graph.node("Conv", [x, graph.const(f"w{index}", weights[0]), graph.const(f"b{index}", weights[1])], pre,
                   kernel_shape=list(weights[0].shape[2:]), strides=[op.stride, op.stride],
                   pads=[top, left, bottom, right])
        graph.activate(index, pre, op.act)

    def tflite(self, graph, index, op, inputs, weights):
        fb = graph.fb
        rows, cols = window_shape(op)
        pads, x, size = weights[2], inputs[0], (op.size, op.size)
        crop = np.maximum(-pads, 0)
        if crop.any():
            x, size = self._crop(graph, index, op, x, crop)
        grow = np.maximum(pads, 0)
        same = np.array([*same_pads(size[0], rows, op.stride), *same_pads(size[1], cols, op.stride)])
        options = fb.Conv2DOptionsT()
        options.padding = fb.Padding.SAME
        if not np.array_equal(grow[[0, 2, 1, 3]], same):  # not the runtime's own SAME pads: pad, then VALID
            x = self._pad(graph, index, op, x, size, grow)
            options.padding = fb.Padding.VALID
        options.strideH = options.strideW = op.stride
        options.dilationHFactor = options.dilationWFactor = 1
        options.fusedActivationFunction = graph.fused(op.act)
        filters = graph.tensor(f"w{index}", [op.cout, rows, cols, op.cin], weights[0].transpose(0, 2, 3, 1))
        bias = graph.tensor(f"b{index}", [op.cout], weights[1])
        out = graph.tensor(f"t{index}", graph.nhwc(self.output_shape(op)))
        graph.operator(fb.BuiltinOperator.CONV_2D, [x, filters, bias], [out], fb.BuiltinOptions.Conv2DOptions, options)
        return out

    @staticmethod
    def _crop(graph, index, op, x, crop) -> tuple[int, tuple[int, int]]:
        """The input without the rows and columns a negative pad drops (NHWC)."""
        fb = graph.fb
        top, left, bottom, right = (int(c) for c in crop)
        size = (op.size - top - bottom, op.size - left - right)
        begin = graph.tensor(f"cb{index}", [4], np.array([0, top, left, 0], np.int32), fb.TensorType.INT32)
        end = graph.tensor(f"ce{index}", [4], np.array([1, top + size[0], left + size[1], op.cin], np.int32),
                           fb.TensorType.INT32)
        steps = graph.tensor(f"cst{index}", [4], np.ones(4, np.int32), fb.TensorType.INT32)
        out = graph.tensor(f"crop{index}", [1, *size, op.cin])
        graph.operator(fb.BuiltinOperator.STRIDED_SLICE, [x, begin, end, steps], [out],
                       fb.BuiltinOptions.StridedSliceOptions, fb.StridedSliceOptionsT())
        return out, size

    @staticmethod
    def _pad(graph, index, op, x, size, grow) -> int:
        fb = graph.fb
        top, left, bottom, right = (int(p) for p in grow)
        paddings = np.array([[0, 0], [top, bottom], [left, right], [0, 0]], np.int32)
        amounts = graph.tensor(f"pads{index}", [4, 2], paddings, fb.TensorType.INT32)
        out = graph.tensor(f"padded{index}", [1, size[0] + top + bottom, size[1] + left + right, op.cin])
        graph.operator(fb.BuiltinOperator.PAD, [x, amounts], [out], fb.BuiltinOptions.PadOptions, fb.PadOptionsT())
        return out
