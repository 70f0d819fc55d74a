"""The device-agent interface: open a model file on a target, time rounds of inferences,
and describe the target (its fingerprint) for a LUT's metadata.

An agent knows how to run one model format on one device; *how many* rounds to run,
in what order and how to turn them into a robust number is the measurement protocol's
job (:mod:`hwadapt.measure`), shared by every agent.
"""
from __future__ import annotations

import os
import platform
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar


class AgentError(Exception):
    """A target that cannot be used: missing runtime, device, delegate or binary (a
    one-line message for whoever drives the agent)."""


class ModelSession(ABC):
    """A model loaded on the target, ready to be timed."""

    @abstractmethod
    def time_round(self, runs: int, statistic: str = "median") -> float:
        """Run ``runs`` back-to-back inferences; return the round's per-inference time in ms:
        the median (``"median"``; tools that only report a mean, such as TFLite's
        ``benchmark_model``, return that mean) or the fastest inference (``"min"``).
        """

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release what the session holds (files on a device, native sessions)."""


class DeviceAgent(ABC):
    """One measurement target."""

    backend: ClassVar[str]
    model_format: ClassVar[str]  # "onnx" or "tflite": the file suffix the agent runs
    # MeasurePlan fields this target needs: a phone pays a process start per round, so it
    # fixes the runs per round and takes fewer, longer rounds.
    plan_overrides: ClassVar[dict[str, Any]] = {}

    def __init__(self, threads: int = 1) -> None:
        if threads < 1:
            raise AgentError(f"threads must be >= 1, got {threads}")
        self.threads = threads

    @abstractmethod
    def fingerprint(self) -> dict[str, Any]:
        """What identifies the target: device, runtime and version, threads, delegate."""

    @abstractmethod
    def open(self, model_path: Path) -> ModelSession:
        """Load ``model_path`` on the target."""

    def conditions(self) -> dict[str, Any]:
        """Device state to record with a measurement round (temperature, frequency).

        Agents of throttling devices also wait here until the device has cooled down.
        """
        return {}

    def energy_mj(self, session: ModelSession) -> float | None:
        """Energy per inference in mJ, where the target can measure it; None otherwise."""
        return None

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the connection to the target."""

    def __enter__(self) -> DeviceAgent:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def host_cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def host_fingerprint() -> dict[str, Any]:
    """The desktop host's identity, shared by the desktop agents."""
    return {
        "device": host_cpu_model(),
        "machine": platform.machine(),
        "cores": os.cpu_count() or 1,
        "os": f"{platform.system()} {platform.release()}",
    }
