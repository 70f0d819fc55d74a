"""LUT build, resume, integrity checks, prediction and the CLI contract (tiny family)."""
import json
import shutil

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from device_agents import AGENTS, make_agent
from device_agents.base import DeviceAgent
from hwadapt.arch import Arch, random_widths
from hwadapt.families import build
from hwadapt.cli.main import app
from hwadapt.lut.outliers import window_levels
from hwadapt.lut.predictor import LatencyPredictor, LutMismatchError
from hwadapt.lut import calibration_set
from hwadapt.lut.calibration_set import default_calibration_models, new_draw
from hwadapt.lut.profile import OP_MAX_ROUNDS, Job, _batches, build_lut, plan_jobs
from hwadapt.lut.space import grid_settings
from hwadapt.lut.store import (LutError, LutMeta, journal_path, load_lut, read_journal, row_key, save_lut,
                               sidecar_path)
from hwadapt.measure import MeasurePlan, Measurement, TargetMismatchError, settled

FAST = MeasurePlan(round_ms=4, min_rounds=4, max_rounds=8, warmup_runs=2)
COARSE = {"dense_until": 8, "points": 2, "period": 0, "input_period": 0}  # a grid of few points
runner = CliRunner()


def table_jobs(family, resolution, classes, count, seed, grid=None):
    """The jobs of a new table of ``family`` drawing ``count`` calibration networks."""
    meta = LutMeta(family, resolution, classes, "ort-cpu", {}, {}, grid=grid or grid_settings(family, "ort-cpu"),
                   calibration_draw=new_draw(count, seed))
    return plan_jobs(meta)


@pytest.fixture(scope="module")
def tiny_lut(tmp_path_factory, tiny_family):
    path = tmp_path_factory.mktemp("lut") / "tiny.parquet"
    with make_agent("ort-cpu") as agent:
        build_lut(agent, tiny_family, 16, path, calibration_models=12, plan=FAST)
    return path


def copy_lut(source, target):
    """A LUT (table and sidecar) under another name."""
    shutil.copy(source, target)
    shutil.copy(source.with_suffix(".json"), target.with_suffix(".json"))


def test_table_holds_every_planned_key_once(tiny_lut):
    meta, frame = load_lut(tiny_lut)
    planned = {job.key for job in table_jobs("tiny", 16, 10, 12, 0)}
    keys = [row_key(r) for r in frame.to_dict("records")]
    assert len(keys) == len(set(keys)) == len(planned)
    assert set(keys) == planned
    models = sum(1 for key in planned if key[0] == "model")
    assert 8 <= models <= 12  # a repeated random draw is measured once
    assert meta.calibration["models"] == models
    assert meta.calibration_draw == {"scheme": "balanced", "count": 12, "seed": 0, "shrunk": 3}  # so a refit knows the set
    # the time base is the probe's median level over the table's windows
    assert meta.reference_ms == pytest.approx(frame["probe_ms"].median())
    one = frame[frame["windows"] == 1]  # (a row of several windows keeps the fields of the nearest)
    assert len(one) > 20 and np.allclose(one["ms"], one["raw_ms"] / one["probe_ms"] * meta.reference_ms, rtol=1e-9)
    assert meta.fingerprint["backend"] == "ort-cpu" and meta.fingerprint["threads"] == 1
    assert (frame["ms"] > 0).all()


def test_prediction_tracks_end_to_end_measurement(tiny_lut):
    """Over a few random networks (one tiny network's single measurement swings by a third
    on a busy host), the calibrated prediction stays near the measurement, and far nearer
    than the naive sum of standalone op times (which pays a model's overhead per op)."""
    from hwadapt.lut.validate import validate

    predictor = LatencyPredictor.load(tiny_lut)
    arch = random_widths(build("tiny", resolution=16, num_classes=10), np.random.default_rng(7))
    prediction = predictor.predict(arch)
    assert prediction.total_ms == pytest.approx(sum(prediction.block_ms) + prediction.fixed_ms)
    _, table = validate(predictor, samples=6, seed=0, plan=FAST)
    errors = table["error_pct"].abs()
    naive = [predictor.naive_sum().predict_ms(Arch.from_json(a)) for a in table["arch"]]
    naive_errors = (np.array(naive) / table["measured_ms"] - 1).abs() * 100
    assert errors.median() < 25 and errors.median() < naive_errors.median() / 2


