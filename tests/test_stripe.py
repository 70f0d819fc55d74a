"""Stripe-wise pruning: the skeleton's L1 and threshold (dead stripes stay dead), every
export form computing what the masked network computes in PyTorch, ONNX Runtime and
LiteRT, a layer losing every stripe (its identity path kept, or a refusal naming it),
the LUT pricing each form and the export picking the cheapest per layer, and the
command's report and one-line errors."""
import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import trained_like
from test_registries import _nhwc_to_nchw, _run_onnx, _run_tflite
from typer.testing import CliRunner

from hwadapt.arch import lower
from hwadapt.cli.main import app
from hwadapt.families import build
from hwadapt.lut.lookup import OpLookup
from hwadapt.lut.predictor import LatencyPredictor
from hwadapt.lut.profile import check_forms, op_row_key
from hwadapt.lut.space import grid_settings, shape_classes
from hwadapt.lut.store import LutError, LutMeta, save_lut
from hwadapt.materialize.op_graph import OpGraph
from hwadapt.materialize.weights import folded_weights
from hwadapt.measure import default_probe
from hwadapt.stripe.forms import FORMS, layer_forms, network_form, pruned_layers, standalone
from hwadapt.stripe.skeleton import SkeletonSettings, StripeError, alive_masks, attach, folded, skeletons
from hwadapt.stripe.workflow import STRIPE_FORMS, cheapest_forms, network_forms

runner = CliRunner()


def skeleton_net(family="resnet20", width=0.25, resolution=16, sr=0.0, threshold=0.0):
    return attach(trained_like(build(family, width=width, resolution=resolution, num_classes=10)),
                  SkeletonSettings(sr, threshold))


def test_l1_is_added_to_the_skeletons_gradient_and_dead_stripes_stay_dead():
    torch.manual_seed(0)
    x, y = torch.randn(4, 3, 16, 16), torch.tensor([0, 1, 2, 3])
    plain, pulled = skeleton_net(), skeleton_net(sr=0.1, threshold=0.5)
    pulled.load_state_dict(plain.state_dict())
    grads = []
    for net in (plain, pulled):
        net.train()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        grads.append(skeletons(net)["blocks.1.conv1"].scale.grad.clone())
    assert torch.allclose(grads[1], grads[0] + 0.1)  # sr * sign(scale), every scale at 1

    stem = skeletons(pulled)["blocks.0.conv"]
    with torch.no_grad():
        stem.scale[0, 0, 0] = 0.2  # below the threshold: dies at the next training forward
    optimizer = torch.optim.SGD(pulled.parameters(), lr=0.01, momentum=0.9)
    for _ in range(3):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(pulled(x), y).backward()
        assert stem.scale.grad[0, 0, 0] == 0 and not stem.alive[0, 0, 0]
        optimizer.step()
        with torch.no_grad():
            stem.scale[0, 0, 0] = 5.0  # whatever the stored value becomes, the stripe stays dead
    assert alive_masks(pulled)["blocks.0.conv"].sum() == stem.alive.numel() - 1
    assert (folded(pulled).blocks[0].conv.conv.weight[0, :, 0, 0] == 0).all()
    pulled.eval()
    with torch.no_grad():
        stem.scale[1] = 0.0
        pulled(x)  # evaluation never applies the threshold
    assert stem.alive[1].all()


def test_a_threshold_killing_a_whole_layer_refuses_naming_it_unless_it_has_an_identity_path():
    net = skeleton_net(threshold=0.5).train()
    with torch.no_grad():
        skeletons(net)["blocks.2.conv2"].scale.zero_()  # a residual block's second convolution: may die
        net(torch.randn(1, 3, 16, 16))
        assert not skeletons(net)["blocks.2.conv2"].alive.any()
        skeletons(net)["blocks.2.conv1"].scale.zero_()
        with pytest.raises(StripeError, match=r"blocks\.2\.conv1: --threshold 0\.5 would kill all 72 stripes.*no "
                                              r"identity path"):
            net(torch.randn(1, 3, 16, 16))


