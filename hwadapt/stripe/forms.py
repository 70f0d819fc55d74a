"""The forms a stripe-wise pruned network is exported in, layer by layer.

A pruned k x k convolution computes the same in each of:

- ``dense``: the convolution as it was, its dead stripes zero (what every runtime runs,
  at the dense network's cost);
- ``kernel``: a ``kconv`` of the smallest window holding every live position, where whole
  rows or columns of the window are dead in every filter;
- ``stripe``: a 1x1 ``conv`` to one map per live stripe (at the input side), then the
  ``stripes`` op gathering, shifting and adding them (:mod:`hwadapt.ops.stripes`), the
  authors' form;
- ``tapsum``: a 1x1 ``conv`` to each filter's live taps, as many per filter as the filter
  with the most, then a grouped convolution with one-hot kernels shifting and adding
  them (:mod:`hwadapt.ops.tapsum`): two ops a runtime has fast kernels for, no gather.

A network form picks one per layer (``best``: the one the LUT prices lowest). A residual
block whose second convolution lost every stripe computes its identity shortcut plus that
convolution's bias: the forms other than ``dense`` drop the block's two convolutions and
keep that identity path (:func:`bypass`).

Each form is a function that emits its ops (as :func:`hwadapt.arch.lower` does) reading
the layer's input, so a network form is the lowered list with some layers emitted
otherwise (:func:`assemble`) and a layer's form alone is a model of its own
(:func:`standalone`).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch

from hwadapt.arch.lowering import lower
from hwadapt.materialize.torch_net import Net
from hwadapt.materialize.weights import OpWeights, folded_weights
from hwadapt.ops import Op, Weights
from hwadapt.ops.kconv import frame_pads, window_code, window_shape
from hwadapt.stripe.skeleton import unit_name

FORMS = ("dense", "kernel", "stripe", "tapsum")  # a layer's forms; a network's are these and "best"
Emit = Callable[[Op, Weights | None], int]
LayerForm = Callable[[Emit, tuple[int, ...]], int | None]  # emits a layer's ops reading the inputs; its output


@dataclass(frozen=True)
class Layer:
    """One pruned convolution: its index in ``lower(arch)``, its op and deployed weights, and
    which stripes live (filters x k x k)."""

    index: int
    name: str
    op: Op
    weights: Weights
    alive: np.ndarray

    @property
    def stripes(self) -> int:
        return int(self.alive.sum())

    @property
    def total(self) -> int:
        return int(self.alive.size)

    def window(self) -> tuple[int, int, int, int]:
        """(first row, first column, rows, columns) of the smallest window holding every
        live position of any filter."""
        taps = self.alive.any(axis=0)
        rows, cols = np.flatnonzero(taps.any(axis=1)), np.flatnonzero(taps.any(axis=0))
        return int(rows[0]), int(cols[0]), int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)


def pruned_layers(net: Net, alive: dict[str, torch.Tensor]) -> list[Layer]:
    """The pruned convolutions of a folded network (:func:`hwadapt.stripe.skeleton.folded`)
    with their masks (:func:`hwadapt.stripe.skeleton.alive_masks`)."""
    weights = folded_weights(net)
    return [Layer(i, unit_name(op.block, op.role), op, weights[i], alive[unit_name(op.block, op.role)].numpy())
            for i, op in enumerate(lower(net.arch)) if unit_name(op.block, op.role) in alive]


def dense(layer: Layer) -> LayerForm:
    return lambda emit, x: emit(replace(layer.op, inputs=x), layer.weights)


def kernel(layer: Layer) -> LayerForm | None:
    """The ``kconv`` of the live window; None where every row and column holds a live stripe."""
    op, (weight, bias) = layer.op, layer.weights
    row, col, rows, cols = layer.window()
    if (rows, cols) == (op.kernel, op.kernel):
        return None
    cut = (np.ascontiguousarray(weight[:, :, row:row + rows, col:col + cols]), bias,
           frame_pads(op.size, op.kernel, op.stride, row, col, rows, cols))
    return lambda emit, x: emit(replace(op, kind="kconv", kernel=window_code(rows, cols), inputs=x), cut)


def stripe(layer: Layer) -> LayerForm:
    """One 1x1 map per live stripe, numbered tap by tap, then the ``stripes`` op."""
    op, (weight, bias) = layer.op, layer.weights
    taps = op.kernel ** 2
    tap, filt = np.nonzero(layer.alive.reshape(op.cout, taps).T)  # tap-major
    maps = weight.reshape(op.cout, op.cin, taps)[filt, :, tap]  # (stripes, cin)
    gather = np.full((taps, op.cout), len(tap), np.int64)
    gather[tap, filt] = np.arange(len(tap))
    pointwise = Op("conv", op.cin, len(tap), op.size, 1, 1, "none", op.block, op.role)
    summed = Op("stripes", len(tap), op.cout, op.size, op.kernel, op.stride, op.act, op.block, op.role)

    def emit_stripes(emit: Emit, x: tuple[int, ...]) -> int:
        m = emit(replace(pointwise, inputs=x), (maps[:, :, None, None].astype(np.float32),
                                                np.zeros(len(tap), np.float32)))
        return emit(replace(summed, inputs=(m,)), (gather, bias))

    return emit_stripes


def tapsum(layer: Layer) -> LayerForm:
    """Each filter's live taps as maps of a 1x1 convolution (as many slots per filter as
    the filter with the most; zero maps fill the others), then the grouped ``tapsum``
    convolution whose one-hot kernels add each map at its tap."""
    op, (weight, bias) = layer.op, layer.weights
    taps = op.kernel ** 2
    live = layer.alive.reshape(op.cout, taps)
    slots = int(live.sum(axis=1).max())
    maps = np.zeros((op.cout, slots, op.cin), np.float32)
    kernels = np.zeros((op.cout, slots, taps), np.float32)
    for o in range(op.cout):
        for slot, tap in enumerate(np.flatnonzero(live[o])):
            maps[o, slot] = weight[o, :, tap // op.kernel, tap % op.kernel]
            kernels[o, slot, tap] = 1.0
    pointwise = Op("conv", op.cin, op.cout * slots, op.size, 1, 1, "none", op.block, op.role)
    shifted = Op("tapsum", slots, op.cout, op.size, op.kernel, op.stride, op.act, op.block, op.role)

    def emit_tapsum(emit: Emit, x: tuple[int, ...]) -> int:
        m = emit(replace(pointwise, inputs=x), (maps.reshape(-1, op.cin, 1, 1), np.zeros(op.cout * slots, np.float32)))
        return emit(replace(shifted, inputs=(m,)), (kernels.reshape(op.cout, slots, op.kernel, op.kernel), bias))

    return emit_tapsum


def layer_forms(layer: Layer) -> dict[str, LayerForm]:
    """The forms a layer can take (``kernel`` only where its window shrinks)."""
    forms = {"dense": dense(layer), "kernel": kernel(layer), "stripe": stripe(layer), "tapsum": tapsum(layer)}
    return {name: form for name, form in forms.items() if form is not None}


def bypass(ops: list[Op], weights: OpWeights, layer: Layer) -> dict[int, LayerForm]:
    """The forms that drop a residual block whose second convolution (``layer``) lost
    every stripe: that convolution outputs its bias alone, so the block computes
    act(input + bias) through its identity shortcut. The bias comes from a 1x1
    convolution of zeros (an op every stripe table prices, unlike a bias-only one)."""
    members = {op.role: i for i, op in enumerate(ops) if op.block == layer.op.block}
    add = ops[members["add"]]
    constant = Op("conv", add.cout, add.cout, add.size, 1, 1, "none", add.block, layer.op.role)
    zeros = np.zeros((add.cout, add.cout, 1, 1), np.float32)

    def emit_sum(emit: Emit, x: tuple[int, ...]) -> int:
        bias = emit(replace(constant, inputs=(x[1],)), (zeros, layer.weights[1]))
        return emit(replace(add, inputs=(bias, x[1])), None)

    return {members["conv1"]: _dropped, layer.index: _dropped, members["add"]: emit_sum}


def _dropped(emit: Emit, x: tuple[int, ...]) -> None:
    return None


def assemble(ops: list[Op], weights: OpWeights, forms: dict[int, LayerForm]) -> tuple[list[Op], OpWeights]:
    """``ops`` with the ops of ``forms`` (by index) emitted in their place."""
    out_ops: list[Op] = []
    out_weights: OpWeights = []
    where: dict[int, int | None] = {}

    def emit(op: Op, w: Weights | None) -> int:
        out_ops.append(op)
        out_weights.append(w)
        return len(out_ops) - 1

    for i, (op, w) in enumerate(zip(ops, weights)):
        x = tuple(where[j] if j >= 0 else j for j in op.inputs)
        where[i] = forms[i](emit, x) if i in forms else emit(replace(op, inputs=x), w)
    return out_ops, out_weights


def network_form(ops: list[Op], weights: OpWeights, layers: list[Layer],
                 pick: Callable[[Layer], str]) -> tuple[list[Op], OpWeights]:
    """The network with each live layer in the form ``pick`` names (its dense form where
    that one does not apply) and each dead one bypassed."""
    forms: dict[int, LayerForm] = {}
    for layer in layers:
        if layer.stripes:
            options = layer_forms(layer)
            forms[layer.index] = options.get(pick(layer), options["dense"])
    for layer in layers:
        if not layer.stripes:
            forms.update(bypass(ops, weights, layer))
    return assemble(ops, weights, forms)


def standalone(layer: Layer, form: str) -> tuple[list[Op], OpWeights]:
    """A layer's form as a model of its own, reading the network input."""
    ops, weights = assemble([replace(layer.op, inputs=(-1,))], [layer.weights], {0: layer_forms(layer)[form]})
    return ops, weights


def macs(op: Op) -> int:
    """Multiply-accumulates of an op (convolutions and the classifier; 0 for the rest)."""
    if op.kind in ("conv", "dwconv"):
        groups = op.cin if op.kind == "dwconv" else 1
        return op.cout * op.cin // groups * op.kernel ** 2 * op.out_size ** 2
    if op.kind == "kconv":
        rows, cols = window_shape(op)
        return op.cout * op.cin * rows * cols * op.out_size ** 2
    return op.cin * op.cout if op.kind == "fc" else 0


def pruned_macs(ops: list[Op], layers: list[Layer]) -> int:
    """The network's multiply-accumulates with each pruned layer computing only its live
    stripes at its output side (the count the paper reports)."""
    saved = sum((layer.total - layer.stripes) * layer.op.cin * layer.op.out_size ** 2 for layer in layers)
    return sum(map(macs, ops)) - saved
