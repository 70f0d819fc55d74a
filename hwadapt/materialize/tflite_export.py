"""Emit a lowered op list as a TFLite flatbuffer (NHWC, fused activations).

The model is written with LiteRT's own flatbuffer schema classes
(``ai_edge_litert.schema_py_generated``), each op by its kind's spec
(:mod:`hwadapt.ops`), producing the fused graph the TFLite converter makes for these
networks without importing TensorFlow (seconds) or running the converter per model
(hundreds of single-layer models make up a LUT).
"""
from __future__ import annotations

from pathlib import Path

import flatbuffers
import numpy as np

from hwadapt.ops import Op, Weights


class TfliteGraph:
    """Tensors, buffers and operators of one subgraph; ``fb`` is the schema module."""

    def __init__(self) -> None:
        from ai_edge_litert import schema_py_generated

        self.fb = schema_py_generated
        self.buffers = [self.fb.BufferT()]  # buffer 0: the empty sentinel
        self.tensors: list = []
        self.operators: list = []
        self.codes: list[int] = []

    @staticmethod
    def nhwc(shape: list[int]) -> list[int]:
        """A PyTorch shape (NCHW, or N x C) in TFLite's layout."""
        return [shape[0], shape[2], shape[3], shape[1]] if len(shape) == 4 else list(shape)

    def fused(self, act: str) -> int:
        """The fused-activation code of ``act``."""
        codes = self.fb.ActivationFunctionType
        return {"none": codes.NONE, "relu": codes.RELU, "relu6": codes.RELU6}[act]

    def tensor(self, name: str, shape: list[int], data: np.ndarray | None = None, dtype: int | None = None) -> int:
        t = self.fb.TensorT()
        t.name, t.shape, t.buffer = name, list(shape), 0
        t.type = self.fb.TensorType.FLOAT32 if dtype is None else dtype
        if data is not None:
            buf = self.fb.BufferT()
            buf.data = np.frombuffer(np.ascontiguousarray(data).tobytes(), np.uint8)
            self.buffers.append(buf)
            t.buffer = len(self.buffers) - 1
        self.tensors.append(t)
        return len(self.tensors) - 1

    def operator(self, code: int, inputs: list[int], outputs: list[int], options_type: int = 0, options=None) -> None:
        if code not in self.codes:
            self.codes.append(code)
        op = self.fb.OperatorT()
        op.opcodeIndex, op.inputs, op.outputs = self.codes.index(code), inputs, outputs
        op.builtinOptionsType, op.builtinOptions = options_type, options
        self.operators.append(op)

    def model(self, inputs: list[int], outputs: list[int]) -> bytes:
        fb = self.fb
        sub = fb.SubGraphT()
        sub.tensors, sub.inputs, sub.outputs, sub.operators = self.tensors, inputs, outputs, self.operators
        sub.name = "main"
        model = fb.ModelT()
        model.version, model.description = 3, "hwadapt"
        model.subgraphs, model.buffers = [sub], self.buffers
        model.operatorCodes = []
        for code in self.codes:
            oc = fb.OperatorCodeT()
            oc.builtinCode, oc.deprecatedBuiltinCode, oc.version = code, min(code, 127), 1
            model.operatorCodes.append(oc)
        builder = flatbuffers.Builder(1024)
        builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
        return bytes(builder.Output())


def ops_to_tflite(ops: list[Op], weights: list[Weights | None], graph: TfliteGraph | None = None) -> bytes:
    """A TFLite flatbuffer computing ``ops`` (graph inputs are NHWC), written into ``graph``
    (a fresh :class:`TfliteGraph` if None; a subclass may store tensors otherwise, e.g.
    sparse: :mod:`hwadapt.lottery.sparse_export`)."""
    graph = graph or TfliteGraph()
    produced: dict[int, int] = {}
    for op in ops:
        for index in op.inputs:
            if index < 0 and index not in produced:
                produced[index] = graph.tensor(f"input{-index - 1}", graph.nhwc(op.spec.input_shape(op)))
    graph_inputs = [produced[k] for k in sorted(produced, reverse=True)]
    for i, (op, w) in enumerate(zip(ops, weights)):
        produced[i] = op.spec.tflite(graph, i, op, [produced[j] for j in op.inputs], w)
    return graph.model(graph_inputs, [produced[len(ops) - 1]])


def save_tflite(ops: list[Op], weights: list[Weights | None], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(ops_to_tflite(ops, weights))
    return path
