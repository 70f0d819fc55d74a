"""NetAdapt end to end on a toy family and digits: proposals, loop, resume, CLI contract,
bad input. Real LUT (ONNX Runtime), real training, real measurement; everything tiny."""
import json

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
import torch
from conftest import TOY, TOY_RES as RES
from typer.testing import CliRunner

from hwadapt.adapt import netadapt
from hwadapt.adapt.netadapt import _select
from hwadapt.adapt.proposals import closest_to_target, iteration_target, propose, smaller_widths
from hwadapt.arch import set_widths, width_groups
from hwadapt.families import build
from hwadapt.cli.main import app
from hwadapt.lut.predictor import LatencyPredictor
from hwadapt.materialize.torch_net import load_checkpoint

runner = CliRunner()
ADAPT_FAST = ["--short-steps", "3", "--long-epochs", "1", "--first-step", "0.2", "--decay", "0.9",
              "--batch-size", "64", "--data", "digits"]


@pytest.fixture(scope="module")
def lut(toy_lut):
    return toy_lut


@pytest.fixture(scope="module")
def checkpoint(toy_checkpoint):
    return toy_checkpoint


def test_schedule_decays_and_stops_at_the_budget():
    steps = [10 - iteration_target(10, 10, k, first_step=0.1, decay=0.5, budget_ms=1) for k in range(3)]
    assert steps == pytest.approx([1.0, 0.5, 0.25])
    assert iteration_target(1.2, 10, 0, first_step=0.1, decay=0.5, budget_ms=1) == 1
    assert list(smaller_widths(24, 8)) == [16, 8] and list(smaller_widths(20, 8)) == [16, 8]


def test_each_proposal_is_the_widest_that_meets_the_target(lut):
    predictor = LatencyPredictor.load(lut)
    arch = build(TOY, resolution=RES, num_classes=10)
    current = predictor.predict_ms(arch)
    target = current * 0.9
    proposals = propose(arch, target, predictor.predict_ms)
    assert proposals, "some group must be able to meet a 10% cut"
    for p in proposals:
        assert p.predicted_ms <= target
        wider = p.width + 8
        group = next(g for g in width_groups(arch) if g.name == p.group)
        if wider < group.width(arch):
            assert predictor.predict_ms(set_widths(arch, {p.group: wider})) > target
    assert all(p.predicted_ms < current for p in closest_to_target(arch, current, predictor.predict_ms))


def test_selection_by_accuracy_or_ratio():
    current = {"holdout_accuracy": 0.9, "predicted_ms": 10.0}
    results = [{"group": "a", "holdout_accuracy": 0.85, "predicted_ms": 9.0},
               {"group": "b", "holdout_accuracy": 0.80, "predicted_ms": 5.0}]
    assert _select(results, current, "accuracy")["group"] == "a"
    assert _select(results, current, "ratio")["group"] == "b"  # 0.10/5 beats 0.05/1


def _adapt(checkpoint, lut, out, *extra):
    return runner.invoke(app, ["adapt", "--checkpoint", str(checkpoint), "--lut", str(lut), "--out", str(out),
                               *ADAPT_FAST, *extra])


def test_adapt_meets_the_budget_and_reports(checkpoint, lut, tmp_path):
    out = tmp_path / "run"
    result = _adapt(checkpoint, lut, out, "--budget-ratio", "0.8")
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    for key in ("budget_ms", "predicted_ms", "measured_ms", "base_measured_ms", "test_accuracy",
                "base_test_accuracy"):
        assert isinstance(report[key], float), key
    assert report["method"] == "netadapt" and report["format"] == 1
    assert report["details"]["stop_reason"] == "budget" and report["predicted_ms"] <= report["budget_ms"]
    assert report["budget_ms"] == pytest.approx(0.8 * report["base_predicted_ms"])
    assert report["measured_spread_pct"] >= 0 and report["wall_s"] > 0
    family = pd.read_csv(out / "family.csv")
    steps = family[family["stage"] == "short-term"]
    assert len(steps) == report["details"]["iterations"] >= 1
    assert np.all(np.diff(family["predicted_ms"].iloc[:-1]) < 0)  # every iteration is cheaper
    assert family["measured_ms"].notna().all() and (out / "pareto.png").stat().st_size > 10_000
    assert (steps["seconds"] > 0).all() and family["seconds"].iloc[-1] > 0  # fine-tunes, long-term epoch
    _check_exports(out)


def _check_exports(out):
    """The exported ONNX computes what the long-term fine-tuned PyTorch network computes."""
    net, _ = load_checkpoint(out / "final")
    x = torch.randn(2, 3, RES, RES)
    with torch.no_grad():
        expected = net.eval()(x).numpy()
    session = ort.InferenceSession(str(out / "final" / "model.onnx"), providers=["CPUExecutionProvider"])
    got = np.concatenate([session.run(None, {"input0": x[i:i + 1].numpy()})[0] for i in range(2)])
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-4)
    assert (out / "final" / "model.tflite").read_bytes()[4:8] == b"TFL3"