def masked(family, width, resolution, seed=0):
    """A skeleton network with stripes killed in every pattern the forms meet: random
    stripes, whole rows and columns (smaller windows, some needing the input cropped), a
    single live position, and residual blocks' second convolutions dead (identity and
    projection shortcuts)."""
    net, rng = skeleton_net(family, width, resolution), np.random.default_rng(seed)
    for k, (name, skeleton) in enumerate(skeletons(net).items()):
        alive = rng.random(tuple(skeleton.alive.shape)) < 0.4
        alive[0, 1, 1] = True
        if k % 4 == 1:
            alive[:, 0, :] = alive[:, :, 0] = False  # the window's bottom-right 2x2: the input cropped
        if k % 4 == 2:
            alive[:] = False
            alive[:, 2, 2] = rng.random(len(alive)) < 0.7  # one corner: a shifted 1x1
            alive[0, 2, 2] = True
        if name in ("blocks.2.conv2", "blocks.8.conv2"):
            alive[:] = False
        skeleton.alive.copy_(torch.from_numpy(alive))
    return net.eval()


@pytest.mark.parametrize("family,width,resolution", [("resnet20", 0.25, 16), ("vgg16", 0.125, 32)])
def test_every_export_form_agrees_with_the_masked_network_within_1e4(family, width, resolution):
    net = masked(family, width, resolution)
    plain = folded(net)
    layers = pruned_layers(plain, alive_masks(net))
    ops, weights = lower(plain.arch), folded_weights(plain)
    x = torch.randn(1, 3, resolution, resolution)
    with torch.no_grad():
        expected = net(x).numpy()
    scale = max(1.0, float(np.abs(expected).max()))
    kinds = set()
    for form in FORMS:
        form_ops, form_weights = network_form(ops, weights, layers, lambda layer, form=form: form)
        kinds |= {op.kind for op in form_ops}
        with torch.no_grad():
            got = [OpGraph(form_ops, form_weights)(x).numpy(), _run_onnx(form_ops, form_weights, [x]),
                   _run_tflite(form_ops, form_weights, [x])]
        assert max(np.abs(g - expected).max() for g in got) <= 1e-4 * scale, form
    assert {"kconv", "stripes", "tapsum"} <= kinds
    if family == "resnet20":  # two blocks bypassed: two convolutions each dropped, a 1x1 of zeros added
        assert len(network_form(ops, weights, layers, lambda layer: "dense")[0]) == len(ops) - 2
    for layer in [layer for layer in layers if layer.stripes][:4]:  # each layer's forms alone, too
        xi = torch.randn(1, layer.op.cin, layer.op.size, layer.op.size)
        with torch.no_grad():
            reference = OpGraph(*standalone(layer, "dense"))(xi).numpy()
        for form in layer_forms(layer):
            alone = standalone(layer, form)
            assert np.abs(_run_onnx(*alone, [xi]) - reference).max() <= 1e-4
            assert np.abs(_nhwc_to_nchw(_run_tflite(*alone, [xi])) - reference).max() <= 1e-4


def synthetic_predictor(family, resolution, ms_of):
    """A LUT with the stand-ins of the stripe forms whose rows cost ``ms_of(op)``."""
    grid = grid_settings(family)
    forms = sorted({"kconv", "stripes", "tapsum"})
    rows = [{**op_row_key(op), "ms": ms_of(op)} for cls in shape_classes(family, resolution, 10, grid, forms)
            for op in cls.ops()]
    meta = LutMeta(family, resolution, 10, "synthetic", {}, {}, grid=grid, forms=forms)
    return LatencyPredictor(meta, OpLookup(pd.DataFrame(rows), meta.periods))


