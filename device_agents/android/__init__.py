"""Android agents over ADB (pure-Python adb-shell): ``android-cpu`` and ``android-gpu``."""
from device_agents.android.agent import AndroidAgent, AndroidCpuAgent, AndroidGpuAgent
from device_agents.android.errors import (BenchmarkOutputError, BenchmarkToolError, DeviceAuthRefused,
                                          DeviceDisconnected, DeviceNotFound, GpuDelegateUnavailable)

__all__ = ["AndroidAgent", "AndroidCpuAgent", "AndroidGpuAgent", "BenchmarkOutputError", "BenchmarkToolError",
           "DeviceAuthRefused", "DeviceDisconnected", "DeviceNotFound", "GpuDelegateUnavailable"]
