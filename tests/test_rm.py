"""RM: ResNets and MobileNetV2 re-parameterised into plain chains that compute the same
outputs in PyTorch, ONNX and TFLite, whose widths are no longer tied; one-line errors
for what RM cannot do."""
import json

import numpy as np
import pytest
import torch
from conftest import trained_like
from typer.testing import CliRunner

from hwadapt.arch import lower, width_groups
from hwadapt.cli.main import app
from hwadapt.families import build
from hwadapt.materialize.onnx_export import ops_to_onnx
from hwadapt.materialize.tflite_export import ops_to_tflite
from hwadapt.materialize.weights import folded_weights
from hwadapt.rm.convert import reparameterize
from hwadapt.rm.structure import RmError

runner = CliRunner()
SOURCES = [("resnet20", 0.5, 32), ("resnet56", 0.25, 32), ("resnet18", 0.25, 64), ("mobilenet_v2", 0.5, 32),
           ("mobilenet_v2", 0.35, 35)]


def tame(net):
    """BN scales that keep a deep, untrained network's outputs near 1 (as training does)."""
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.weight.data.uniform_(0.3, 0.6)
    return net


@pytest.mark.parametrize("family,width,resolution", SOURCES)
def test_rm_is_exact_in_every_form(family, width, resolution):
    import onnxruntime as ort
    from ai_edge_litert.interpreter import Interpreter

    net = tame(trained_like(build(family, width=width, resolution=resolution, num_classes=10)))
    plain = reparameterize(net)
    assert plain.arch.family == "plain" and plain.arch.meta["source"] == family
    assert not {op.kind for op in lower(plain.arch)} & {"add"}  # no residual connection is left
    x = torch.randn(3, 3, resolution, resolution)
    with torch.no_grad():
        expected, got = net(x).numpy(), plain(x).numpy()
    scale = max(1.0, float(np.abs(expected).max()))
    assert np.abs(got - expected).max() <= 1e-4 * scale
    ops, weights = lower(plain.arch), folded_weights(plain)
    session = ort.InferenceSession(ops_to_onnx(ops, weights).SerializeToString(), providers=["CPUExecutionProvider"])
    onnx_out = np.concatenate([session.run(None, {"input0": x[i:i + 1].numpy()})[0] for i in range(3)])
    interpreter = Interpreter(model_content=ops_to_tflite(ops, weights))
    interpreter.allocate_tensors()
    tflite_out = []
    for i in range(3):
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x[i:i + 1].numpy().transpose(0, 2, 3, 1))
        interpreter.invoke()
        tflite_out.append(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]))
    assert np.abs(onnx_out - expected).max() <= 1e-4 * scale
    assert np.abs(np.concatenate(tflite_out) - expected).max() <= 1e-4 * scale


@pytest.mark.parametrize("family", ["resnet20", "mobilenet_v2"])
def test_widths_are_untied_after_rm(family):
    """Every residual tie is gone: the plain chain has a free group for every layer a
    residual had tied."""
    source = build(family, width=0.5, resolution=32, num_classes=10)
    plain = reparameterize(trained_like(source))
    tied = sum(len(g.members) > 1 for g in width_groups(source) if g.name.startswith("out"))
    assert tied >= 1
    assert all(len({b for b, _ in g.members}) == 1 or
               all(plain.arch.blocks[b].kind in ("dw", "maxpool") for b, _ in g.members[1:])
               for g in width_groups(plain.arch))


def test_what_rm_cannot_do_is_a_one_line_error():
    with pytest.raises(RmError, match="mobilenet_v1 has none"):
        reparameterize(trained_like(build("mobilenet_v1", width=0.25, resolution=32, num_classes=10)))
    net = trained_like(build("resnet20", width=0.25, resolution=32, num_classes=10)).train()
    with pytest.raises(RmError, match="eval mode"):
        reparameterize(net)


def test_cli_writes_a_plain_checkpoint_and_rm_json(tmp_path):
    ckpt = tmp_path / "resnet"
    trained = runner.invoke(app, ["train", "--family", "resnet20", "--width", "0.25", "--data", "digits",
                                  "--epochs", "1", "--resolution", "16", "--out", str(ckpt)])
    assert trained.exit_code == 0, trained.output
    result = runner.invoke(app, ["rm", "--checkpoint", str(ckpt), "--out", str(tmp_path / "plain"), "--images", "32"])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "plain" / "rm.json").read_text())
    assert report["images"] == 32 and set(report["max_abs_diff"]) == {"pytorch", "onnx", "tflite"}
    assert max(report["max_abs_diff"].values()) <= 1e-4 * max(1.0, report["output_scale"])
    assert report["params_after"] > report["params_before"] and report["ops_after"].get("add", 0) == 0
    assert report["ops_before"]["add"] == 9
    summary = json.loads((ckpt / "train.json").read_text())
    (ckpt / "train.json").write_text(json.dumps({**summary, "complete": False}))
    unfinished = runner.invoke(app, ["rm", "--checkpoint", str(ckpt), "--out", str(tmp_path / "other")])
    assert unfinished.exit_code == 1 and "still in training" in unfinished.output
    assert not (tmp_path / "other").exists()
    v1 = tmp_path / "v1"
    runner.invoke(app, ["train", "--family", "mobilenet_v1", "--width", "0.25", "--data", "digits", "--epochs", "1",
                        "--resolution", "16", "--out", str(v1)])
    refused = runner.invoke(app, ["rm", "--checkpoint", str(v1), "--out", str(tmp_path / "third")])
    assert refused.exit_code == 1 and "has none" in refused.output and "Traceback" not in refused.output
