"""Device agents: one per measurement target, behind :class:`DeviceAgent`."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from device_agents.base import AgentError, DeviceAgent, ModelSession
from device_agents.desktop import LiteRtCpuAgent, OrtCpuAgent

AgentFactory = Callable[..., DeviceAgent]
AGENTS: dict[str, AgentFactory] = {
    OrtCpuAgent.backend: OrtCpuAgent,
    LiteRtCpuAgent.backend: LiteRtCpuAgent,
}


def register_agent(backend: str, factory: AgentFactory) -> None:
    AGENTS[backend] = factory


# The Android agents import adb-shell only when they connect, so it stays optional.
from device_agents.android import AndroidCpuAgent, AndroidGpuAgent  # noqa: E402

register_agent(AndroidCpuAgent.backend, AndroidCpuAgent)
register_agent(AndroidGpuAgent.backend, AndroidGpuAgent)


def make_agent(backend: str, **options: Any) -> DeviceAgent:
    """The agent for ``backend``; options (threads, device, ...) go to its constructor."""
    if backend not in AGENTS:
        raise AgentError(f"unknown backend {backend!r}; known: {', '.join(sorted(AGENTS))}")
    return AGENTS[backend](**options)


__all__ = ["AGENTS", "AgentError", "DeviceAgent", "ModelSession", "make_agent", "register_agent"]