class InterruptingAgent(DeviceAgent):
    """A desktop agent, but Ctrl-C arrives after a number of models were opened."""

    def __init__(self, after, backend="ort-cpu"):
        super().__init__()
        self.inner, self.after, self.opened = make_agent(backend), after, 0
        self.backend, self.model_format = backend, self.inner.model_format

    def fingerprint(self):
        return self.inner.fingerprint()

    def open(self, path):
        self.opened += 1
        if self.opened > self.after:
            raise KeyboardInterrupt
        return self.inner.open(path)


def test_interrupted_profile_resumes_without_losing_or_duplicating(tmp_path, tiny_lut, monkeypatch):
    monkeypatch.setattr("hwadapt.lut.profile.suspect_rows", lambda rows: [])  # no re-check (tested below)
    path = tmp_path / "resume.parquet"
    with pytest.raises(KeyboardInterrupt):
        build_lut(InterruptingAgent(after=30), "tiny", 16, path, calibration_models=12, plan=FAST,
                  batch_size=6)
    _, partial = load_lut(path)
    assert 0 < len(partial) < len(table_jobs("tiny", 16, 10, 12, 0))
    before = {row_key(r): r["measured_at"] for r in partial.to_dict("records")}
    with make_agent("ort-cpu") as agent:
        build_lut(agent, "tiny", 16, path, calibration_models=12, plan=FAST)
    _, full = load_lut(path)
    keys = [row_key(r) for r in full.to_dict("records")]
    assert len(keys) == len(set(keys)) == len(table_jobs("tiny", 16, 10, 12, 0))
    ops = full[full["kind"] != "model"]
    ops_before = {key: at for key, at in before.items() if key[0] != "model"}
    kept = {row_key(r): r["measured_at"] for r in ops.to_dict("records") if row_key(r) in before}
    assert ops_before and kept == ops_before  # finished ops were kept, not re-measured
    models = full[full["kind"] == "model"].to_dict("records")
    assert all(r["windows"] in (3, 5, 7) and len(window_levels(r)) == r["windows"] for r in models)
    assert all(settled(window_levels(r)) for r in models if r["windows"] < 7) and (ops["windows"] == 1).all()


def test_profile_remeasures_a_spoiled_point(tmp_path, tiny_lut):
    path = tmp_path / "spoiled.parquet"
    copy_lut(tiny_lut, path)
    meta, frame = load_lut(path)
    rows = frame.to_dict("records")
    convs = [i for i, r in enumerate(rows) if r["kind"] == "conv" and r["kernel"] == 1]
    victim = min(convs, key=lambda i: (rows[i]["cin"], rows[i]["cout"]))  # every other 1x1 conv is wider
    true_ms = rows[victim]["ms"]
    rows[victim].update(ms=10 * true_ms, windows=1, window_ms=None)
    save_lut(path, meta, rows)
    with make_agent("ort-cpu") as agent:
        build_lut(agent, "tiny", 16, path, calibration_models=12, plan=FAST)
    _, after = load_lut(path)
    again = after[[row_key(r) == row_key(rows[victim]) for r in after.to_dict("records")]]
    assert len(again) == 1 and again["ms"].iloc[0] == pytest.approx(true_ms, rel=0.5)
    assert len(after) == len(frame)


def test_corrupt_or_edited_tables_are_refused(tmp_path, tiny_lut):
    copy = tmp_path / "t.parquet"
    copy_lut(tiny_lut, copy)
    frame = pd.read_parquet(copy)
    frame.loc[0, "ms"] *= 2
    frame.to_parquet(copy)
    with pytest.raises(LutError, match="digest"):
        load_lut(copy)
    copy.write_bytes(b"garbage")
    with pytest.raises(LutError):
        load_lut(copy)
    copy.with_suffix(".json").write_text("{not json")
    with pytest.raises(LutError, match="not valid JSON"):
        load_lut(copy)
    with pytest.raises(LutError, match="no LUT"):
        load_lut(tmp_path / "absent.parquet")