def test_the_lut_prices_every_form_and_the_export_picks_the_cheapest_per_layer():
    """On a table where a 1x1 map costs little and gathering much, the tapsum form wins
    where it applies; where a window shrinks, kconv (priced by its taps) beats the dense
    convolution."""
    def ms_of(op):
        taps = {"conv": op.kernel ** 2, "kconv": (op.kernel // 10) * (op.kernel % 10)}.get(op.kind, 1)
        return 1e-4 * op.cin * op.cout * taps + (5.0 if op.kind == "stripes" else 0.0)

    net = masked("resnet20", 0.25, 16)
    plain = folded(net)
    layers = pruned_layers(plain, alive_masks(net))
    ops = lower(plain.arch)
    predictor = synthetic_predictor("resnet20", 16, ms_of)
    assert set(STRIPE_FORMS) <= set(predictor.meta.forms)
    choices = cheapest_forms(predictor, layers, ops)
    assert set(choices) == {layer.name for layer in layers if layer.stripes} and "stripe" not in choices.values()
    assert "kernel" in choices.values()
    forms = network_forms(ops, folded_weights(plain), layers, {"synthetic": choices})
    prices = {name: predictor.price(graph[0]).total_ms for name, graph in forms.items()}
    assert prices["best-synthetic"] <= min(prices[form] for form in FORMS) + 1e-9


def error_line(result) -> str:
    """The command's one error line (it failed, with no traceback)."""
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert result.exit_code == 1 and len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]


def test_cli_reports_every_form_and_refuses_in_one_line(tmp_path):
    """With a (synthetic) ONNX Runtime LUT: each form priced, the LUT's best form made and
    measured beside the others on the LUT's backend."""
    predictor = synthetic_predictor("resnet20", 16, lambda op: 1e-4 * op.cin * op.cout)
    meta = dataclasses.replace(predictor.meta, backend="ort-cpu", fingerprint={"threads": 1},
                               probe=default_probe(16).arch.to_dict(), reference_ms=1.0)
    rows = [{**op_row_key(op), "ms": 1e-4 * op.cin * op.cout}
                                    for cls in shape_classes("resnet20", 16, 10, meta.grid, meta.forms)
                                    for op in cls.ops()]
    save_lut(tmp_path / "lut.parquet", meta, rows)
    args = ["stripe", "--family", "resnet20", "--width", "0.25", "--resolution", "16", "--data", "digits",
            "--epochs", "1", "--batch-size", "64", "--train-images", "256", "--backends", "ort-cpu",
            "--windows", "1", "--no-layers", "--images", "8", "--threads", "1"]
    run = [*args, "--out", str(tmp_path / "run"), "--lut", str(tmp_path / "lut.parquet"), "--sr", "0",
           "--threshold", "0"]
    result = runner.invoke(app, run)
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert set(report["forms"]) == {*FORMS, "best-ort-cpu"} and report["stripe_sparsity"] == 0
    for form in report["forms"].values():
        assert max(form["max_abs_diff"].values()) <= 1e-4 * max(1.0, report["output_scale"])
        assert form["measured_ms"]["ort-cpu"] > 0 and "ort-cpu" in form["spread_pct"]
        assert form["predicted_ms"]["ort-cpu"] > 0
    assert len(report["layers"]) == 19 and (tmp_path / "run" / "pruned" / "weights.pt").is_file()
    assert all(layer["chosen"]["ort-cpu"] in layer["forms"] for layer in report["layers"])
    assert set(report["layers"][0]["predicted_parts_ms"]["ort-cpu"]["stripe"]) == {"conv", "stripes"}
    again = runner.invoke(app, run)
    assert again.exit_code == 0 and json.loads((tmp_path / "run" / "report.json").read_text()) == report

    assert "blocks.0.conv: --threshold 0.9999 would kill all 72 stripes" in error_line(
        runner.invoke(app, [*args, "--out", str(tmp_path / "dead"), "--sr", "0.5", "--threshold", "0.9999"]))
    assert "--threshold in [0, 1)" in error_line(runner.invoke(app, [*args, "--out", str(tmp_path / "x"),
                                                                     "--threshold", "1.5"]))
    assert not (tmp_path / "x").exists()
    assert "give --family" in error_line(runner.invoke(app, ["stripe", "--data", "digits", "--epochs", "1", "--out",
                                                             str(tmp_path / "y")]))
    assert "holds a run with other settings" in error_line(runner.invoke(app, [*run[:-1], "0.5"]))


def test_a_lut_with_forms_measures_their_stand_ins_at_every_shape_they_replace():
    plain = {cls.key for cls in shape_classes("resnet20", 32, 10)}
    classes = {cls.key: cls for cls in shape_classes("resnet20", 32, 10, forms=("kconv", "stripes", "tapsum"))}
    assert plain < set(classes)
    for key, cls in classes.items():
        if key[0] == "conv" and key[2] == 3:
            assert ("kconv", key[1], 32, key[3], key[4]) in classes  # a 3x2 window of each 3x3 conv
            assert ("stripes", *key[1:]) in classes and ("tapsum", *key[1:]) in classes
    stripes = classes[("stripes", 8, 3, 1, "relu")]
    assert stripes.cin_grid[0] == 1 and stripes.cin_grid[-1] == 9 * 64  # from one map to every stripe alive
    assert classes[("tapsum", 8, 3, 1, "relu")].cin_grid == (1, 8, 9)  # slots per filter
    assert classes[("conv", 32, 3, 1, "relu")].cin_grid[0] == 3  # the stem beside stage 1 keeps its 3 inputs
    with pytest.raises(LutError, match="--forms winograd: no such export form; the op kinds with stand-ins are "
                                       "kconv, stripes, tapsum"):
        check_forms(["winograd"])
