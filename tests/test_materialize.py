"""Checkpoints: architecture JSON + state_dict, read back exactly or refused naming what
disagrees. (Export agreement of every family: tests/test_registries.py.)"""
import pytest
import torch
from conftest import trained_like

from hwadapt.errors import ArchError
from hwadapt.families import build
from hwadapt.materialize.torch_net import load_checkpoint, save_checkpoint


def test_checkpoint_round_trip_and_mismatch(tmp_path):
    arch = build("mobilenet_v1", width=0.25, resolution=32, num_classes=10)
    net = trained_like(arch)
    save_checkpoint(net, tmp_path / "ck")
    loaded, _ = load_checkpoint(tmp_path / "ck")
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(loaded.eval()(x), net(x))
    other = build("mobilenet_v1", width=0.5, resolution=32, num_classes=10)
    other.save(tmp_path / "ck" / "arch.json")
    with pytest.raises(ArchError, match=r"disagree: blocks.0.conv.1.weight is \(16, 3, 3, 3\) in arch.json "
                                        r"but \(8, 3, 3, 3\) in weights.pt"):
        load_checkpoint(tmp_path / "ck")


def test_a_checkpoint_of_another_format_is_refused(tmp_path):
    net = trained_like(build("mobilenet_v1", width=0.25, resolution=32, num_classes=10))
    save_checkpoint(net, tmp_path / "ck")
    payload = torch.load(tmp_path / "ck" / "weights.pt", weights_only=True)
    torch.save({**payload, "format": 2}, tmp_path / "ck" / "weights.pt")
    with pytest.raises(ArchError, match="checkpoint format 2; this hwadapt reads format 1"):
        load_checkpoint(tmp_path / "ck")
    torch.save({k: v for k, v in payload.items() if k != "format"}, tmp_path / "ck" / "weights.pt")
    assert load_checkpoint(tmp_path / "ck")[0].arch == net.arch  # written before checkpoints had a format
