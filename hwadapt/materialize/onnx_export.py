"""Emit the lowered op list as an ONNX graph (NCHW, BN folded, activations separate).

The graph is written directly with ``onnx.helper``: building it from the op list takes
milliseconds, which matters when a LUT needs hundreds of single-layer models, and it
is the same graph whatever the PyTorch exporter version.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from hwadapt.arch.ops import Op, same_pads
from hwadapt.materialize.weights import OpWeights

OPSET = 17


def _tensor_name(index: int) -> str:
    return f"input{-index - 1}" if index < 0 else f"t{index}"


def _graph_inputs(ops: list[Op]) -> list[onnx.ValueInfoProto]:
    """One graph input per negative producer index, shaped like the consuming op's input."""
    shapes: dict[int, list[int]] = {}
    for op in ops:
        for index in op.inputs:
            if index < 0:
                shapes.setdefault(index, [1, op.cin] if op.kind == "fc" else [1, op.cin, op.size, op.size])
    return [helper.make_tensor_value_info(_tensor_name(i), TensorProto.FLOAT, shapes[i])
            for i in sorted(shapes, reverse=True)]


def _conv_nodes(i: int, op: Op, weights: tuple[np.ndarray, np.ndarray]) -> tuple[list, list]:
    w_name, b_name = f"w{i}", f"b{i}"
    before, after = same_pads(op.size, op.kernel, op.stride)
    conv_out = _tensor_name(i) if op.act == "none" else f"c{i}"
    nodes = [helper.make_node(
        "Conv", [_tensor_name(op.inputs[0]), w_name, b_name], [conv_out], name=f"conv{i}",
        kernel_shape=[op.kernel, op.kernel], strides=[op.stride, op.stride],
        pads=[before, before, after, after], group=op.cin if op.kind == "dwconv" else 1)]
    inits = [numpy_helper.from_array(weights[0], w_name), numpy_helper.from_array(weights[1], b_name)]
    if op.act == "relu":
        nodes.append(helper.make_node("Relu", [conv_out], [_tensor_name(i)], name=f"relu{i}"))
    elif op.act == "relu6":
        lo, hi = f"lo{i}", f"hi{i}"
        inits += [numpy_helper.from_array(np.array(0, np.float32), lo),
                  numpy_helper.from_array(np.array(6, np.float32), hi)]
        nodes.append(helper.make_node("Clip", [conv_out, lo, hi], [_tensor_name(i)], name=f"relu6_{i}"))
    return nodes, inits


def _op_nodes(i: int, op: Op, weights: tuple[np.ndarray, np.ndarray] | None) -> tuple[list, list]:
    ins = [_tensor_name(j) for j in op.inputs]
    out = _tensor_name(i)
    if op.kind in ("conv", "dwconv"):
        return _conv_nodes(i, op, weights)
    if op.kind == "add":
        return [helper.make_node("Add", ins, [out], name=f"add{i}")], []
    if op.kind == "pool":
        pooled = f"p{i}"
        return [helper.make_node("GlobalAveragePool", ins, [pooled], name=f"pool{i}"),
                helper.make_node("Flatten", [pooled], [out], name=f"flatten{i}", axis=1)], []
    w_name, b_name = f"w{i}", f"b{i}"
    return ([helper.make_node("Gemm", [ins[0], w_name, b_name], [out], name=f"fc{i}", transB=1)],
            [numpy_helper.from_array(weights[0], w_name), numpy_helper.from_array(weights[1], b_name)])


def ops_to_onnx(ops: list[Op], weights: OpWeights) -> onnx.ModelProto:
    """An ONNX model computing ``ops``; the last op's output is the graph output."""
    nodes, inits = [], []
    for i, (op, w) in enumerate(zip(ops, weights)):
        n, t = _op_nodes(i, op, w)
        nodes += n
        inits += t
    last = ops[-1]
    out_shape = [1, last.cout] if last.kind in ("pool", "fc") else [1, last.cout, last.out_size, last.out_size]
    output = helper.make_tensor_value_info(_tensor_name(len(ops) - 1), TensorProto.FLOAT, out_shape)
    graph = helper.make_graph(nodes, "hwadapt", _graph_inputs(ops), [output], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="hwadapt")
    model.ir_version = 8
    return model


def save_onnx(ops: list[Op], weights: OpWeights, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(ops_to_onnx(ops, weights), str(path))
    return path
