"""``hwadapt search`` end to end on a real (tiny, fast-measured) LUT of the proxyless space
and the bundled digits: report contract, resume, and one-line errors for bad input."""
import json
from dataclasses import replace

import pytest
from typer.testing import CliRunner

from device_agents import make_agent
from hwadapt.arch import Arch
from hwadapt.families.proxyless import ProxylessSpace
from hwadapt.cli.main import app
from hwadapt.lut.predictor import LatencyPredictor
from hwadapt.lut.profile import build_lut
from hwadapt.lut.store import load_lut, save_lut
from hwadapt.materialize.torch_net import load_checkpoint
from hwadapt.measure import MeasurePlan
from hwadapt.nas.latency import latency_table

FAST = MeasurePlan(round_ms=1.0, min_rounds=1, max_rounds=1, warmup_runs=1, time_cap_s=5)
RESOLUTION = 8
SMALL = ["--width", "0.25", "--depth", "1", "--train-images", "160", "--holdout-images", "48",
         "--batch-size", "32", "--epochs", "2", "--train-epochs", "1"]
runner = CliRunner()


@pytest.fixture(scope="module")
def lut(tmp_path_factory):
    path = tmp_path_factory.mktemp("lut") / "proxyless8.parquet"
    with make_agent("ort-cpu") as agent:
        build_lut(agent, "proxyless", RESOLUTION, path, calibration_models=2, plan=FAST)
    return path


@pytest.fixture(scope="module")
def bounds(lut):
    table = latency_table(LatencyPredictor.load(lut), ProxylessSpace(RESOLUTION, 10, 0.25, depth=1))
    return table.of(table.fastest()), table.of(table.slowest())


def search(lut, out, target, *extra):
    return runner.invoke(app, ["search", "--lut", str(lut), "--target-ms", f"{target:.6f}", "--data", "digits",
                               "--out", str(out), *SMALL, *extra])


def test_search_writes_report_and_arch_and_resumes(tmp_path, lut, bounds):
    target = (bounds[0] + bounds[1]) / 2
    out = tmp_path / "run"
    result = search(lut, out, target)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    for key in ("target_ms", "predicted_ms", "measured_ms", "test_accuracy", "note", "calibration"):
        assert key in report
    assert report["target_ms"] == pytest.approx(target, rel=1e-5)
    assert report["measured_ms"] > 0 and 0 <= report["test_accuracy"] <= 1
    arch = Arch.load(out / "arch.json")
    assert arch.family == "proxyless" and arch.meta["choices"] == report["choices"]
    net, _ = load_checkpoint(out / "train")
    assert net.arch == arch
    history = json.loads((out / "search" / "search.json").read_text())["history"]
    assert len(history) == 2 and history[0]["arch_loss"] is None and history[1]["arch_loss"] is not None
    first, final = history[0]["expected_ms"], history[-1]["expected_ms"]
    search_summary = report["search"]
    assert search_summary["progress_to_target"] == pytest.approx((first - final) / (first - report["target_ms"]))
    assert search_summary["argmax_predicted_ms"] == report["argmax_predicted_ms"] == history[-1]["argmax_predicted_ms"]
    missed = abs(search_summary["argmax_error"]) > 0.10
    assert ("search's own argmax missed the target" in " ".join(result.output.split())) == missed
    assert history[1]["multiplier"] is not None and history[1]["sharpened_ms"] is not None
    assert (out / "search" / "search.png").stat().st_size > 10_000

    weights = (out / "train" / "weights.pt").stat().st_mtime_ns
    again = search(lut, out, target)
    assert again.exit_code == 0, again.output
    assert (out / "train" / "weights.pt").stat().st_mtime_ns == weights  # nothing re-trained
    assert json.loads((out / "report.json").read_text())["choices"] == report["choices"]

    other = search(lut, out, target, "--loss", "add")
    assert other.exit_code == 1 and "other settings" in other.output


def _one_line_error(result, *fragments):
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.output


def test_targets_outside_the_space(tmp_path, lut, bounds):
    low, high = bounds
    _one_line_error(search(lut, tmp_path / "a", low * 0.5), "below the fastest", f"{low:.4g} ms")
    _one_line_error(search(lut, tmp_path / "b", high * 2), "above the slowest")
    assert not (tmp_path / "a").exists()


def test_lut_without_candidate_ops_or_of_another_family(tmp_path, lut, bounds):
    meta, frame = load_lut(lut)
    no_k7 = frame[~((frame["kind"] == "dwconv") & (frame["kernel"] == 7))]
    save_lut(tmp_path / "no_k7.parquet", replace(meta), no_k7.to_dict("records"))
    _one_line_error(search(tmp_path / "no_k7.parquet", tmp_path / "a", sum(bounds) / 2), "lacks ops of the candidate k7")
    save_lut(tmp_path / "v2.parquet", replace(meta, family="mobilenet_v2"), frame.to_dict("records"))
    _one_line_error(search(tmp_path / "v2.parquet", tmp_path / "b", sum(bounds) / 2), "family 'mobilenet_v2'")


def test_dataset_problems(tmp_path, lut, bounds):
    def run(data):
        return runner.invoke(app, ["search", "--lut", str(lut), "--target-ms", str(sum(bounds) / 2),
                                   "--data", data, "--width", "0.25", "--depth", "1", "--epochs", "1",
                                   "--out", str(tmp_path / "out")])

    _one_line_error(run(f"cifar10:{tmp_path / 'missing'}"), "no dataset at")
    (tmp_path / "empty" / "train" / "cat").mkdir(parents=True)
    _one_line_error(run(f"imagefolder:{tmp_path / 'empty'}"), "no training images")
    _one_line_error(run("mnist"), "unknown --data")
    assert not (tmp_path / "out").exists()


def test_an_unrelated_output_folder_is_left_alone(tmp_path, lut, bounds):
    (tmp_path / "report.json").write_text("mine")
    _one_line_error(search(lut, tmp_path, sum(bounds) / 2), "holds no search")
    assert (tmp_path / "report.json").read_text() == "mine"
