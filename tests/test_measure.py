"""The measurement protocol: drift correction logic and real-session sanity."""
from pathlib import Path

import numpy as np
import pytest

from device_agents import AgentError, make_agent
from device_agents.base import DeviceAgent, ModelSession
from hwadapt.families import build
from hwadapt.materialize import export
from hwadapt.measure import MeasurePlan, Measurement, measure_archs, median_window, settled, window_spread_pct
from hwadapt.measure.protocol import default_plan, lower_envelope, measure_sessions


class Machine:
    """A host whose speed changes in steps every few rounds, as a shared machine does."""

    def __init__(self, steps):
        self.steps, self.calls = steps, 0

    def factor(self):
        self.calls += 1
        return self.steps[(self.calls // 5) % len(self.steps)]


class FakeSession(ModelSession):
    def __init__(self, machine, base_ms, spikes=()):
        self.machine, self.base_ms, self.spikes, self.rounds = machine, base_ms, set(spikes), 0
        self.statistics = set()

    def time_round(self, runs, statistic="median"):
        self.rounds += 1
        self.statistics.add(statistic)
        spike = 3.0 if self.rounds in self.spikes else 1.0
        return self.base_ms * self.machine.factor() * spike


class FakeAgent(DeviceAgent):
    backend, model_format = "fake", "onnx"

    def fingerprint(self):
        return {}

    def open(self, model_path):
        raise NotImplementedError


def test_probe_correction_removes_step_slowdowns():
    machine = Machine([1.0, 1.4, 1.0, 1.25])
    plan = MeasurePlan(fixed_runs=1, warmup_runs=0, min_rounds=12, max_rounds=12, estimator="envelope")
    model = FakeSession(machine, 2.0, spikes={4, 9})
    probe = FakeSession(machine, 1.0)
    [measured] = measure_sessions(FakeAgent(), [model], plan, probe, reference_ms=1.0)
    # the model is exactly twice the probe whatever the host did
    assert measured.median_ms == pytest.approx(2.0, rel=0.1)
    uncorrected = lower_envelope([2.0 * f for f in (1.0, 1.4, 1.25)])
    assert measured.raw_ms >= 2.0 and uncorrected >= 2.0
    assert measured.rounds == 12 and measured.n == 12


def test_fastest_estimator_keeps_the_fastest_round_on_the_probe_time_base():
    machine = Machine([1.3, 1.0, 1.6])
    plan = MeasurePlan(fixed_runs=1, warmup_runs=0, min_rounds=12, max_rounds=12)
    model, probe = FakeSession(machine, 2.0, spikes={1, 2, 3}), FakeSession(machine, 1.0)
    [measured] = measure_sessions(FakeAgent(), [model], plan, probe, reference_ms=0.5)
    assert model.statistics == probe.statistics == {"min"}  # rounds report their fastest inference
    assert measured.raw_ms == pytest.approx(2.0) and measured.probe_ms == pytest.approx(1.0)
    assert measured.median_ms == pytest.approx(1.0)  # 2x the probe, whose reference is 0.5


def test_min_inferences_adds_rounds_up_to_max_rounds():
    def rounds_taken(**limits):
        plan = MeasurePlan(fixed_runs=4, warmup_runs=0, min_rounds=3, **limits)
        [measured] = measure_sessions(FakeAgent(), [FakeSession(Machine([1.0]), 2.0)], plan)
        return measured.rounds, measured.n

    assert rounds_taken(max_rounds=30, min_inferences=0) == (3, 12)  # steady rounds: stable at min_rounds
    assert rounds_taken(max_rounds=30, min_inferences=40) == (10, 40)
    assert rounds_taken(max_rounds=6, min_inferences=40) == (6, 24)  # max_rounds still caps


def test_desktop_rounds_report_median_or_fastest_inference(tmp_path):
    model = export(build("mobilenet_v1", width=0.25, resolution=32, num_classes=10), "onnx", tmp_path / "m.onnx")
    with make_agent("ort-cpu") as agent:
        assert default_plan(agent).estimator == "fastest" and agent.fingerprint()["clock"] == "wall"
        session = agent.open(model)
        times = session.time_runs(20)
        assert times.shape == (20,) and (times > 0).all()
        session.time_runs = lambda runs: np.array([3.0, 1.0, 2.0, 5.0])[:runs]  # fixed times: no host noise
        assert (session.time_round(4, "min"), session.time_round(4, "median")) == (1.0, 2.5)
    with pytest.raises(AgentError, match="unknown clock"):
        make_agent("litert-cpu", clock="auto")
    with pytest.raises(AgentError, match="single-threaded"):
        make_agent("ort-cpu", threads=2, clock="thread")


def test_lower_envelope_ignores_slow_rounds():
    assert lower_envelope([1.0, 1.0, 1.0, 5.0, 9.0, 1.0]) == pytest.approx(1.0)


def window(ms, probe_ms=None, reference_ms=None):
    return Measurement(median_ms=ms, p10_ms=ms, p90_ms=ms, std_ms=0.0, n=1, rounds=1, raw_ms=ms, probe_ms=probe_ms,
                       reference_ms=reference_ms)


def test_median_window_is_a_measured_window():
    three = [window(1.3), window(1.0), window(0.8)]
    assert median_window(three) is three[1]
    assert median_window(three[:2]).median_ms == 1.0  # of an even count, the lower middle
    assert window_spread_pct(three) == pytest.approx(50.0)
    assert not settled([m.median_ms for m in three], 5.0)
    assert settled([1.3, 1.0, 0.8, 1.02, 0.99], 5.0)  # 0.99 and 1.02 beside the median


def test_windows_whose_probe_strayed_are_measured_again_and_set_aside(monkeypatch):
    """A window whose probe ran over GATE_PCT from its reference is left out of the figure:
    its correction leans on how much of the probe's slow-down the network shared (here
    half, so a window with the probe 10% slow reads the network 5% fast)."""
    import hwadapt.measure.windows as measure

    probe_levels = []

    def fake_measure(agent, archs, nets=None, plan=None, probe=None):
        probe_ms = [1.0, 1.1, 1.1, 1.01, 0.99][len(probe_levels)]
        probe_levels.append(probe_ms)
        raw = 2.0 * (1 + (probe_ms - 1) / 2)
        return [window(raw / probe_ms, probe_ms=probe_ms, reference_ms=1.0) for _ in archs]

    monkeypatch.setattr(measure, "measure_archs", fake_measure)
    arch, probe = build("mobilenet_v1", width=0.25, resolution=32, num_classes=10), measure.Probe(None, 1.0)
    [gated] = measure.measure_in_windows(FakeAgent(), [arch], probe=probe, windows=3)
    assert measure.GATE_PCT == 4.0 and len(gated) == 5  # two of the first three strayed: two more
    assert [round(m.probe_deviation_pct()) for m in gated] == [0, 10, 10, 1, -1]
    assert measure.median_window(gated).median_ms == pytest.approx(2.0, rel=0.01)
    probe_levels.clear()
    [ungated] = measure.measure_in_windows(FakeAgent(), [arch], probe=probe, windows=3, gate_pct=None)
    assert len(ungated) == 3 and measure.median_window(ungated, gate_pct=None).median_ms == pytest.approx(1.909, rel=1e-3)

    strayed = [window(1.9, probe_ms=1.1, reference_ms=1.0), window(1.95, probe_ms=1.05, reference_ms=1.0)]
    within = [window(2.0, probe_ms=1.0, reference_ms=1.0), window(2.02, probe_ms=0.97, reference_ms=1.0)]
    assert measure.kept_windows([*strayed, *within]) == [*strayed, *within]  # under MIN_KEPT within: all kept
    assert measure.kept_windows([*strayed, *within, within[0]]) == [*within, within[0]]
    assert window(2.0, probe_ms=1.3).probe_deviation_pct() == 0.0  # on its own probe's time base


class FakeClock:
    """Time that passes only while a window is measured."""

    def __init__(self):
        self.now = 0.0

    def monotonic(self):
        return self.now


def test_a_slow_stretch_is_waited_out_past_max_windows(monkeypatch):
    """Where the probe was out of the gate in nearly every window, windows go on past
    MAX_WINDOWS until MIN_KEPT are inside it, for as long as the call had taken (at most
    the patience)."""
    import hwadapt.measure.windows as measure

    clock, taken = FakeClock(), []

    def fake_measure(agent, archs, nets=None, plan=None, probe=None):
        clock.now += 1.0  # a window takes a second
        probe_ms = levels[len(taken)]
        taken.append(probe_ms)
        return [window(2.0 * (1 + (probe_ms - 1) / 2) / probe_ms, probe_ms=probe_ms, reference_ms=1.0) for _ in archs]

    monkeypatch.setattr(measure, "measure_archs", fake_measure)
    monkeypatch.setattr(measure, "time", clock)
    arch, probe = build("mobilenet_v1", width=0.25, resolution=32, num_classes=10), measure.Probe(None, 1.0)
    levels = [1.15] * 8 + [1.0] * 6
    [waited] = measure.measure_in_windows(FakeAgent(), [arch], probe=probe)
    assert len(waited) == 11 and measure.MAX_WINDOWS == 7  # 8 strayed, then the 3 it needs
    assert measure.median_window(waited).median_ms == pytest.approx(2.0)
    for patience_s, count in ((0.0, 7), (3.0, 10)):  # no patience; 3 s: only two inside by then
        taken.clear()
        [impatient] = measure.measure_in_windows(FakeAgent(), [arch], probe=probe, patience_s=patience_s)
        assert len(impatient) == count and measure.median_window(impatient).median_ms == pytest.approx(1.87, rel=1e-2)
    levels = [1.15] * 30
    taken.clear()
    clock.now = 0.0  # a stretch that does not end: it waits as long as the seven windows took
    assert len(measure.measure_in_windows(FakeAgent(), [arch], probe=probe)[0]) == 14 and clock.now == 14.0


def test_real_sessions_rank_models_by_size():
    """Ratios within one run only: a 4x-wider network is clearly slower."""
    small = build("mobilenet_v1", width=0.25, resolution=32, num_classes=10)
    large = build("mobilenet_v1", width=1.0, resolution=32, num_classes=10)
    with make_agent("ort-cpu") as agent:
        m_small, m_large = measure_archs(agent, [small, large], plan=MeasurePlan(min_rounds=4, max_rounds=8))
    assert m_large.median_ms / m_small.median_ms > 1.5
    assert m_small.p10_ms <= m_small.p90_ms and m_small.n >= 4


def test_unknown_backend_and_unloadable_model_are_clear_errors(tmp_path):
    with pytest.raises(AgentError, match="unknown backend"):
        make_agent("tpu-v9")
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    with pytest.raises(AgentError, match="cannot load"):
        make_agent("ort-cpu").open(Path(broken))
    with pytest.raises(AgentError, match="threads"):
        make_agent("ort-cpu", threads=0)


def test_fingerprints_name_runtime_and_threads():
    for backend in ("ort-cpu", "litert-cpu"):
        fp = make_agent(backend, threads=2).fingerprint()
        assert fp["backend"] == backend and fp["threads"] == 2 and fp["runtime_version"] and fp["device"]