def test_interrupted_adapt_resumes_to_the_same_family(checkpoint, lut, tmp_path, monkeypatch):
    real = netadapt.finetune
    calls = {"n": 0, "stop_at": None}

    def counting(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == calls["stop_at"]:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(netadapt, "finetune", counting)
    straight = tmp_path / "straight"
    assert _adapt(checkpoint, lut, straight, "--budget-ratio", "0.8").exit_code == 0
    # stop half-way through the proposals (long-term training does not call finetune)
    calls.update(n=0, stop_at=max(1, (calls["n"] + 1) // 2))
    resumed = tmp_path / "resumed"
    result = _adapt(checkpoint, lut, resumed, "--budget-ratio", "0.8")
    assert result.exit_code == 130 and not (resumed / "report.json").exists()
    monkeypatch.setattr(netadapt, "finetune", real)
    assert _adapt(checkpoint, lut, resumed, "--budget-ratio", "0.8").exit_code == 0
    columns = ["iteration", "group", "predicted_ms", "holdout_accuracy", "test_accuracy", "arch"]
    a, b = (pd.read_csv(d / "family.csv")[columns] for d in (straight, resumed))
    pd.testing.assert_frame_equal(a, b)


def test_a_budget_below_the_narrowest_network_is_refused_up_front(checkpoint, lut, tmp_path):
    out = tmp_path / "run"
    result = _adapt(checkpoint, lut, out, "--budget-ms", "0.0001")
    predictor = LatencyPredictor.load(lut)
    base = build(TOY, resolution=RES, num_classes=10)
    minimal = set_widths(base, {g.name: 8 for g in width_groups(base)})
    floor = predictor.predict_ms(minimal)
    assert result.exit_code == 1 and "out of reach" in result.output and f"{floor:.4g} ms" in result.output
    assert not out.exists()
    assert not closest_to_target(minimal, floor, predictor.predict_ms)  # NetAdapt can go no further


def test_bad_input_is_one_line_and_overwrites_nothing(checkpoint, lut, tmp_path):
    result = _adapt(checkpoint, lut, tmp_path / "a", "--budget-ms", "1000")
    assert result.exit_code == 1 and "nothing to do" in result.output and not (tmp_path / "a").exists()
    other = tmp_path / "other.parquet"
    v1 = tmp_path / "v1"
    assert runner.invoke(app, ["train", "--family", "mobilenet_v1", "--width", "0.25", "--epochs", "1",
                               "--resolution", str(RES), "--out", str(v1)]).exit_code == 0
    result = _adapt(v1, lut, tmp_path / "b", "--budget-ratio", "0.85")
    assert result.exit_code == 1 and f"LUT was built for family='{TOY}'" in result.output
    arch = json.loads((checkpoint / "arch.json").read_text())
    arch["blocks"][0]["out"] += 8
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "arch.json").write_text(json.dumps(arch))
    (broken / "weights.pt").write_bytes((checkpoint / "weights.pt").read_bytes())
    result = _adapt(broken, lut, tmp_path / "c", "--budget-ratio", "0.85")
    assert result.exit_code == 1 and "arch.json and weights.pt disagree: blocks.0.conv.1.weight" in result.output
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("precious")
    result = _adapt(checkpoint, lut, busy, "--budget-ratio", "0.85")
    assert result.exit_code == 1 and "not an adapt run" in result.output
    assert (busy / "keep.txt").read_text() == "precious" and not other.exists()
    result = _adapt(checkpoint, lut, tmp_path / "d", "--budget-ratio", "0.85", "--data", f"cifar10:{tmp_path}/none")
    assert result.exit_code == 1 and "no dataset at" in result.output


def test_baseline_trains_and_measures_each_multiplier(lut, tmp_path):
    out = tmp_path / "baseline"
    result = runner.invoke(app, ["baseline", "--family", TOY, "--multipliers", "1.0,0.5", "--data", "digits",
                                 "--out", str(out), "--lut", str(lut), "--epochs", "1", "--resolution", str(RES),
                                 "--batch-size", "128"])
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(out / "baseline.csv")
    assert list(frame["multiplier"]) == [1.0, 0.5]
    assert (frame["measured_ms"] > 0).all() and frame["predicted_ms"].iloc[1] < frame["predicted_ms"].iloc[0]
    assert (out / "pareto.png").is_file()


def test_baseline_without_a_lut_measures_on_onnx_runtime(tmp_path):
    out = tmp_path / "baseline"
    result = runner.invoke(app, ["baseline", "--family", TOY, "--multipliers", "0.5", "--data", "digits",
                                 "--out", str(out), "--epochs", "1", "--resolution", str(RES)])
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(out / "baseline.csv")
    assert frame["predicted_ms"].isna().all() and (frame["measured_ms"] > 0).all()
