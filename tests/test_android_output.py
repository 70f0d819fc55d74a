"""Pure parsing/arithmetics of the Android agent: benchmark_model output, hygiene, energy."""
from __future__ import annotations

import math

import numpy as np
import pytest

from device_agents.android.agent import parse_getprop
from device_agents.android.benchmark_output import check_gpu_applied, parse_benchmark_output, parse_stat
from device_agents.android.connection import parse_device, usb_serials
from device_agents.android.energy import PowerSamples, charging_reason, energy_per_inference_mj, parse_samples
from device_agents.android.errors import BenchmarkOutputError, DeviceNotFound, GpuDelegateUnavailable
from device_agents.android.hygiene import CoolDown, DeviceState, fastest_cores_mask, parse_state
from device_agents.loopback.benchmark_model import format_stat

REAL_LOG = """INFO: The input model file size (MB): 4.56118
INFO: Initialized session in 52.687ms.
INFO: Running benchmark for at least 1 iterations and at least 0.5 seconds but terminate if exceeding 150 seconds.
INFO: count=35 first=19105 curr=13909 min=13585 max=19105 avg=14452.5 std=1240

INFO: Running benchmark for at least 50 iterations and at least 1 seconds but terminate if exceeding 150 seconds.
INFO: count=70 first=14941 curr=14066 min=13728 max=16145 avg=14290.9 std=452

INFO: Inference timings in us: Init: 52687, First inference: 19105, Warmup (avg): 14452.5, Inference (avg): 14290.9
"""


def test_real_log_gives_regular_average_in_ms():
    result = parse_benchmark_output(REAL_LOG)
    assert result.warmup.count == 35 and result.regular.count == 70
    assert result.avg_ms == pytest.approx(14.2909)
    assert result.init_ms == pytest.approx(52.687)


@pytest.mark.parametrize("line, count, avg", [
    ("count=1 curr=1234", 1, 1234.0),
    ("count=5 curr=7(all same)", 5, 7.0),
    ("INFO: count=5 curr=7 (all same)", 5, 7.0),
    ("count=3 first=1 curr=2 min=1 max=2000000 avg=1.23457e+06 std=3", 3, 1234570.0),
    ("Timings: count=4 first=10 curr=12 min=9 max=12 avg=10.5 std=1", 4, 10.5),
])
def test_stat_line_forms(line, count, avg):
    stat = parse_stat(line)
    assert stat.count == count and stat.avg_us == pytest.approx(avg)


def test_empty_and_nan_stats():
    assert parse_stat("count=0").count == 0 and math.isnan(parse_stat("count=0").avg_us)
    assert math.isnan(parse_stat("count=0 first=0 curr=0 min=0 max=0 avg=nan std=0").avg_us)
    assert parse_stat("Loaded model x.tflite") is None


def test_zero_regular_runs_is_an_error():
    with pytest.raises(BenchmarkOutputError, match="no regular runs"):
        parse_benchmark_output("count=1 curr=5\ncount=0\n")


def test_unparseable_output_keeps_raw_text():
    raw = "Segmentation fault\nsomething odd happened"
    with pytest.raises(BenchmarkOutputError) as info:
        parse_benchmark_output(raw)
    assert info.value.raw == raw and "something odd happened" in str(info.value)


def test_standin_formatter_round_trips_through_the_parser():
    for samples in ([1500], [7, 7, 7], [1200, 1000, 1100, 999], [2_000_000, 1_000_000]):
        stat = parse_stat(format_stat(samples))
        assert stat.count == len(samples)
        assert stat.avg_us == pytest.approx(float(np.mean(samples)), rel=1e-5)


def test_gpu_failure_and_silent_fallback_are_refused():
    with pytest.raises(GpuDelegateUnavailable, match="Failed to apply GPU delegate"):
        check_gpu_applied("ERROR: Failed to apply GPU delegate.\nERROR: Benchmarking failed.")
    with pytest.raises(GpuDelegateUnavailable, match="did not report"):
        check_gpu_applied(REAL_LOG)  # ran, but nothing says the GPU did the work
    check_gpu_applied("INFO: Explicitly applied GPU delegate, and the model graph will be completely executed")


def test_device_specs():
    assert parse_device("tcp:127.0.0.1:5037").address == "127.0.0.1:5037"
    assert parse_device("usb:ABC123").transport == "usb"
    for bad in ("127.0.0.1:5037", "tcp:host", "usb:", "bt:x"):
        with pytest.raises(DeviceNotFound):
            parse_device(bad)


