"""Fanning work out (issue 33): the executors, NetAdapt's proposals on Ray workers against
the serial run, a worker dying mid-iteration and the re-run that resumes, Ray left
unimported without --workers, profiling several backends, and one-line errors.

Ray tests start one small local instance (2 CPUs) each and shut it down."""
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from hwadapt.adapt import netadapt
from hwadapt.cli.main import app
from hwadapt.cluster import ExecutorError, SerialExecutor, TaskContext, WorkerLost, make_executor

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]
ADAPT = ["--short-steps", "3", "--long-epochs", "1", "--first-step", "0.2", "--decay", "0.9", "--batch-size", "64",
         "--data", "digits", "--budget-ratio", "0.8", "--threads", "1"]
FAMILY_COLUMNS = ["iteration", "stage", "group", "predicted_ms", "holdout_accuracy", "test_accuracy", "arch"]


def _adapt(checkpoint, lut, out, *extra):
    return runner.invoke(app, ["adapt", "--checkpoint", str(checkpoint), "--lut", str(lut), "--out", str(out),
                               *ADAPT, *extra])


def _family(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "family.csv")[FAMILY_COLUMNS]


def _counting(builds: list, real=netadapt.build_proposal):
    """``build_proposal`` that records (iteration, group) of each proposal it builds (the
    iteration is in the task's seed: job seed 0 + iteration * 1_009 + index)."""

    def build(data, task, context):
        builds.append((task.seed // 1_009, task.group))
        return real(data, task, context)

    return build


@pytest.fixture(scope="module")
def serial_run(toy_checkpoint, toy_lut, tmp_path_factory):
    """The serial run, and the proposals it built."""
    out, builds = tmp_path_factory.mktemp("serial") / "run", []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(netadapt, "build_proposal", _counting(builds))
        result = _adapt(toy_checkpoint, toy_lut, out)
    assert result.exit_code == 0, result.output
    return out, builds


@pytest.fixture
def ray_shut():
    """Ray (the `cluster` extra) is there, and shut down after the test even when it fails
    half-way."""
    ray = pytest.importorskip("ray")
    yield

    if ray.is_initialized():
        ray.shutdown()


def _square(shared: int, task: int, context: TaskContext) -> int:
    return shared + task * task


def test_the_serial_executor_runs_every_task_in_order_here():
    executor = make_executor()
    assert isinstance(executor, SerialExecutor)
    with executor:
        assert list(executor.map(_square, 10, [1, 2, 3])) == [(0, 11), (1, 14), (2, 19)]
    with pytest.raises(ExecutorError, match="at least 1"):
        make_executor(0)


def test_ray_is_not_imported_without_workers(toy_checkpoint, toy_lut, tmp_path):
    """A whole serial `hwadapt adapt` run, in a fresh interpreter, never imports Ray."""
    script = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from hwadapt.cli.main import app\n"
        f"args = {['adapt', '--checkpoint', str(toy_checkpoint), '--lut', str(toy_lut), '--out', str(tmp_path / 'run'), *ADAPT, '--max-iters', '1']!r}\n"
        "result = CliRunner().invoke(app, args)\n"
        "assert result.exit_code == 0, result.output\n"
        "print('RAY' if 'ray' in sys.modules else 'NO-RAY')\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'tests'}"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "NO-RAY"


def test_netadapt_on_two_ray_workers_keeps_the_serial_family(serial_run, toy_checkpoint, toy_lut, tmp_path, ray_shut):
    out = tmp_path / "ray"
    result = _adapt(toy_checkpoint, toy_lut, out, "--workers", "2")
    assert result.exit_code == 0, result.output
    pd.testing.assert_frame_equal(_family(serial_run[0]), _family(out))


def test_a_worker_dying_stops_in_one_line_and_a_rerun_resumes(serial_run, toy_checkpoint, toy_lut, tmp_path,
                                                              monkeypatch, ray_shut):
    """The second proposal's worker dies (twice: Ray runs it once more): the run stops in
    one line with the proposals that finished saved; a serial re-run builds only the
    others -- none twice, none lost -- and the family is the serial run's."""
    real = netadapt.build_proposal

    def dies_on_the_second(data, task, context):  # a closure: shipped to the workers by value
        if task.index == 1:
            os._exit(1)
        return real(data, task, context)

    monkeypatch.setattr(netadapt, "build_proposal", dies_on_the_second)
    out = tmp_path / "run"
    result = _adapt(toy_checkpoint, toy_lut, out, "--workers", "2")
    assert result.exit_code == 1, result.output
    assert "worker died" in result.output and "re-run the same command to resume" in result.output
    assert "Traceback" not in result.output and not (out / "report.json").exists()
    saved = {path.parent.name for path in (out / "proposals" / "001").glob("*/result.json")}

    builds = []
    monkeypatch.setattr(netadapt, "build_proposal", _counting(builds))
    result = _adapt(toy_checkpoint, toy_lut, out)
    assert result.exit_code == 0, result.output
    serial_out, serial_builds = serial_run
    first = [group for iteration, group in builds if iteration == 1]
    assert not saved & set(first) and len(first) == len(set(first))  # none built twice
    assert saved | set(first) == {group for iteration, group in serial_builds if iteration == 1}  # none lost
    assert [b for b in builds if b[0] > 1] == [b for b in serial_builds if b[0] > 1]
    pd.testing.assert_frame_equal(_family(serial_out), _family(out))


def test_an_unreachable_ray_address_is_one_line(toy_checkpoint, toy_lut, tmp_path, ray_shut):
    out = tmp_path / "run"
    result = _adapt(toy_checkpoint, toy_lut, out, "--ray-address", "127.0.0.1:9")
    assert result.exit_code == 1, result.output
    assert "nothing answers at 127.0.0.1:9" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1 and not out.exists()


def test_worker_lost_is_a_user_error():
    from hwadapt.errors import USER_ERRORS

    assert issubclass(WorkerLost, USER_ERRORS)


def test_targets_are_grouped_by_the_device_they_measure_on(tmp_path):
    from hwadapt.lut.fleet import FleetError, by_device, plan_targets

    targets = plan_targets(["ort-cpu", "android-cpu", "litert-cpu", "android-gpu"], ["usb:A", "tcp:h:5555"],
                           tmp_path, "tiny", 16)
    assert [t.out.name for t in targets] == [
        "ort-cpu_tiny_16.parquet", "android-cpu_usb-A_tiny_16.parquet", "android-cpu_tcp-h-5555_tiny_16.parquet",
        "litert-cpu_tiny_16.parquet", "android-gpu_usb-A_tiny_16.parquet", "android-gpu_tcp-h-5555_tiny_16.parquet"]
    groups = [[(t.backend, t.device) for t in group] for group in by_device(targets)]
    assert groups == [[("ort-cpu", None), ("litert-cpu", None)],  # one CPU: the desktop backends take turns
                      [("android-cpu", "usb:A"), ("android-gpu", "usb:A")],
                      [("android-cpu", "tcp:h:5555"), ("android-gpu", "tcp:h:5555")]]
    assert plan_targets(["ort-cpu"], [], tmp_path / "one.parquet", "tiny", 16)[0].out == tmp_path / "one.parquet"
    with pytest.raises(FleetError, match="must be a folder"):
        plan_targets(["ort-cpu", "litert-cpu"], [], tmp_path / "x.parquet", "tiny", 16)
    with pytest.raises(FleetError, match="names a phone"):
        plan_targets(["ort-cpu"], ["usb:A"], tmp_path, "tiny", 16)


def test_profile_over_two_backends_writes_one_lut_each(tiny_family, tmp_path, monkeypatch, ray_shut):
    """Two backends, two tables, on Ray workers: one task, since both measure this CPU
    (a coarse grid keeps it short)."""
    from conftest import FAST_PLAN

    from hwadapt.lut.fleet import ProfileSpec, plan_targets, profile_group, profile_targets
    from hwadapt.lut.store import load_lut

    def with_test_families(spec, group, context):  # a closure: shipped to the workers by value
        import conftest  # noqa: F401 -- registers the test families in a worker
        return profile_group(spec, group, context)

    monkeypatch.setattr("hwadapt.lut.fleet.profile_group", with_test_families)
    monkeypatch.setenv("PYTHONPATH", f"{ROOT}:{ROOT / 'tests'}")  # the workers' (Ray passes the environment on)
    targets = plan_targets(["ort-cpu", "litert-cpu"], [], tmp_path, tiny_family, 8)
    spec = ProfileSpec(tiny_family, 8, calibration_models=3, plan=FAST_PLAN, grid={"dense_until": 8, "points": 2})
    with make_executor(2) as executor:
        summaries = list(profile_targets(spec, targets, executor))
    assert [s["backend"] for s in summaries] == ["ort-cpu", "litert-cpu"]
    for backend in ("ort-cpu", "litert-cpu"):
        meta, frame = load_lut(tmp_path / f"{backend}_{tiny_family}_8.parquet")
        assert meta.backend == backend and (frame["kind"] == "model").sum() == 3


def test_profile_cli_refuses_mismatched_targets_in_one_line(tmp_path):
    result = runner.invoke(app, ["profile", "--backend", "ort-cpu", "--backend", "litert-cpu", "--family", "tiny",
                                 "--resolution", "8", "--out", str(tmp_path / "x.parquet")])
    assert result.exit_code == 1 and "--out must be a folder" in result.output
    result = runner.invoke(app, ["profile", "--backend", "ort-cpu", "--device", "usb:A", "--family", "tiny",
                                 "--resolution", "8", "--out", str(tmp_path / "x.parquet")])
    assert result.exit_code == 1 and "names a phone" in result.output and not list(tmp_path.iterdir())
