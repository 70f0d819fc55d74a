"""The registries, each test parametrised over what is registered: every op kind computes
the same in its PyTorch, ONNX and TFLite forms; every family's networks export to forms
that agree within 1e-4 and cover every block kind; unknown names are one-line errors
listing the known ones."""
import numpy as np
import onnxruntime as ort
import pytest
import torch
from conftest import trained_like

from hwadapt.arch import Arch, lower
from hwadapt.blocks import BLOCK_KINDS
from hwadapt.errors import ArchError
from hwadapt.families import FAMILIES, build, get_family
from hwadapt.materialize.onnx_export import ops_to_onnx
from hwadapt.materialize.op_graph import OpGraph
from hwadapt.materialize.tflite_export import ops_to_tflite
from hwadapt.materialize.weights import folded_weights, random_weights
from hwadapt.ops import OP_KINDS, Op, OpKindError, op_kind
from hwadapt.ops.kconv import window_code

# one op of each kind, at a shape that exercises SAME padding; a kind registered without one fails
EXAMPLES = {
    "conv": Op("conv", 8, 16, 9, 3, 2, "relu6", inputs=(-1,)),
    "dwconv": Op("dwconv", 16, 16, 10, 5, 2, "relu", inputs=(-1,)),
    "add": Op("add", 8, 8, 6, act="relu", inputs=(-1, -2)),
    "pool": Op("pool", 24, 24, 5, inputs=(-1,)),
    "fc": Op("fc", 24, 10, 1, inputs=(-1,)),
    "maxpool": Op("maxpool", 8, 8, 9, 3, 2, inputs=(-1,)),
    "clip": Op("clip", 12, 12, 5, act="relu6", inputs=(-1,)),
    "kconv": Op("kconv", 8, 12, 9, window_code(3, 2), 2, "relu", inputs=(-1,)),
    "stripes": Op("stripes", 40, 6, 9, 3, 2, "relu6", inputs=(-1,)),
    "tapsum": Op("tapsum", 3, 8, 9, 3, 2, "relu", inputs=(-1,)),
}
BIASED = ("conv", "dwconv", "fc", "kconv", "stripes", "tapsum")  # kinds whose second array is a bias
RESOLUTIONS = {"proxyless": 32}  # families checked at another input side than 33


def _run_onnx(ops, weights, inputs):
    session = ort.InferenceSession(ops_to_onnx(ops, weights).SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {f"input{k}": x.numpy() for k, x in enumerate(inputs)})[0]


def _run_tflite(ops, weights, inputs):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=ops_to_tflite(ops, weights))
    interpreter.allocate_tensors()
    for detail, x in zip(interpreter.get_input_details(), inputs):
        array = x.numpy()
        interpreter.set_tensor(detail["index"], array.transpose(0, 2, 3, 1).copy() if array.ndim == 4 else array)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def _nhwc_to_nchw(array):
    return array.transpose(0, 3, 1, 2) if array.ndim == 4 else array


def test_every_op_kind_has_an_example():
    assert set(OP_KINDS) <= set(EXAMPLES)


@pytest.mark.parametrize("kind", sorted(OP_KINDS))
def test_op_kind_agrees_in_every_form(kind):
    op = EXAMPLES[kind]
    weights = random_weights([op], seed=1)
    if kind in BIASED:  # a bias that is not zero, so that it is checked too
        weights[0] = (weights[0][0], np.linspace(-0.5, 0.5, op.cout, dtype=np.float32), *weights[0][2:])
    torch.manual_seed(0)
    inputs = [torch.randn(op.spec.input_shape(op)) for _ in op.inputs]
    with torch.no_grad():
        expected = OpGraph([op], weights)(*inputs).numpy()
    assert list(expected.shape) == op.spec.output_shape(op)
    np.testing.assert_allclose(_run_onnx([op], weights, inputs), expected, atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(_nhwc_to_nchw(_run_tflite([op], weights, inputs)), expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_family_exports_agree_within_1e4(family):
    """A random member of the family (its base at another input side than its own) in
    PyTorch (trainable and deployed forms), ONNX Runtime and LiteRT."""
    resolution = RESOLUTIONS.get(family, 33)
    space = get_family(family).space
    arch = space.sample(resolution, 10, np.random.default_rng(1))
    net = trained_like(arch)
    x = torch.randn(1, 3, resolution, resolution)
    with torch.no_grad():
        expected = net(x).numpy()
        deployed = OpGraph(lower(arch), folded_weights(net))(x).numpy()
    scale = max(1.0, float(np.abs(expected).max()))
    ops, weights = lower(arch), folded_weights(net)
    for got in (deployed, _run_onnx(ops, weights, [x]), _run_tflite(ops, weights, [x])):
        assert np.abs(got - expected).max() <= 1e-4 * scale


def test_the_families_reach_every_block_kind():
    """Each block kind is exercised by the family agreement test above: some family's
    space holds it (skip is a searchable choice of the proxyless space, in no base network)."""
    rng = np.random.default_rng(0)
    used = {block.kind for name in FAMILIES for _ in range(8)
            for block in get_family(name).space.sample(RESOLUTIONS.get(name, 33), 10, rng).blocks}
    assert set(BLOCK_KINDS) <= used


def test_unknown_names_are_errors_listing_the_known_ones():
    with pytest.raises(OpKindError, match="unknown op kind 'winograd'; known: add, clip, conv"):
        op_kind("winograd")
    with pytest.raises(ArchError, match="unknown family 'resnet9000'; known: .*mobilenet_v1"):
        build("resnet9000")
    with pytest.raises(ArchError, match="unknown kind 'warp'; known: basic, conv"):
        Arch.from_dict({"family": "x", "resolution": 8, "num_classes": 2, "blocks": [{"kind": "warp", "out": 8}]})
