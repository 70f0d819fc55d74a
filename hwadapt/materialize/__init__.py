"""Materialisers: one :class:`~hwadapt.arch.Arch`, every form (PyTorch, ONNX, TFLite)."""
from __future__ import annotations

from pathlib import Path

from hwadapt.arch.lowering import lower
from hwadapt.arch.spec import Arch
from hwadapt.errors import HwadaptError
from hwadapt.materialize.weights import OpWeights, arch_weights
from hwadapt.ops import Op

FORMATS = ("onnx", "tflite")


def save_ops(ops: list[Op], weights: OpWeights, fmt: str, path: str | Path) -> Path:
    """Write an op list in ``fmt`` ("onnx" or "tflite")."""
    if fmt == "onnx":
        from hwadapt.materialize.onnx_export import save_onnx

        return save_onnx(ops, weights, path)
    if fmt == "tflite":
        from hwadapt.materialize.tflite_export import save_tflite

        return save_tflite(ops, weights, path)
    raise HwadaptError(f"unknown model format {fmt!r}; expected one of {FORMATS}")


def export(arch: Arch, fmt: str, path: str | Path, net=None, seed: int = 0) -> Path:
    """Write ``arch`` in ``fmt`` with the trained weights of ``net`` (random if None)."""
    return save_ops(lower(arch), arch_weights(arch, net, seed), fmt, path)
