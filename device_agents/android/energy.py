"""Energy per inference from the phone's fuel gauge (no external meter).

``current_now``/``voltage_now`` are sampled every 250 ms on the device, first while idle,
then while ``benchmark_model`` loops for a fixed time. Sign and units are inferred
(kernel ABI: µA/µV, negative while discharging; vendors differ), and
``E = (mean P_load - mean P_idle) x mean inference time``. While charging the gauge sees
the charger's net current, so no number is given.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

SUPPLY = "/sys/class/power_supply"
CHARGE_SCRIPT = (f"echo \"STATUS $(cat {SUPPLY}/battery/status 2>/dev/null)\"; "
                 f"for s in {SUPPLY}/*/online; do echo \"ONLINE $s $(cat $s 2>/dev/null)\"; done")
SAMPLE_FUNCTION = (f"sample() {{ echo \"S $(cat {SUPPLY}/battery/current_now) $(cat {SUPPLY}/battery/voltage_now)\"; }}; ")


def charging_reason(text: str) -> str | None:
    """Why the battery reading would be distorted (charger present), or None."""
    for line in text.splitlines():
        parts = line.split()
        if parts[:1] == ["STATUS"] and len(parts) > 1 and parts[1] in ("Charging", "Full"):
            return f"battery status is {parts[1]}"
        if parts[:1] == ["ONLINE"] and len(parts) == 3 and parts[2] == "1":
            return f"{parts[1].split('/')[-2]} power supply is online"
    return None


def sampling_script(benchmark_command: str, idle_samples: int) -> str:
    """Idle samples, then samples while the benchmark runs in the background, then its output."""
    return (SAMPLE_FUNCTION
            + f"i=0; while [ $i -lt {idle_samples} ]; do sample; sleep 0.25; i=$((i+1)); done; "
            + "echo LOAD; out=$(mktemp 2>/dev/null || echo /data/local/tmp/.hwadapt-energy.log); "
            + f"{benchmark_command} > \"$out\" 2>&1 & pid=$!; "
            + "while kill -0 $pid 2>/dev/null; do sample; sleep 0.25; done; wait $pid; "
            + "echo BENCHMARK_RC=$?; cat \"$out\"; rm -f \"$out\"")


@dataclass(frozen=True)
class PowerSamples:
    idle: np.ndarray  # rows of (current, voltage) in raw device units
    load: np.ndarray


def parse_samples(text: str) -> tuple[PowerSamples, str]:
    """The samples and the benchmark output that follows them."""
    idle, load, phase = [], [], None
    head, _, bench = text.partition("BENCHMARK_RC=")
    for line in head.splitlines():
        parts = line.split()
        if parts == ["LOAD"]:
            phase = "load"
        elif len(parts) == 3 and parts[0] == "S":
            try:
                row = (float(parts[1]), float(parts[2]))
            except ValueError:
                continue
            (load if phase == "load" else idle).append(row)
    return PowerSamples(np.array(idle).reshape(-1, 2), np.array(load).reshape(-1, 2)), bench


def _to_amps(current: np.ndarray) -> np.ndarray:
    """µA by the kernel ABI; magnitudes below 10^4 are taken as mA (some vendors)."""
    scale = 1e-3 if np.median(np.abs(current)) < 1e4 else 1e-6
    return current * scale


def _to_volts(voltage: np.ndarray) -> np.ndarray:
    typical = np.median(np.abs(voltage))
    return voltage * (1e-6 if typical > 1e5 else 1e-3 if typical > 100 else 1.0)


def energy_per_inference_mj(samples: PowerSamples, inference_ms: float) -> float | None:
    """``(P_load - P_idle) x t`` in mJ, or None when the readings cannot support a number."""
    if len(samples.idle) < 2 or len(samples.load) < 2:
        log.warning("energy: too few fuel-gauge samples (idle %d, load %d); run longer", len(samples.idle),
                    len(samples.load))
        return None
    all_current = np.concatenate([samples.idle[:, 0], samples.load[:, 0]])
    amps = _to_amps(all_current)
    volts = _to_volts(np.concatenate([samples.idle[:, 1], samples.load[:, 1]]))
    n_idle = len(samples.idle)
    idle_a, load_a = amps[:n_idle], amps[n_idle:]
    if np.sign(np.median(idle_a)) != np.sign(np.median(load_a)):
        log.warning("energy: battery current changed sign between idle and load (charger?); no number")
        return None
    power = np.abs(amps * volts)  # the sign convention (into/out of the battery) varies by vendor
    delta_w = float(power[n_idle:].mean() - power[:n_idle].mean())
    if delta_w <= 0:
        log.warning("energy: load did not raise battery power above idle (%.3f W); no number", delta_w)
        return None
    return delta_w * inference_ms
