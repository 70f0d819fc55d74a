"""Emit the lowered op list as a TFLite flatbuffer (NHWC, fused activations).

The model is written with LiteRT's own flatbuffer schema classes
(``ai_edge_litert.schema_py_generated``), producing the fused CONV_2D /
DEPTHWISE_CONV_2D / ADD / MEAN / FULLY_CONNECTED graph the TFLite converter makes for
these networks, without importing TensorFlow (seconds) or running the converter per
model (hundreds of single-layer models make up a LUT).
"""
from __future__ import annotations

from pathlib import Path

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as fb

from hwadapt.arch.ops import Op
from hwadapt.materialize.weights import OpWeights

_ACT = {"none": fb.ActivationFunctionType.NONE, "relu": fb.ActivationFunctionType.RELU,
        "relu6": fb.ActivationFunctionType.RELU6}


class _Builder:
    """Accumulates tensors, buffers and operators of one subgraph."""

    def __init__(self) -> None:
        self.buffers: list[fb.BufferT] = [fb.BufferT()]  # buffer 0: the empty sentinel
        self.tensors: list[fb.TensorT] = []
        self.operators: list[fb.OperatorT] = []
        self.codes: list[int] = []

    def tensor(self, name: str, shape: list[int], data: np.ndarray | None = None,
               dtype: int = fb.TensorType.FLOAT32) -> int:
        t = fb.TensorT()
        t.name, t.shape, t.type, t.buffer = name, shape, dtype, 0
        if data is not None:
            buf = fb.BufferT()
            buf.data = np.frombuffer(np.ascontiguousarray(data).tobytes(), np.uint8)
            self.buffers.append(buf)
            t.buffer = len(self.buffers) - 1
        self.tensors.append(t)
        return len(self.tensors) - 1

    def operator(self, code: int, inputs: list[int], outputs: list[int], options_type: int = 0,
                 options=None) -> None:
        if code not in self.codes:
            self.codes.append(code)
        op = fb.OperatorT()
        op.opcodeIndex, op.inputs, op.outputs = self.codes.index(code), inputs, outputs
        op.builtinOptionsType, op.builtinOptions = options_type, options
        self.operators.append(op)

    def model(self, inputs: list[int], outputs: list[int]) -> bytes:
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


def _shape(op: Op, side: int, channels: int) -> list[int]:
    return [1, side, side, channels]


def _conv(b: _Builder, i: int, op: Op, x: int, w: tuple[np.ndarray, np.ndarray]) -> int:
    weight, bias = w
    out = b.tensor(f"t{i}", _shape(op, op.out_size, op.cout))
    if op.kind == "conv":
        filt = b.tensor(f"w{i}", [op.cout, op.kernel, op.kernel, op.cin], weight.transpose(0, 2, 3, 1))
        opts = fb.Conv2DOptionsT()
        code, opt_type = fb.BuiltinOperator.CONV_2D, fb.BuiltinOptions.Conv2DOptions
    else:
        filt = b.tensor(f"w{i}", [1, op.kernel, op.kernel, op.cout], weight.transpose(1, 2, 3, 0))
        opts = fb.DepthwiseConv2DOptionsT()
        opts.depthMultiplier = 1
        code, opt_type = fb.BuiltinOperator.DEPTHWISE_CONV_2D, fb.BuiltinOptions.DepthwiseConv2DOptions
    opts.padding, opts.strideH, opts.strideW = fb.Padding.SAME, op.stride, op.stride
    opts.dilationHFactor = opts.dilationWFactor = 1
    opts.fusedActivationFunction = _ACT[op.act]
    bias_t = b.tensor(f"b{i}", [op.cout], bias)
    b.operator(code, [x, filt, bias_t], [out], opt_type, opts)
    return out


def _emit(b: _Builder, i: int, op: Op, ins: list[int], w) -> int:
    if op.kind in ("conv", "dwconv"):
        return _conv(b, i, op, ins[0], w)
    if op.kind == "add":
        out = b.tensor(f"t{i}", _shape(op, op.size, op.cout))
        opts = fb.AddOptionsT()
        opts.fusedActivationFunction = fb.ActivationFunctionType.NONE
        b.operator(fb.BuiltinOperator.ADD, ins, [out], fb.BuiltinOptions.AddOptions, opts)
        return out
    if op.kind == "pool":
        out = b.tensor(f"t{i}", [1, op.cout])
        axes = b.tensor(f"axes{i}", [2], np.array([1, 2], np.int32), fb.TensorType.INT32)
        opts = fb.ReducerOptionsT()
        opts.keepDims = False
        b.operator(fb.BuiltinOperator.MEAN, [ins[0], axes], [out], fb.BuiltinOptions.ReducerOptions, opts)
        return out
    weight, bias = w
    out = b.tensor(f"t{i}", [1, op.cout])
    wt = b.tensor(f"w{i}", [op.cout, op.cin], weight)
    bt = b.tensor(f"b{i}", [op.cout], bias)
    opts = fb.FullyConnectedOptionsT()
    opts.fusedActivationFunction = fb.ActivationFunctionType.NONE
    b.operator(fb.BuiltinOperator.FULLY_CONNECTED, [ins[0], wt, bt], [out],
               fb.BuiltinOptions.FullyConnectedOptions, opts)
    return out


def ops_to_tflite(ops: list[Op], weights: OpWeights) -> bytes:
    """A TFLite flatbuffer computing ``ops`` (graph inputs are NHWC)."""
    b = _Builder()
    produced: dict[int, int] = {}
    for op in ops:
        for index in op.inputs:
            if index < 0 and index not in produced:
                shape = [1, op.cin] if op.kind == "fc" else _shape(op, op.size, op.cin)
                produced[index] = b.tensor(f"input{-index - 1}", shape)
    graph_inputs = [produced[k] for k in sorted(produced, reverse=True)]
    for i, (op, w) in enumerate(zip(ops, weights)):
        produced[i] = _emit(b, i, op, [produced[j] for j in op.inputs], w)
    return b.model(graph_inputs, [produced[len(ops) - 1]])


def save_tflite(ops: list[Op], weights: OpWeights, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(ops_to_tflite(ops, weights))
    return path
