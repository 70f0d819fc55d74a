"""The android-cpu/android-gpu agents end to end through the loopback ADB device."""
from __future__ import annotations

import logging

import pytest
from adb_shell.auth.keygen import keygen

from device_agents import make_agent
from device_agents.android.errors import (BenchmarkOutputError, BenchmarkToolError, DeviceDisconnected,
                                          DeviceNotFound, GpuDelegateUnavailable)
from device_agents.loopback import DeviceProfile, DisconnectPlan, LoopbackDevice
from hwadapt.families import build
from hwadapt.materialize import export

NASTY_NAME = "my model; rm -rf x.tflite"


@pytest.fixture(scope="module")
def key(tmp_path_factory):
    path = tmp_path_factory.mktemp("key") / "adbkey"
    keygen(str(path))
    return path


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    arch = build("mobilenet_v1", width=0.25, resolution=32, num_classes=10)
    return export(arch, "tflite", tmp_path_factory.mktemp("models") / NASTY_NAME)


@pytest.fixture(scope="module")
def device():
    with LoopbackDevice(port=0) as dev:
        yield dev


def _agent(device, key, backend="android-cpu", **options):
    return make_agent(backend, threads=1, device=f"tcp:{device.serial}", key_path=key, **options)


def test_agent_measures_and_cleans_up(device, key, model):
    canary = device.sandbox / "x"
    canary.write_text("must survive")
    with _agent(device, key) as agent:
        fingerprint = agent.fingerprint()
        assert fingerprint["device"] == "Loopback Device" and fingerprint["abi"]
        assert fingerprint["backend"] == "android-cpu" and fingerprint["delegate"] == "xnnpack"
        assert len(fingerprint["runtime_version"]) == len("sha256:") + 16 and fingerprint["taskset"]
        session = agent.open(model)
        pushed = list(device.sandbox.glob("hwadapt-*/*"))
        assert [p.name for p in pushed] == [f"1_{NASTY_NAME}"]
        assert pushed[0].read_bytes() == model.read_bytes()
        times = [session.time_round(10) for _ in range(2)]
        assert all(0 < t < 1000 for t in times)
        assert session.last.regular.count == 10  # --min_secs=0: exactly the runs asked for
        session.close()
        assert not pushed[0].exists()
    assert canary.read_text() == "must survive"  # the `; rm -rf x` in the name stayed a name
    assert not list(device.sandbox.glob("hwadapt-*"))


def test_conditions_report_temperature_and_frequency(device, key):
    with _agent(device, key) as agent:
        conditions = agent.conditions()
    assert conditions["temperature_c"] >= DeviceProfile().ambient_c - 1
    assert conditions["cpu_freq_khz"] > 0 and conditions["throttled"] is False


def test_hot_device_is_flagged_throttled(key):
    profile = DeviceProfile(ambient_c=80.0, throttle_c=70.0, thermal_tau_s=1000.0)
    with LoopbackDevice(port=0, profile=profile) as dev, _agent(dev, key, max_cooldown_s=0.0) as agent:
        assert agent.conditions()["throttled"] is True  # scaling_max_freq below cpuinfo_max_freq


def test_gpu_backend_refuses_silent_cpu_fallback(device, key, model):
    with _agent(device, key, backend="android-gpu") as agent:
        assert agent.fingerprint()["delegate"] == "gpu"
        session = agent.open(model)
        with pytest.raises(GpuDelegateUnavailable, match="GPU delegate unavailable"):
            session.time_round(5)


def test_energy_from_the_simulated_fuel_gauge(device, key, model):
    with _agent(device, key, energy_secs=1.5) as agent:
        assert agent.energy_mj(agent.open(model)) > 0


def test_no_energy_while_charging(key, model, caplog):
    with LoopbackDevice(port=0, profile=DeviceProfile(charging=True)) as dev, _agent(dev, key) as agent:
        with caplog.at_level(logging.WARNING):
            assert agent.energy_mj(agent.open(model)) is None
    assert "Charging" in caplog.text and "energy left empty" in caplog.text


def test_user_supplied_benchmark_binary_is_pushed(device, key, model, tmp_path):
    binary = tmp_path / "benchmark_model"
    binary.write_bytes((device.sandbox / "benchmark_model").read_bytes())
    with _agent(device, key, benchmark_binary=binary) as agent:
        assert agent.benchmark_path.startswith(agent.workdir)
        assert agent.open(model).time_round(3) > 0


def test_missing_or_broken_benchmark_binary(key, model, tmp_path):
    with LoopbackDevice(port=0) as dev:
        (dev.sandbox / "benchmark_model").unlink()
        with pytest.raises(BenchmarkToolError, match="no benchmark_model at /data/local/tmp/benchmark_model"):
            _agent(dev, key)
        assert not list(dev.sandbox.glob("hwadapt-*"))  # a failed start leaves nothing behind
        with pytest.raises(BenchmarkToolError, match="not found"):
            _agent(dev, key, benchmark_binary=tmp_path / "nope")
        (dev.sandbox / "benchmark_model").write_text("#!/bin/sh\necho hi\n")
        (dev.sandbox / "benchmark_model").chmod(0o644)
        with pytest.raises(BenchmarkToolError, match="not executable"):
            _agent(dev, key)
        (dev.sandbox / "benchmark_model").chmod(0o755)
        with _agent(dev, key) as agent:
            with pytest.raises(BenchmarkOutputError, match="raw output saved") as info:
                agent.open(model).time_round(3)
        assert info.value.raw.strip() == "hi"


def test_no_device_is_a_clear_error(monkeypatch):
    monkeypatch.setattr("device_agents.android.connection.usb_serials", lambda: [])
    with pytest.raises(DeviceNotFound, match="no Android device"):
        make_agent("android-cpu")
    monkeypatch.setattr("device_agents.android.connection.usb_serials", lambda: ["A", "B"])
    with pytest.raises(DeviceNotFound, match="2 devices attached"):
        make_agent("android-cpu")


def test_timing_survives_random_disconnects(key, model):
    plan = DisconnectPlan(count=8, min_packets=3, max_packets=8, seed=1)
    # Drops this close together can hit one operation every time; with as many retries as
    # drops, every drop is survivable whatever the packet timing, so the outcome is fixed.
    with LoopbackDevice(port=0, disconnects=plan) as dev, _agent(dev, key, retries=plan.count) as agent:
        session = agent.open(model)
        times = [session.time_round(3) for _ in range(6)]
        assert plan.done == plan.count and agent.conn.reconnects >= plan.count
        assert all(t > 0 for t in times)


def test_a_dead_device_ends_in_a_clear_error(key, model):
    with LoopbackDevice(port=0) as dev:
        agent = _agent(dev, key, retries=1)
    with pytest.raises(DeviceDisconnected, match="no connection to tcp:127.0.0.1"):
        agent.open(model)
