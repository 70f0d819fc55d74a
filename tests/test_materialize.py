"""PyTorch, ONNX Runtime and LiteRT compute the same outputs from one description."""
import numpy as np
import onnxruntime as ort
import pytest
import torch

from hwadapt.arch import random_widths
from hwadapt.families import build
from hwadapt.materialize import export
from hwadapt.materialize.torch_net import Net, load_checkpoint, save_checkpoint
from hwadapt.errors import ArchError


def _trained_like(arch):
    torch.manual_seed(0)
    net = Net(arch)
    for module in net.modules():  # BN statistics that are not the identity, so folding matters
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 1.5)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.1, 0.1)
    torch.nn.init.normal_(net.fc.weight, 0, 0.2)
    return net.eval()


@pytest.mark.parametrize("family,resolution", [("mobilenet_v1", 32), ("mobilenet_v2", 32), ("mobilenet_v2", 57)])
def test_torch_onnx_tflite_agree(tmp_path, family, resolution):
    from ai_edge_litert.interpreter import Interpreter

    arch = random_widths(build(family, resolution=resolution, num_classes=10), np.random.default_rng(1))
    net = _trained_like(arch)
    x = torch.randn(2, 3, resolution, resolution)[:1]
    with torch.no_grad():
        expected = net(x).numpy()
    onnx_out = ort.InferenceSession(str(export(arch, "onnx", tmp_path / "m.onnx", net)),
                                    providers=["CPUExecutionProvider"]).run(None, {"input0": x.numpy()})[0]
    interpreter = Interpreter(model_path=str(export(arch, "tflite", tmp_path / "m.tflite", net)))
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x.numpy().transpose(0, 2, 3, 1).copy())
    interpreter.invoke()
    tflite_out = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    scale = np.abs(expected).max()
    assert scale > 1e-3
    assert np.abs(onnx_out - expected).max() <= 1e-4 * max(1.0, scale)
    assert np.abs(tflite_out - expected).max() <= 1e-4 * max(1.0, scale)


def test_checkpoint_round_trip_and_mismatch(tmp_path):
    arch = build("mobilenet_v1", width=0.25, resolution=32, num_classes=10)
    net = _trained_like(arch)
    save_checkpoint(net, tmp_path / "ck")
    loaded, _ = load_checkpoint(tmp_path / "ck")
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(loaded.eval()(x), net(x))
    other = build("mobilenet_v1", width=0.5, resolution=32, num_classes=10)
    other.save(tmp_path / "ck" / "arch.json")
    with pytest.raises(ArchError, match=r"disagree: blocks.0.conv.1.weight is \(16, 3, 3, 3\) in arch.json but \(8, 3, 3, 3\)"):
        load_checkpoint(tmp_path / "ck")
