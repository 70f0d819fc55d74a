"""Every registered adaptation method, through the one workflow: the same report contract,
exports that compute what the PyTorch network computes, the run folder untouched on bad
input. Toy family, digits, a real ONNX Runtime LUT; everything tiny."""
import json

import numpy as np
import onnxruntime as ort
import pytest
import torch
from conftest import TOY_RES
from typer.testing import CliRunner

from hwadapt.adapt import METHODS
from hwadapt.adapt.report import AdaptReport, ReportError
from hwadapt.cli.main import app
from hwadapt.materialize.torch_net import load_checkpoint

runner = CliRunner()
# the quickest settings of each method; a method registered without an entry here fails
QUICK = {
    "netadapt": ["--short-steps", "3", "--long-epochs", "1", "--first-step", "0.2", "--decay", "0.9",
                 "--batch-size", "64"],
    "multiplier": ["--epochs", "1", "--batch-size", "128"],
    "morphnet": ["--shrink-epochs", "1", "--refresh-steps", "10", "--retrain-epochs", "1", "--batch-size", "64"],
    "knapsack": ["--prune-steps", "2", "--interval-steps", "5", "--finetune-epochs", "1", "--batch-size", "64"],
    "slimming": ["--shrink-epochs", "1", "--refresh-steps", "10", "--finetune-epochs", "1", "--batch-size", "64"],
}
REPORT_FIELDS = ("method", "budget_ms", "predicted_ms", "measured_ms", "measured_spread_pct", "base_measured_ms",
                 "test_accuracy", "base_test_accuracy", "wall_s", "arch", "exports")


def adapt(checkpoint, lut, out, method, *extra):
    return runner.invoke(app, ["adapt", "--method", method, "--checkpoint", str(checkpoint), "--lut", str(lut),
                               "--out", str(out), "--data", "digits", *extra])


def test_every_method_has_quick_test_settings():
    assert set(METHODS) <= set(QUICK)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_method_meets_the_budget_and_reports(method, toy_checkpoint, toy_lut, tmp_path):
    out = tmp_path / method
    result = adapt(toy_checkpoint, toy_lut, out, method, "--budget-ratio", "0.85", *QUICK[method])
    assert result.exit_code == 0, result.output
    data = json.loads((out / "report.json").read_text())
    assert all(data[k] is not None for k in REPORT_FIELDS) and data["method"] == method
    report = AdaptReport.load(out / "report.json")
    assert report.predicted_ms <= report.budget_ms == pytest.approx(0.85 * report.base_predicted_ms)
    assert report.measured_ms > 0 and report.measured_spread_pct >= 0 and report.wall_s > 0
    net, _ = load_checkpoint(report.exports["checkpoint"])
    assert net.arch.to_dict() == report.arch
    x = torch.randn(1, 3, TOY_RES, TOY_RES)
    with torch.no_grad():
        expected = net.eval()(x).numpy()
    session = ort.InferenceSession(report.exports["onnx"], providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, {"input0": x.numpy()})[0], expected, rtol=1e-3, atol=1e-4)
    again = adapt(toy_checkpoint, toy_lut, out, method, "--budget-ratio", "0.85", *QUICK[method])
    assert again.exit_code == 0 and AdaptReport.load(out / "report.json") == report  # a finished run is reread


def test_unknown_method_and_foreign_settings_are_one_line_errors(toy_checkpoint, toy_lut, tmp_path):
    result = adapt(toy_checkpoint, toy_lut, tmp_path / "a", "prune-everything", "--budget-ratio", "0.85")
    assert result.exit_code == 1 and "unknown method 'prune-everything'; known: " in result.output
    assert all(name in result.output for name in METHODS)
    result = adapt(toy_checkpoint, toy_lut, tmp_path / "b", "multiplier", "--budget-ratio", "0.85", "--decay", "0.5")
    assert result.exit_code == 1 and "--decay is not a setting of method multiplier" in result.output
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    listed = runner.invoke(app, ["methods"])
    assert listed.exit_code == 0 and all(name in listed.output for name in METHODS)


def test_pickled_weights_are_refused_in_one_line(toy_checkpoint, toy_lut, tmp_path):
    import pickle
    import shutil

    bad = tmp_path / "pickled"
    shutil.copytree(toy_checkpoint, bad)
    torch.save({"state_dict": {}, "extra": {"payload": pickle.dumps(object)}, "obj": object()}, bad / "weights.pt")
    result = adapt(bad, toy_lut, tmp_path / "out", "netadapt", "--budget-ratio", "0.85")
    assert result.exit_code == 1 and "objects other than tensors" in result.output
    assert "Traceback" not in result.output


def test_reports_of_another_layout_are_read_or_refused_saying_which(tmp_path):
    legacy = {"budget_ms": 1.0, "predicted_ms": 0.9, "measured_ms": 0.95, "base_measured_ms": 2.0,
              "test_accuracy": 0.8, "base_test_accuracy": 0.85, "arch": {}, "onnx": "m.onnx", "stop_reason": "budget"}
    (tmp_path / "old.json").write_text(json.dumps(legacy))
    report = AdaptReport.load(tmp_path / "old.json")
    assert report.method == "netadapt" and report.measured_spread_pct is None and report.details["stop_reason"]
    (tmp_path / "future.json").write_text(json.dumps({**legacy, "format": 99}))
    with pytest.raises(ReportError, match="report format 99; this hwadapt reads format 1"):
        AdaptReport.load(tmp_path / "future.json")
    (tmp_path / "half.json").write_text(json.dumps({"format": 1, "method": "netadapt"}))
    with pytest.raises(ReportError, match="not a complete report"):
        AdaptReport.load(tmp_path / "half.json")
    (tmp_path / "other.json").write_text(json.dumps({"hello": 1}))
    with pytest.raises(ReportError, match="no layout this hwadapt knows"):
        AdaptReport.load(tmp_path / "other.json")



def test_a_network_off_the_luts_grid_is_refused(toy_checkpoint, toy_lut, tmp_path):
    """A width between the table's multiples of 8 is priced between them but may run far
    slower: a checkpoint with one is refused before anything is written."""
    import shutil

    from hwadapt.arch import Arch, set_widths
    from hwadapt.materialize.torch_net import Net, save_checkpoint

    arch = Arch.load(toy_checkpoint / "arch.json")
    odd = tmp_path / "odd"
    save_checkpoint(Net(set_widths(arch, {"out0": 12})), odd)
    shutil.copy(toy_checkpoint / "train.json", odd / "train.json")
    result = adapt(odd, toy_lut, tmp_path / "out", "netadapt", "--budget-ratio", "0.85")
    assert result.exit_code == 1 and "off the LUT's grid of multiples of 8 (block 0 out=12" in result.output
    assert not (tmp_path / "out").exists()
