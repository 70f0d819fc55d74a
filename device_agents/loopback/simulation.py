"""SIMULATED hardware readings of the loopback device.

A background thread measures the real CPU time used by the shell commands the device is
running (their process groups, from ``/proc``), and from that load drives a first-order
thermal model, a throttling rule and a battery current, written every 250 ms (a typical
fuel-gauge period) into sysfs-shaped files that the device shell serves as ``/sys/...``.
None of these numbers come from a battery or a thermal sensor.
"""
from __future__ import annotations

import math
import os
import random
import threading
import time
from pathlib import Path

from device_agents.loopback.profile import DeviceProfile

TICK_S = 0.25
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class ProcessGroupLoad:
    """CPU cores kept busy by the registered process groups, measured from /proc."""

    def __init__(self) -> None:
        self.groups: set[int] = set()
        self.last_ticks: dict[int, int] = {}
        self.lock = threading.Lock()

    def register(self, pgid: int) -> None:
        with self.lock:
            self.groups.add(pgid)

    def unregister(self, pgid: int) -> None:
        with self.lock:
            self.groups.discard(pgid)

    def _group_ticks(self) -> dict[int, int]:
        with self.lock:
            groups = set(self.groups)
        ticks: dict[int, int] = {}
        if not groups:
            return ticks
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            rest = stat[stat.rfind(")") + 2:].split()
            if int(rest[2]) in groups:  # fields after the name: state ppid pgrp ...
                ticks[int(entry)] = int(rest[11]) + int(rest[12])  # utime + stime
        return ticks

    def busy_cores(self, interval_s: float) -> float:
        ticks = self._group_ticks()
        used = sum(value - self.last_ticks.get(pid, 0) for pid, value in ticks.items())
        self.last_ticks = ticks
        return max(0.0, used / _CLOCK_TICKS / interval_s)


class HardwareSimulation:
    """Keeps the simulated sysfs files under ``sys_root`` up to date."""

    def __init__(self, profile: DeviceProfile, sys_root: Path, load: ProcessGroupLoad) -> None:
        self.profile, self.sys_root, self.load = profile, sys_root, load
        self.temperature_c = profile.ambient_c
        self.busy = 0.0
        self.rng = random.Random(0)
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, name="loopback-sim", daemon=True)
        self._write_static()
        self._write_dynamic()

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        if self.thread.is_alive():
            self.thread.join(timeout=5)  # no write may recreate files after the device is removed

    def _write(self, relative: str, value: object) -> None:
        path = self.sys_root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(f"{value}\n")
        os.replace(tmp, path)  # a concurrent `cat` sees the old or the new value, never half

    def _cpu_dir(self, cpu: int) -> str:
        return f"devices/system/cpu/cpu{cpu}/cpufreq"

    def _write_static(self) -> None:
        p = self.profile
        for cpu in range(p.cpus):
            self._write(f"{self._cpu_dir(cpu)}/cpuinfo_max_freq", p.max_freq_khz)
            self._write(f"{self._cpu_dir(cpu)}/scaling_governor", "schedutil")
            self._write(f"{self._cpu_dir(cpu)}/related_cpus", " ".join(map(str, range(p.cpus))))
        self._write("class/thermal/thermal_zone0/type", "cpu-simulated")
        self._write("class/thermal/thermal_zone1/type", "battery-simulated")
        self._write("class/power_supply/battery/status", "Charging" if p.charging else "Discharging")
        self._write("class/power_supply/battery/capacity", 80)
        self._write("class/power_supply/usb/online", int(p.charging))

    def _write_dynamic(self) -> None:
        p = self.profile
        throttled = self.temperature_c >= p.throttle_c
        max_freq = p.throttled_freq_khz if throttled else p.max_freq_khz
        cur_freq = max_freq if self.busy > 0.05 else p.min_freq_khz
        for cpu in range(p.cpus):
            self._write(f"{self._cpu_dir(cpu)}/scaling_max_freq", max_freq)
            self._write(f"{self._cpu_dir(cpu)}/scaling_cur_freq", cur_freq)
        milli_c = round(self.temperature_c * 1000)
        self._write("class/thermal/thermal_zone0/temp", milli_c)
        self._write("class/thermal/thermal_zone1/temp", round(p.ambient_c * 1000))
        current_ma = p.idle_current_ma + p.current_per_busy_core_ma * self.busy
        current_ma *= 1 + self.rng.gauss(0, 0.01)
        if p.charging:
            current_ma -= 1500.0  # net current of a charger that out-supplies the load
        scale = 1000 if p.current_unit == "uA" else 1
        self._write("class/power_supply/battery/current_now", round(p.current_sign * current_ma * scale))
        self._write("class/power_supply/battery/voltage_now", round((p.voltage_v - 0.02 * self.busy) * 1e6))
        self._write("class/power_supply/battery/temp", round(self.temperature_c * 10))

    def _step(self, interval_s: float) -> None:
        p = self.profile
        self.busy = self.load.busy_cores(interval_s)
        steady = p.ambient_c + p.heat_per_busy_core_c * self.busy
        self.temperature_c += (steady - self.temperature_c) * (1 - math.exp(-interval_s / p.thermal_tau_s))
        self._write_dynamic()

    def _run(self) -> None:
        last = time.monotonic()
        while not self.stop_event.wait(TICK_S):
            now = time.monotonic()
            self._step(now - last)
            last = now
