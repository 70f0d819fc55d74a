"""Training: learning on digits, cosine schedule, resuming, refusing another run's directory."""
import json

import pytest
import torch

from hwadapt.families import build
from hwadapt.progress import Reporter
from hwadapt.data import load_dataset
from hwadapt.materialize.torch_net import Net, load_checkpoint
from hwadapt.train import TrainConfig, evaluate, finetune, fit
from hwadapt.train.loop import TrainError, cosine


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", 32)


def _net(seed: int = 0) -> Net:
    torch.manual_seed(seed)
    return Net(build("mobilenet_v1", width=0.25, resolution=32, num_classes=10))


def test_cosine_schedule_runs_from_base_to_zero():
    assert cosine(0.1, 0, 100) == pytest.approx(0.1)
    assert cosine(0.1, 50, 100) == pytest.approx(0.05)
    assert cosine(0.1, 100, 100) == pytest.approx(0.0)


def test_a_few_epochs_learn_digits(digits, tmp_path):
    net = _net()
    before = evaluate(net, digits.holdout, digits)
    summary = fit(net, digits, TrainConfig(epochs=5, lr=0.1, batch_size=64), tmp_path / "run")
    assert summary["complete"] and len(summary["history"]) == 5
    assert summary["holdout_accuracy"] > max(0.5, before + 0.3)
    reloaded, extra = load_checkpoint(tmp_path / "run")
    assert evaluate(reloaded, digits.test, digits) == pytest.approx(summary["test_accuracy"])
    assert json.loads((tmp_path / "run" / "train.json").read_text())["complete"]


def test_resumed_training_equals_uninterrupted(digits, tmp_path):
    config = TrainConfig(epochs=2, lr=0.05, batch_size=128)
    straight = _net()
    fit(straight, digits, config, tmp_path / "straight")

    first = _net()
    with pytest.raises(_Interrupt):
        fit(first, digits, config, tmp_path / "resumed", reporter=_InterruptAfter(steps=_steps(digits, 128) + 1))
    resumed = _net(seed=123)  # different init: everything must come from the checkpoint
    fit(resumed, digits, config, tmp_path / "resumed")
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b)


def _steps(digits, batch_size):
    return -(-len(digits.train) // batch_size)


class _Interrupt(Exception):
    pass


class _InterruptAfter(Reporter):
    """A reporter that raises (like Ctrl-C) after a number of training steps."""

    def __init__(self, steps: int) -> None:
        self.left = steps

    def advance(self, task, amount=1.0, status=None):
        self.left -= 1
        if self.left <= 0:
            raise _Interrupt



def test_other_runs_are_not_overwritten(digits, tmp_path):
    fit(_net(), digits, TrainConfig(epochs=1, batch_size=256), tmp_path / "run")
    with pytest.raises(TrainError, match="different training run"):
        fit(_net(), digits, TrainConfig(epochs=2, batch_size=256), tmp_path / "run")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(TrainError, match="not a training run"):
        fit(_net(), digits, TrainConfig(epochs=1), tmp_path / "other")


def test_finetune_runs_the_given_steps(digits):
    net = _net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    loss = finetune(net, digits, 3, lr=0.01, config=TrainConfig(batch_size=32), seed=0)
    assert loss == loss  # not NaN
    assert any(not torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert int(net.blocks[0].conv.bn.num_batches_tracked) == 3


def test_devices_resolve_or_are_refused_in_one_line():
    from hwadapt.train.device import DeviceError, resolve_device

    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(DeviceError, match="unknown --device 'tpu'"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="no CUDA device here"):
            resolve_device("cuda")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without a GPU")
@pytest.mark.parametrize("command", [
    ["train", "--family", "tiny", "--epochs", "1", "--out", "{tmp}/t"],
    ["adapt", "--checkpoint", "{tmp}/none", "--lut", "{tmp}/none.parquet", "--out", "{tmp}/a", "--budget-ratio", "0.5"],
    ["adapt", "--checkpoint", "{tmp}/none", "--lut", "{tmp}/none.parquet", "--out", "{tmp}/a", "--budget-ratio", "0.5",
     "--workers", "2"],
    ["search", "--lut", "{tmp}/none.parquet", "--target-ms", "0.1", "--data", "digits", "--epochs", "1",
     "--out", "{tmp}/s"],
])
def test_cuda_without_a_gpu_is_one_line_before_any_work(tmp_path, command):
    from typer.testing import CliRunner

    from hwadapt.cli.main import app

    args = [a.replace("{tmp}", str(tmp_path)) for a in command] + ["--device", "cuda"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    assert "--device cuda: no CUDA device here" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1 and list(tmp_path.iterdir()) == []
