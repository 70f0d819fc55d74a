"""What the loopback device claims to be: ``getprop`` values and the parameters of its
*simulated* battery, thermal and CPU-frequency behaviour (there is no phone here; the
numbers it reports follow a simple model driven by the real CPU load of the commands
it runs, see :mod:`device_agents.loopback.simulation`).
"""
from __future__ import annotations

import json
import os
import platform
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from device_agents.base import host_cpu_model


def _default_props() -> dict[str, str]:
    abi = {"x86_64": "x86_64", "aarch64": "arm64-v8a", "armv7l": "armeabi-v7a"}.get(platform.machine(),
                                                                                    platform.machine())
    return {
        "ro.product.manufacturer": "hwadapt",
        "ro.product.model": "Loopback Device",
        "ro.product.name": "hwadapt_loopback",
        "ro.product.device": "loopback",
        "ro.board.platform": "loopback",
        "ro.soc.model": host_cpu_model(),
        "ro.product.cpu.abi": abi,
        "ro.build.version.release": "14",
        "ro.build.version.sdk": "34",
        "ro.serialno": "loopback0001",
    }


@dataclass
class DeviceProfile:
    props: dict[str, str] = field(default_factory=_default_props)
    cpus: int = field(default_factory=lambda: os.cpu_count() or 1)  # real host CPUs: taskset must work
    max_freq_khz: int = 2_400_000
    min_freq_khz: int = 600_000
    throttled_freq_khz: int = 1_500_000
    ambient_c: float = 30.0
    heat_per_busy_core_c: float = 2.0
    thermal_tau_s: float = 20.0
    throttle_c: float = 70.0
    idle_current_ma: float = 120.0
    current_per_busy_core_ma: float = 350.0
    voltage_v: float = 3.85
    current_unit: str = "uA"  # "uA" (kernel ABI) or "mA" (some vendors)
    current_sign: int = -1  # -1: negative while discharging (kernel ABI); +1: some vendors
    charging: bool = False

    @classmethod
    def load(cls, path: Path) -> DeviceProfile:
        data = json.loads(Path(path).read_text())
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown device-profile keys: {', '.join(sorted(unknown))}")
        props = {**_default_props(), **data.pop("props", {})}
        return cls(props=props, **data)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    def banner(self) -> bytes:
        """The CNXN banner adbd sends: state, then ``;``-separated properties and features."""
        keys = ("ro.product.name", "ro.product.model", "ro.product.device")
        props = ";".join(f"{key}={self.props.get(key, '')}" for key in keys)
        return f"device::{props};features=fixed_push_mkdir\0".encode()
