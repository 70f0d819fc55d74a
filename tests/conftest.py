"""Shared fixtures: small registered families so LUT tests run in seconds, and a measured
LUT and a trained network of one of them for the adaptation tests."""
from __future__ import annotations

import pytest
from typer.testing import CliRunner

from device_agents import make_agent
from hwadapt.arch import Arch, Block
from hwadapt.cli.main import app
from hwadapt.families import FAMILIES, Grid, family
from hwadapt.lut.profile import build_lut
from hwadapt.measure import MeasurePlan

SHARED_DATA = __import__("pathlib").Path(__file__).resolve().parents[2] / "shared" / "data"


@family("tiny", grid=Grid(points=7, backends={}))
def tiny(*, width: float = 1.0, resolution: int = 16, num_classes: int = 10) -> Arch:
    """Three blocks: enough to exercise every op kind the LUT prices except add."""
    w = lambda c: max(8, int(c * width) // 8 * 8)  # noqa: E731
    blocks = (Block("conv", w(16), 3, 2), Block("dwsep", w(24), 3, 2), Block("mbconv", w(24), 3, 1, mid=w(48)))
    return Arch("tiny", resolution, num_classes, blocks, act="relu6")


def trained_like(arch: Arch):
    """A network of ``arch`` in eval mode whose BN statistics are not the identity, so that
    folding them into the convolutions matters."""
    import torch

    from hwadapt.materialize.torch_net import Net

    torch.manual_seed(0)
    net = Net(arch)
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 1.5)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.1, 0.1)
    torch.nn.init.normal_(net.fc.weight, 0, 0.2)
    return net.eval()


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Single-threaded torch: on a loaded 2-core host, two spinning threads per op are slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_family() -> str:
    assert "tiny" in FAMILIES
    return "tiny"


TOY, TOY_RES = "netadapt_toy", 16
FAST_PLAN = MeasurePlan(round_ms=4, min_rounds=4, max_rounds=8, warmup_runs=2)


@family(TOY)
def netadapt_toy(*, width: float = 1.0, resolution: int = TOY_RES, num_classes: int = 10) -> Arch:
    """Small enough to profile in seconds, wide enough that widths move its latency by 2x;
    a residual block ties two widths into one group."""
    w = lambda c: max(8, int(c * width) // 8 * 8)  # noqa: E731
    blocks = (Block("conv", w(16), 3, 2), Block("dwsep", w(32), 3, 1), Block("dwsep", w(64), 3, 2),
              Block("mbconv", w(64), 3, 1, mid=w(128), residual=True))
    return Arch(TOY, resolution, num_classes, blocks, act="relu6", meta={"width": width})


@pytest.fixture(scope="session")
def toy_lut(tmp_path_factory):
    path = tmp_path_factory.mktemp("lut") / "toy.parquet"
    with make_agent("ort-cpu") as agent:
        # 24 models: with 12, a busy host's noise sometimes fitted a constant-only price, under
        # which no width is cheaper and every budget is unreachable
        build_lut(agent, TOY, TOY_RES, path, calibration_models=24, plan=FAST_PLAN)
    return path


@pytest.fixture(scope="session")
def toy_checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("base") / "ckpt"
    result = CliRunner().invoke(app, ["train", "--family", TOY, "--data", "digits", "--epochs", "2",
                                      "--resolution", str(TOY_RES), "--batch-size", "64", "--lr", "0.1",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out