def test_lut_of_another_family_or_shape_is_refused(tiny_lut):
    predictor = LatencyPredictor.load(tiny_lut)
    v1 = build("mobilenet_v1", resolution=16, num_classes=10)
    with pytest.raises(LutMismatchError, match="family"):
        predictor.predict(v1)
    forced = LatencyPredictor.load(tiny_lut, force=True)
    with pytest.raises(LutError, match="no entry for|does not cover"):
        forced.predict(v1)
    wide = build("tiny", width=2.0, resolution=16, num_classes=10)
    with pytest.raises(LutError, match="does not cover"):
        predictor.predict(wide)


def test_measurements_of_another_clock_or_estimator_are_refused(tiny_lut):
    predictor = LatencyPredictor.load(tiny_lut)
    assert predictor.meta.fingerprint["estimator"] == "fastest"
    with make_agent("ort-cpu") as agent:
        predictor.target.check(agent)
        for name, other in (("estimator", "envelope"), ("clock", "thread")):
            mismatched = LatencyPredictor.load(tiny_lut)
            mismatched.meta.fingerprint[name] = other
            with pytest.raises(TargetMismatchError, match=name):
                mismatched.target.check(agent)


def test_profile_refuses_to_mix_tables(tmp_path, tiny_lut):
    copy = tmp_path / "t.parquet"
    copy_lut(tiny_lut, copy)
    before = copy.read_bytes()
    result = runner.invoke(app, ["profile", "--backend", "ort-cpu", "--family", "tiny", "--resolution", "32",
                                 "--out", str(copy)])
    assert result.exit_code == 1 and "resolution" in result.output
    assert copy.read_bytes() == before


@pytest.mark.parametrize("args,message", [
    (["profile", "--backend", "ort-cpu", "--family", "resnet", "--resolution", "32", "--out", "x.parquet"],
     "unknown family"),
    (["lut", "show", "missing.parquet"], "no LUT"),
    (["lut", "validate", "missing.parquet"], "no LUT"),
    (["lut", "validate", "missing.parquet", "--samples", "0"], "Invalid value for '--samples'"),
    (["lut", "validate", "missing.parquet", "--samples", "-3"], "Invalid value for '--samples'"),
    (["device", "serve", "--port", "99999"], "Invalid value for '--port'"),
    (["train", "--family", "tiny", "--epochs", "1", "--out", "x", "--device", "tpu"], "unknown --device 'tpu'"),
])
def test_cli_errors_are_one_line(args, message):
    result = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code in (1, 2)  # 2: a value the option itself refuses
    assert message in " ".join(result.output.split()) and "Traceback" not in result.output


def test_cli_show_and_validate_json(tmp_path, tiny_lut):
    shown = runner.invoke(app, ["lut", "show", str(tiny_lut), "--heatmap", str(tmp_path / "h.png")])
    assert shown.exit_code == 0, shown.output
    assert (tmp_path / "h.png").stat().st_size > 1000
    result = runner.invoke(app, ["lut", "validate", str(tiny_lut), "--samples", "4", "--seed", "3", "--json",
                                 "--png", str(tmp_path / "s.png")])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(report) == {"n", "within_5pct", "within_10pct", "mape", "rmse_ms", "spearman", "bias_pct", "noisy",
                           "max_spread_pct"}
    assert report["n"] == 4 and 0 <= report["within_10pct"] <= 1


