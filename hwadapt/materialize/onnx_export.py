"""Emit a lowered op list as an ONNX graph (NCHW, BN folded).

The graph is written directly with ``onnx.helper``, each op by its kind's spec
(:mod:`hwadapt.ops`): building it from the op list takes milliseconds, which matters
when a LUT needs hundreds of single-layer models, and it is the same graph whatever
the PyTorch exporter version.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from hwadapt.ops import Op, Weights

OPSET = 17


class OnnxGraph:
    """Nodes and initializers of one graph; op ``i`` writes the tensor ``name(i)``."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []

    @staticmethod
    def name(index: int) -> str:
        return f"input{-index - 1}" if index < 0 else f"t{index}"

    def const(self, name: str, array: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def node(self, op_type: str, inputs: list[str], output: str, **attributes: Any) -> str:
        self.nodes.append(helper.make_node(op_type, inputs, [output], name=f"{op_type}_{output}", **attributes))
        return output

    def pre_activation(self, index: int, act: str) -> str:
        """Where op ``index``'s main node writes: its output, or a tensor its activation reads."""
        return self.name(index) if act == "none" else f"pre{index}"

    def activate(self, index: int, pre: str, act: str) -> None:
        """Op ``index``'s activation node, from ``pre`` to its output (none for ``"none"``)."""
        if act == "relu":
            self.node("Relu", [pre], self.name(index))
        elif act == "relu6":
            lo = self.const(f"lo{index}", np.array(0, np.float32))
            hi = self.const(f"hi{index}", np.array(6, np.float32))
            self.node("Clip", [pre, lo, hi], self.name(index))


def _graph_inputs(ops: list[Op]) -> list[onnx.ValueInfoProto]:
    """One graph input per negative producer index, shaped like the consuming op's input."""
    shapes: dict[int, list[int]] = {}
    for op in ops:
        for index in op.inputs:
            if index < 0:
                shapes.setdefault(index, op.spec.input_shape(op))
    return [helper.make_tensor_value_info(OnnxGraph.name(i), TensorProto.FLOAT, shapes[i])
            for i in sorted(shapes, reverse=True)]


def ops_to_onnx(ops: list[Op], weights: list[Weights | None]) -> onnx.ModelProto:
    """An ONNX model computing ``ops``; the last op's output is the graph output."""
    graph = OnnxGraph()
    for i, (op, w) in enumerate(zip(ops, weights)):
        op.spec.onnx(graph, i, op, [graph.name(j) for j in op.inputs], w)
    last = ops[-1]
    output = helper.make_tensor_value_info(graph.name(len(ops) - 1), TensorProto.FLOAT, last.spec.output_shape(last))
    model = helper.make_model(helper.make_graph(graph.nodes, "hwadapt", _graph_inputs(ops), [output],
                                                graph.initializers),
                              opset_imports=[helper.make_opsetid("", OPSET)], producer_name="hwadapt")
    model.ir_version = 8
    return model


def save_onnx(ops: list[Op], weights: list[Weights | None], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(ops_to_onnx(ops, weights), str(path))
    return path
