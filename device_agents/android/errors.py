"""What can go wrong with a phone, each a one-line :class:`AgentError` for the CLI."""
from __future__ import annotations

from device_agents.base import AgentError


class DeviceNotFound(AgentError):
    """No device, several devices and none chosen, or a malformed ``--device``."""


class DeviceAuthRefused(AgentError):
    """The phone has not accepted this computer's ADB key."""


class DeviceDisconnected(AgentError):
    """The connection dropped and could not be re-established within the retry budget."""


class BenchmarkToolError(AgentError):
    """``benchmark_model`` is missing, not executable, or failed."""


class GpuDelegateUnavailable(BenchmarkToolError):
    """``--use_gpu`` could not apply the GPU delegate; never silently measured on the CPU."""


class BenchmarkOutputError(BenchmarkToolError):
    """``benchmark_model`` output without the expected timing lines; keeps the raw text."""

    def __init__(self, message: str, raw: str) -> None:
        super().__init__(message)
        self.raw = raw