def test_usb_enumeration_reads_the_adb_interface(tmp_path):
    phone = tmp_path / "1-2"
    (phone / "1-2:1.0").mkdir(parents=True)
    (phone / "serial").write_text("R58M123\n")
    for name, value in zip(("bInterfaceClass", "bInterfaceSubClass", "bInterfaceProtocol"), ("ff", "42", "01")):
        (phone / "1-2:1.0" / name).write_text(value + "\n")
    (tmp_path / "1-2:1.0").symlink_to(phone / "1-2:1.0")
    keyboard = tmp_path / "1-3:1.0"
    keyboard.mkdir()
    for name in ("bInterfaceClass", "bInterfaceSubClass", "bInterfaceProtocol"):
        (keyboard / name).write_text("03\n")
    assert usb_serials(tmp_path) == ["R58M123"]


def test_getprop_parsing():
    props = parse_getprop("[ro.product.model]: [Pixel 7]\n[ro.product.cpu.abi]: [arm64-v8a]\n[empty]: []\n")
    assert props == {"ro.product.model": "Pixel 7", "ro.product.cpu.abi": "arm64-v8a", "empty": ""}


def test_thermal_and_cpufreq_state():
    state = parse_state("T cpu-0-0 48500\nT battery 312\nT bogus abc\nF 0 1000 1800000 1800000\n"
                        "F 4 2000000 2000000 2800000\nF 5 2000000 2400000 2800000\n")
    assert state.zones_c == {"cpu-0-0": 48.5, "battery": 31.2}
    assert state.temperature_c == 48.5
    assert fastest_cores_mask(state, 2) == ([4, 5], "30")
    assert fastest_cores_mask(state, 3) == ([0, 4, 5], "31")
    prime = parse_state("F 0 1 1 1800\nF 1 1 1 1800\nF 2 1 1 2400\nF 3 1 1 2400\nF 4 1 1 3000\n")
    assert fastest_cores_mask(prime, 1) == ([4], "10")
    assert fastest_cores_mask(prime, 2) == ([2, 3, 4], "1c")
    assert state.throttled([4, 5]) and not state.throttled([0])


def test_cool_down_waits_for_the_idle_temperature():
    readings = iter([40.0, 50.0, 47.0, 42.5])
    cooldown = CoolDown(lambda: DeviceState(zones_c={"cpu": next(readings)}), margin_c=3.0, poll_s=0.0)
    assert cooldown.settle()[0].temperature_c == 40.0
    state, _ = cooldown.settle()
    assert state.temperature_c == 42.5  # waited through 50 and 47


def test_energy_units_and_sign_are_inferred():
    idle_ua = np.column_stack([np.full(8, -200_000.0), np.full(8, 3_900_000.0)])  # µA, µV, negative
    load_ua = np.column_stack([np.full(8, -700_000.0), np.full(8, 3_850_000.0)])
    in_ua = energy_per_inference_mj(PowerSamples(idle_ua, load_ua), inference_ms=10.0)
    idle_ma = np.column_stack([np.full(8, 200.0), np.full(8, 3900.0)])  # mA, mV, positive
    load_ma = np.column_stack([np.full(8, 700.0), np.full(8, 3850.0)])
    in_ma = energy_per_inference_mj(PowerSamples(idle_ma, load_ma), inference_ms=10.0)
    expected = (0.7 * 3.85 - 0.2 * 3.9) * 10.0
    assert in_ua == pytest.approx(expected) and in_ma == pytest.approx(expected)


def test_energy_refuses_inconsistent_readings():
    idle = np.column_stack([np.full(8, 300_000.0), np.full(8, 3.9e6)])  # charging while idle
    load = np.column_stack([np.full(8, -500_000.0), np.full(8, 3.9e6)])
    assert energy_per_inference_mj(PowerSamples(idle, load), 1.0) is None
    assert energy_per_inference_mj(PowerSamples(load, idle * -1), 1.0) is None  # no rise under load
    assert energy_per_inference_mj(PowerSamples(idle[:1], load), 1.0) is None


def test_charging_detection_and_sample_parsing():
    assert charging_reason("STATUS Charging\n") == "battery status is Charging"
    assert "usb" in charging_reason("STATUS Discharging\nONLINE /sys/class/power_supply/usb/online 1\n")
    assert charging_reason("STATUS Discharging\nONLINE /sys/class/power_supply/usb/online 0\n") is None
    samples, bench = parse_samples("S -1 2\nS -1 2\nLOAD\nS -3 2\nBENCHMARK_RC=0\ncount=1 curr=5\n")
    assert len(samples.idle) == 2 and len(samples.load) == 1 and bench.startswith("0\n")
