"""Fused operators and the registry of their kinds.

An :class:`Op` is one kernel as ONNX Runtime and LiteRT run it: BN folded into the
convolution's weights and the activation fused, so conv+BN+act is one op. That is the
unit a network is exported as, a LUT times and the predictor prices.

Each op *kind* is one :class:`OpKind` spec, registered from its own module in this
package: its weights, its LUT axes and calibration feature, and how it runs in PyTorch,
ONNX and TFLite. Every form of a network, and its price, comes from walking one op list
through these specs, so adding a kind is adding one module.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np

from hwadapt.errors import HwadaptError
from hwadapt.registry import Registry

if TYPE_CHECKING:
    import torch

ACTIVATIONS = ("none", "relu", "relu6")
Weights = tuple[np.ndarray, ...]  # an op's arrays in PyTorch layout (weight, bias; or bounds)


class OnnxGraph(Protocol):
    """What an op kind writes its ONNX nodes with (:class:`hwadapt.materialize.onnx_export.OnnxGraph`)."""

    def name(self, index: int) -> str: ...
    def const(self, name: str, array: np.ndarray) -> str: ...
    def node(self, op_type: str, inputs: list[str], output: str, **attributes: Any) -> str: ...
    def pre_activation(self, index: int, act: str) -> str: ...
    def activate(self, index: int, pre: str, act: str) -> None: ...


class TfliteGraph(Protocol):
    """What an op kind writes its TFLite operators with
    (:class:`hwadapt.materialize.tflite_export.TfliteGraph`); ``fb`` is LiteRT's schema module."""

    fb: Any

    def nhwc(self, shape: list[int]) -> list[int]: ...
    def fused(self, act: str) -> int: ...
    def tensor(self, name: str, shape: list[int], data: np.ndarray | None = None, dtype: int | None = None) -> int: ...
    def operator(self, code: int, inputs: list[int], outputs: list[int], options_type: int = 0,
                 options: Any = None) -> None: ...


class OpKindError(HwadaptError):
    """An op kind nobody registered."""


@dataclass(frozen=True)
class Op:
    """One fused operator.

    ``inputs`` are indices of the producing ops in the lowered list (-1, -2, ... are
    network inputs). ``size`` is the input's spatial side (feature maps are square).
    """

    kind: str
    cin: int
    cout: int
    size: int
    kernel: int = 1
    stride: int = 1
    act: str = "none"
    block: int = -1
    role: str = ""
    inputs: tuple[int, ...] = ()

    @property
    def spec(self) -> OpKind:
        return op_kind(self.kind)

    @property
    def out_size(self) -> int:
        return self.spec.out_size(self)

    @property
    def shape_class(self) -> tuple[str, int, int, int, str]:
        """What fixes an op's cost apart from its channel counts."""
        return (self.kind, self.size, self.kernel, self.stride, self.act)

    @property
    def channels(self) -> tuple[int, int]:
        return (self.cin, self.cout)


def conv_out_size(size: int, stride: int) -> int:
    """Output side of a 'same'-padded window of stride ``stride``."""
    return (size + stride - 1) // stride


def same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """(before, after) zero padding of TensorFlow's SAME convention.

    PyTorch pads symmetrically; TFLite pads SAME, which puts the extra row after for
    stride 2 on even inputs. Using SAME everywhere keeps the three forms identical.
    """
    out = conv_out_size(size, stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class OpKind:
    """The spec of one op kind. Subclasses set the class attributes and override what
    differs from a single-input op producing a same-padded NCHW map."""

    name: ClassVar[str]
    # the calibration's scale groups this kind's ops fall in (how much more or less an op
    # costs inside a network than timed alone); :meth:`feature` picks an op's
    features: ClassVar[tuple[str, ...]]
    one_axis: ClassVar[bool] = False  # output channels equal input channels: the LUT measures one axis
    fixed_output: ClassVar[bool] = False  # the output width is the task's (the classifier's)
    flat_input: ClassVar[bool] = False  # reads an N x C tensor, not a feature map
    flat_output: ClassVar[bool] = False  # writes an N x C tensor
    arity: ClassVar[int] = 1  # inputs it reads

    def feature(self, op: Op) -> str:
        return self.features[0]

    # -- geometry and weights -------------------------------------------------------
    def out_size(self, op: Op) -> int:
        return 1 if self.flat_output else conv_out_size(op.size, op.stride)

    def input_shape(self, op: Op) -> list[int]:
        """NCHW shape of each input (batch 1)."""
        return [1, op.cin] if self.flat_input else [1, op.cin, op.size, op.size]

    def output_shape(self, op: Op) -> list[int]:
        return [1, op.cout] if self.flat_output else [1, op.cout, op.out_size, op.out_size]

    def weight_shapes(self, op: Op) -> tuple[tuple[int, ...], ...]:
        """The arrays the op carries, in PyTorch layout (none for weightless ops)."""
        return ()

    def random_weights(self, op: Op, rng: np.random.Generator) -> Weights | None:
        """Weights to time the op with (values do not change speed): He-scaled weight, zero bias."""
        shapes = self.weight_shapes(op)
        if not shapes:
            return None
        weight = shapes[0]
        fan_in = int(np.prod(weight[1:]))
        return (rng.standard_normal(weight).astype(np.float32) * np.float32(np.sqrt(2.0 / fan_in)),
                *(np.zeros(shape, np.float32) for shape in shapes[1:]))

    def stand_ins(self, op: Op) -> list[Op]:
        """The ops that can replace ``op`` in another export form of its layer, this kind's
        and those it needs beside it, at their widest: what a LUT measures so that the
        predictor prices that form (``hwadapt profile --forms``). None by default."""
        return []

    # -- the three forms --------------------------------------------------------------
    def torch(self, op: Op, inputs: Sequence[torch.Tensor], weights: Sequence[torch.Tensor]) -> torch.Tensor:
        """The op on NCHW tensors (batch any), with its deployed (folded) weights."""
        raise NotImplementedError

    def onnx(self, graph: OnnxGraph, index: int, op: Op, inputs: Sequence[str], weights: Weights | None) -> None:
        """Add the op's nodes; the last one writes ``graph.name(index)``."""
        raise NotImplementedError

    def tflite(self, graph: TfliteGraph, index: int, op: Op, inputs: Sequence[int], weights: Weights | None) -> int:
        """Add the op's operators (NHWC tensors); returns its output tensor."""
        raise NotImplementedError


OP_KINDS: Registry[OpKind] = Registry("op kind", OpKindError)
register_op = OP_KINDS.instance  # class decorator of an op kind's spec


def op_kind(name: str) -> OpKind:
    return OP_KINDS[name]


def torch_activation(x: torch.Tensor, act: str) -> torch.Tensor:
    import torch.nn.functional as F

    if act == "relu":
        return F.relu(x)
    if act == "relu6":
        return F.relu6(x)
    return x
