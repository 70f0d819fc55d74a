"""Sparse model files: a pruned network's weights stored as sparse tensors.

* **TFLite**: each convolution filter with zeros becomes a constant tensor with
  ``SparsityParameters`` (dimensions 0-2 dense, the input-channel dimension CSR) and a
  ``DENSIFY`` operator turning it into the dense filter the convolution reads. That is
  the form XNNPACK's sparse inference takes its weights in: its TFLite delegate unpacks
  static ``DENSIFY`` inputs itself and, when it finds any, asks XNNPACK for sparse (NCHW,
  SpMM) inference of the 1x1 convolutions.
* **ONNX**: the filters go to the graph's ``sparse_initializer`` (COO, linear int64
  indices). ONNX Runtime turns them back into dense tensors when it loads the model:
  no CPU convolution kernel reads sparse weights.

XNNPACK's sparse subgraph must also start with a 3x3 stride-2 convolution padded 1 on
each side and have depthwise convolutions padded 1 (3x3) on each side; hwadapt's
networks pad as TensorFlow's SAME does, which the delegate hands to XNNPACK as a flag
that the sparse rewrite refuses. ``symmetric_padding`` writes every padded convolution
as an explicit ``PAD`` (k // 2 on each side, which XNNPACK folds into the convolution)
and a VALID convolution. That is SAME exactly at stride 1; at stride 2 on an even input
SAME pads 0 before and 1 after, so there the file computes a network shifted by one
pixel (PyTorch's ``padding=1`` convention). It is for timing the sparse path, not for
deploying a SAME-trained network.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from hwadapt.arch.lowering import lower
from hwadapt.errors import HwadaptError
from hwadapt.materialize import FORMATS
from hwadapt.materialize.onnx_export import ops_to_onnx
from hwadapt.materialize.tflite_export import TfliteGraph, ops_to_tflite
from hwadapt.materialize.torch_net import Net
from hwadapt.materialize.weights import folded_weights


def csr_rows(dense: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``dense`` (any rank) as CSR over its last dimension: the nonzero values in row-major
    order, the row segments (one more than the rows) and the column of each value."""
    rows = dense.reshape(-1, dense.shape[-1])
    nonzero = rows != 0
    segments = np.concatenate([[0], np.cumsum(nonzero.sum(axis=1))]).astype(np.int32)
    return rows[nonzero].astype(np.float32), segments, np.nonzero(nonzero)[1].astype(np.int32)


class SparseTfliteGraph(TfliteGraph):
    """A :class:`TfliteGraph` writing convolution filters that hold zeros as sparse
    tensors behind ``DENSIFY`` (``sparse``), and padded convolutions as ``PAD`` + VALID
    (``symmetric_padding``)."""

    def __init__(self, sparse: bool = True, symmetric_padding: bool = False) -> None:
        super().__init__()
        self.sparse, self.symmetric_padding = sparse, symmetric_padding

    def tensor(self, name, shape, data=None, dtype=None):
        # 4-D float constants are convolution filters (biases are 1-D, the classifier 2-D)
        is_filter = data is not None and dtype is None and len(shape) == 4
        if not (self.sparse and is_filter and (np.asarray(data) == 0).any()):
            return super().tensor(name, shape, data, dtype)
        values, segments, indices = csr_rows(np.asarray(data, np.float32))
        packed = super().tensor(f"{name}_sparse", shape, values)
        self.tensors[packed].sparsity = self._sparsity(shape, segments, indices)
        dense = super().tensor(name, shape)
        super().operator(self.fb.BuiltinOperator.DENSIFY, [packed], [dense])
        return dense

    def _sparsity(self, shape: list[int], segments: np.ndarray, indices: np.ndarray):
        fb = self.fb
        dims = []
        for size in shape[:-1]:
            dim = fb.DimensionMetadataT()
            dim.format, dim.denseSize = fb.DimensionType.DENSE, size
            dims.append(dim)
        csr = fb.DimensionMetadataT()
        csr.format = fb.DimensionType.SPARSE_CSR
        csr.arraySegmentsType = csr.arrayIndicesType = fb.SparseIndexVector.Int32Vector
        csr.arraySegments, csr.arrayIndices = fb.Int32VectorT(), fb.Int32VectorT()
        csr.arraySegments.values, csr.arrayIndices.values = segments.tolist(), indices.tolist()
        params = fb.SparsityParametersT()
        params.traversalOrder, params.dimMetadata = list(range(len(shape))), [*dims, csr]
        return params

    def operator(self, code, inputs, outputs, options_type=0, options=None):
        fb = self.fb
        convolution = code in (fb.BuiltinOperator.CONV_2D, fb.BuiltinOperator.DEPTHWISE_CONV_2D)
        if self.symmetric_padding and convolution and options.padding == fb.Padding.SAME:
            pad = self.tensors[inputs[1]].shape[1] // 2  # filters are O x H x W x I (depthwise 1 x H x W x C)
            if pad:
                inputs = [self._padded(inputs[0], pad), *inputs[1:]]
                options.padding = fb.Padding.VALID
        super().operator(code, inputs, outputs, options_type, options)

    def _padded(self, x: int, pad: int) -> int:
        """``x`` (NHWC) zero-padded by ``pad`` on each side of its height and width."""
        n, h, w, c = self.tensors[x].shape
        index = len(self.tensors)
        out = super().tensor(f"padded{index}", [n, h + 2 * pad, w + 2 * pad, c])
        pads = super().tensor(f"pads{index}", [4, 2], np.array([[0, 0], [pad, pad], [pad, pad], [0, 0]], np.int32),
                              self.fb.TensorType.INT32)
        super().operator(self.fb.BuiltinOperator.PAD, [x, pads], [out])
        return out


def sparsify_initializers(model: onnx.ModelProto) -> int:
    """Move every 4-D initializer holding zeros (the convolution filters) into the graph's
    ``sparse_initializer`` in COO form; returns how many moved."""
    moved = []
    for init in model.graph.initializer:
        array = numpy_helper.to_array(init)
        if array.ndim == 4 and (array == 0).any():
            flat = array.reshape(-1)
            where = np.flatnonzero(flat).astype(np.int64)
            values = numpy_helper.from_array(flat[where].astype(array.dtype), init.name)
            indices = numpy_helper.from_array(where, f"{init.name}_indices")
            model.graph.sparse_initializer.append(onnx.helper.make_sparse_tensor(values, indices, array.shape))
            moved.append(init)
    for init in moved:
        model.graph.initializer.remove(init)
    return len(moved)


def save_form(net: Net, fmt: str, path: str | Path, *, sparse: bool = True, symmetric_padding: bool = False) -> Path:
    """Write ``net`` (its trained, BN-folded weights) in ``fmt``: with sparse weights
    (``sparse``), and for TFLite with explicit symmetric padding (``symmetric_padding``)."""
    if fmt not in FORMATS:
        raise HwadaptError(f"unknown model format {fmt!r}; expected one of {FORMATS}")
    if symmetric_padding and fmt != "tflite":
        raise HwadaptError("symmetric padding is a TFLite form (XNNPACK's sparse path needs it)")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ops, weights = lower(net.arch), folded_weights(net)
    if fmt == "onnx":
        model = ops_to_onnx(ops, weights)
        if sparse:
            sparsify_initializers(model)
        onnx.save(model, str(path))
    else:
        path.write_bytes(ops_to_tflite(ops, weights, SparseTfliteGraph(sparse, symmetric_padding)))
    return path