def test_validation_keeps_each_networks_median_window(tiny_lut, monkeypatch):
    """A batch window that ran slow, and one that read fast, do not count against the
    predictor; networks whose windows disagree get two more."""
    import hwadapt.lut.validate as validation
    import hwadapt.measure.windows as measure

    windows = []

    def fake_measure(agent, archs, nets=None, plan=None, probe=None):
        windows.append(len(windows) + 1)
        # the first batch's windows are 1, 4, 5, 8 and 9 (alternate passes run the batches in
        # reverse): in 1 and 5 the host was busy, in 4 the probe was slowed more than the models
        factor = {1: 1.3, 4: 0.8, 5: 1.2}.get(windows[-1], 1.0)
        return [Measurement(median_ms=factor * (1 + i), p10_ms=0, p90_ms=0, std_ms=0, n=1, rounds=1, raw_ms=1 + i,
                            probe_ms=1 / factor) for i, _ in enumerate(archs)]

    monkeypatch.setattr(measure, "measure_archs", fake_measure)
    _, table = validation.validate(LatencyPredictor.load(tiny_lut), samples=6, seed=0, batch_size=3)
    assert measure.WINDOWS == 5 and len(windows) == 2 * measure.WINDOWS + 2
    assert table["measured_ms"].tolist() == [1.0, 2.0, 3.0, 1.0, 2.0, 3.0]
    assert table["windows"].tolist() == [7] * 3 + [5] * 3
    assert table["pass_spread_pct"].round(6).tolist() == [50.0] * 3 + [0.0] * 3
    first = table.iloc[0]  # its windows, in the order measured: 1, 4, 5, 8, 9, then two more
    assert json.loads(first["window_ms"]) == pytest.approx([1.3, 0.8, 1.2, 1.0, 1.0, 1.0, 1.0])
    assert json.loads(first["window_probe_ms"]) == pytest.approx([1 / 1.3, 1 / 0.8, 1 / 1.2, 1.0, 1.0, 1.0, 1.0])
    assert json.loads(first["window_raw_ms"]) == [1.0] * 7


def test_profile_takes_grid_overrides(tmp_path, tiny_family):
    """A table measured on another grid than the family's (as the width-multiplier benchmark
    builds) records that grid and holds exactly its points."""
    path = tmp_path / "coarse.parquet"
    with make_agent("ort-cpu") as agent:
        meta = build_lut(agent, tiny_family, 16, path, calibration_models=3, plan=FAST,
                         grid=COARSE)
    assert {k: meta.grid[k] for k in COARSE} == COARSE
    _, frame = load_lut(path)
    planned = {job.key for job in table_jobs(tiny_family, 16, 10, 3, 0, meta.grid)}
    assert {row_key(r) for r in frame.to_dict("records")} == planned
    assert len(planned) < len(table_jobs(tiny_family, 16, 10, 3, 0))


def test_calibration_count_follows_the_input_side(tmp_path, tiny_family, monkeypatch):
    """Without a count, a table measures the resolution's default number of networks
    (fewer for large inputs, whose windows cost the most) and records it."""
    assert default_calibration_models(32) == calibration_set.CALIBRATION_MODELS
    assert default_calibration_models(224) == calibration_set.LARGE_INPUT_MODELS < calibration_set.CALIBRATION_MODELS
    monkeypatch.setattr(calibration_set, "LARGE_INPUT_PX", 16)
    monkeypatch.setattr(calibration_set, "LARGE_INPUT_MODELS", 4)
    with make_agent("ort-cpu") as agent:
        meta = build_lut(agent, tiny_family, 16, tmp_path / "t.parquet", plan=FAST, grid=COARSE)
    assert meta.calibration_draw["count"] == 4 and meta.calibration["models"] <= 4


def test_a_network_file_is_written_once_per_build(tmp_path, tiny_family):
    """A calibration network measured in several windows is exported once; an op's file
    is its batch slot's."""
    job = Job(("model",), arch=build(tiny_family, resolution=16, num_classes=10))
    first = job.write(tmp_path, "onnx", 0)
    stamp = first.stat().st_mtime_ns
    assert job.write(tmp_path, "onnx", 5) == first and first.stat().st_mtime_ns == stamp
    op_job = table_jobs(tiny_family, 16, 10, 1, 0)[0]
    assert op_job.write(tmp_path, "onnx", 3).name == "m3.onnx"


