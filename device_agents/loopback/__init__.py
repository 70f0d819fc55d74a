"""A loopback ADB device: the device side of the ADB protocol over TCP, for tests and for
trying the phone path without a phone. Battery, thermal and frequency readings are SIMULATED."""
from device_agents.loopback.auth import AuthorizedKeys
from device_agents.loopback.profile import DeviceProfile
from device_agents.loopback.server import DisconnectPlan, LoopbackDevice

__all__ = ["AuthorizedKeys", "DeviceProfile", "DisconnectPlan", "LoopbackDevice"]
