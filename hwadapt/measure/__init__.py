"""Measuring models end to end on a device agent, with the shared protocol."""
from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from device_agents.base import DeviceAgent
from hwadapt.arch.families import build
from hwadapt.arch.spec import Arch
from hwadapt.materialize import export
from hwadapt.measure.protocol import MeasurePlan, Measurement, lower_envelope, measure_paths

PROBE_FAMILY, PROBE_WIDTH, PROBE_CLASSES = "mobilenet_v1", 0.5, 10


@dataclass(frozen=True)
class Probe:
    """The fixed model timed between rounds, and its level when its LUT was built."""

    arch: Arch
    reference_ms: float | None = None


def default_probe(resolution: int) -> Probe:
    """MobileNetV1-0.5 at the table's resolution: a workload of the same kind as the models."""
    return Probe(build(PROBE_FAMILY, width=PROBE_WIDTH, resolution=resolution, num_classes=PROBE_CLASSES))


def measure_archs(agent: DeviceAgent, archs: Sequence[Arch], nets: Sequence | None = None,
                  plan: MeasurePlan | None = None, probe: Probe | None = None,
                  on_round: Callable[[], None] | None = None) -> list[Measurement]:
    """Export each architecture in the agent's format and measure them together, end to end."""
    nets = list(nets) if nets is not None else [None] * len(archs)
    with tempfile.TemporaryDirectory(prefix="hwadapt-measure-") as tmp:
        suffix = agent.model_format
        paths = [export(a, suffix, Path(tmp) / f"model{i}.{suffix}", net=n)
                 for i, (a, n) in enumerate(zip(archs, nets))]
        probe_path = export(probe.arch, suffix, Path(tmp) / f"probe.{suffix}") if probe else None
        return measure_paths(agent, paths, plan, probe_path, probe.reference_ms if probe else None, on_round)


def measure_arch(agent: DeviceAgent, arch: Arch, net=None, plan: MeasurePlan | None = None,
                 probe: Probe | None = None) -> Measurement:
    """Measure one architecture (with trained weights if ``net`` is given)."""
    return measure_archs(agent, [arch], [net], plan, probe)[0]


__all__ = ["MeasurePlan", "Measurement", "Probe", "default_probe", "lower_envelope",
           "measure_arch", "measure_archs", "measure_paths"]