def test_op_rows_stop_at_their_cap_and_networks_do_not(tmp_path, tiny_family):
    """Op rows take at most OP_MAX_ROUNDS rounds a window; whole networks the plan's."""
    long_plan = MeasurePlan(round_ms=0.5, min_rounds=OP_MAX_ROUNDS + 4, max_rounds=OP_MAX_ROUNDS + 8, warmup_runs=1)
    with make_agent("ort-cpu") as agent:
        build_lut(agent, tiny_family, 16, tmp_path / "t.parquet", calibration_models=3, plan=long_plan,
                  grid=COARSE)
    _, frame = load_lut(tmp_path / "t.parquet")
    ops, nets = frame[frame["kind"] != "model"], frame[frame["kind"] == "model"]
    assert (ops["rounds"] == OP_MAX_ROUNDS).all()
    assert (nets["rounds"] >= OP_MAX_ROUNDS + 4).all()


def test_ops_and_networks_are_batched_apart_in_order(tiny_family):
    jobs = table_jobs(tiny_family, 16, 10, 12, 0)
    shuffled = [jobs[i] for i in np.random.default_rng(0).permutation(len(jobs))]
    batches = _batches(shuffled, 5)
    assert all(len({job.op is None for job in batch}) == 1 for batch in batches)
    flat = [job for batch in batches for job in batch]
    for is_net in (False, True):
        assert [j for j in flat if (j.op is None) == is_net] == [j for j in shuffled if (j.op is None) == is_net]
    kinds = [batch[0].op is None for batch in batches]
    assert kinds[0] is False and kinds[-1] is False and any(kinds)  # networks spread among the ops


def test_a_table_whose_parquet_was_deleted_resumes_from_its_journal(tmp_path, tiny_family):
    """Killed mid-build, the .parquet deleted to start again, the command re-run: the table
    resumes from its sidecar and journal, keeping every measured row, and says so; a
    journal alone is moved aside (nothing lost) and the table starts afresh."""
    path = tmp_path / "t.parquet"
    with pytest.raises(KeyboardInterrupt):
        build_lut(InterruptingAgent(after=20), tiny_family, 16, path, calibration_models=3, plan=FAST,
                  batch_size=4, grid=COARSE)
    measured = len(read_journal(path))
    assert measured > 0 and journal_path(path).exists()
    path.unlink()
    result = runner.invoke(app, ["profile", "--backend", "ort-cpu", "--family", tiny_family, "--resolution", "16",
                                 "--out", str(path), "--calibration-models", "3"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "from its sidecar and journal" in result.output and f"{measured} more in its journal" in result.output
    path.unlink()
    sidecar_path(path).unlink()
    journal_path(path).write_text('{"kind": "conv"}\n')
    result = runner.invoke(app, ["profile", "--backend", "ort-cpu", "--family", tiny_family, "--resolution", "16",
                                 "--out", str(path), "--calibration-models", "3"], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "starting afresh" in result.output
    assert list(tmp_path.glob("t.journal.jsonl.orphan-*"))


@pytest.mark.parametrize("backend", sorted(b for b in AGENTS if not b.startswith("android-")))
def test_every_desktop_agent_profiles_resumes_and_validates(tmp_path, tiny_family, backend):
    """On each desktop agent: a build interrupted part-way resumes to the planned table
    (no row lost or measured twice), and `hwadapt lut validate` measures it end to end."""
    path = tmp_path / f"{backend}.parquet"
    with pytest.raises(KeyboardInterrupt):
        build_lut(InterruptingAgent(15, backend), tiny_family, 16, path, calibration_models=3, plan=FAST, batch_size=4,
                  grid=COARSE)
    with make_agent(backend) as agent:
        meta = build_lut(agent, tiny_family, 16, path, calibration_models=3, plan=FAST, grid=COARSE)
    _, frame = load_lut(path)
    keys = [row_key(r) for r in frame.to_dict("records")]
    assert len(keys) == len(set(keys)) and set(keys) == {job.key for job in plan_jobs(meta)}
    assert meta.backend == backend and meta.fingerprint["backend"] == backend
    result = runner.invoke(app, ["lut", "validate", str(path), "--samples", "2", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["n"] == 2
