"""Phone measurement hygiene: thermal zones and cpufreq read before each round, a
cool-down wait when hot, throttling flags, and the taskset mask of the fastest cluster."""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

# One round trip: every thermal zone and every CPU's frequencies, tagged for parsing.
STATE_SCRIPT = (
    "for z in /sys/class/thermal/thermal_zone*; do "
    "echo \"T $(cat $z/type 2>/dev/null | tr ' ' _) $(cat $z/temp 2>/dev/null)\"; done; "
    "for c in /sys/devices/system/cpu/cpu[0-9]*; do f=$c/cpufreq; "
    "echo \"F ${c##*cpu} $(cat $f/scaling_cur_freq 2>/dev/null) $(cat $f/scaling_max_freq 2>/dev/null) "
    "$(cat $f/cpuinfo_max_freq 2>/dev/null)\"; done"
)
_CPU_ZONE_WORDS = ("cpu", "soc", "ap", "tsens", "big", "little", "mtktscpu")


@dataclass
class CpuFreq:
    cur_khz: int
    max_khz: int
    hw_max_khz: int


@dataclass
class DeviceState:
    zones_c: dict[str, float] = field(default_factory=dict)
    cpus: dict[int, CpuFreq] = field(default_factory=dict)

    @property
    def temperature_c(self) -> float | None:
        """The hottest CPU/SoC zone (all zones when none is named so)."""
        cpu_zones = [t for name, t in self.zones_c.items() if any(w in name.lower() for w in _CPU_ZONE_WORDS)]
        values = cpu_zones or list(self.zones_c.values())
        return max(values) if values else None

    def throttled(self, cpus: list[int]) -> bool:
        """A CPU whose allowed maximum is below its hardware maximum is being capped."""
        return any(self.cpus[c].max_khz < self.cpus[c].hw_max_khz for c in cpus if c in self.cpus)


def _celsius(raw: str) -> float | None:
    try:
        value = float(raw)
    except ValueError:
        return None
    if abs(value) >= 1000:  # milli-degrees (kernel ABI)
        value /= 1000
    elif abs(value) >= 200:  # deci-degrees (some vendors)
        value /= 10
    return value if -40 <= value <= 150 else None


def parse_state(text: str) -> DeviceState:
    state = DeviceState()
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "T":
            celsius = _celsius(parts[2])
            if celsius is not None:
                state.zones_c[parts[1]] = celsius
        elif len(parts) == 5 and parts[0] == "F" and all(p.isdigit() for p in parts[1:]):
            cpu, cur, top, hw_top = map(int, parts[1:])
            state.cpus[cpu] = CpuFreq(cur, top, hw_top)
    return state


def fastest_cores_mask(state: DeviceState, threads: int) -> tuple[list[int], str]:
    """The fastest clusters (by ``cpuinfo_max_freq``) holding at least ``threads`` cores, and
    their taskset mask: on a prime + big + little phone, 1 thread gets the prime core and 4
    threads the prime and big cores."""
    chosen: list[int] = []
    for top in sorted({freq.hw_max_khz for freq in state.cpus.values()}, reverse=True):
        chosen += [c for c, freq in state.cpus.items() if freq.hw_max_khz == top]
        if len(chosen) >= threads:
            break
    chosen.sort()
    return chosen, format(sum(1 << c for c in chosen), "x") if chosen else ""


@dataclass
class CoolDown:
    """Wait until the device is within ``margin_c`` of the coolest temperature seen."""

    read_state: Callable[[], DeviceState]
    margin_c: float = 3.0
    max_wait_s: float = 300.0
    poll_s: float = 5.0
    baseline_c: float | None = None

    def settle(self) -> tuple[DeviceState, float]:
        start = time.monotonic()
        state = self.read_state()
        while True:
            temp = state.temperature_c
            if temp is None:
                return state, 0.0
            self.baseline_c = temp if self.baseline_c is None else min(self.baseline_c, temp)
            waited = time.monotonic() - start
            if temp <= self.baseline_c + self.margin_c or waited >= self.max_wait_s:
                if waited >= self.max_wait_s:
                    log.warning("device still at %.1f °C after %.0f s of cool-down", temp, waited)
                return state, waited
            log.info("device at %.1f °C (idle %.1f °C): cooling down", temp, self.baseline_c)
            time.sleep(self.poll_s)
            state = self.read_state()
