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
WINDOWS = 3  # separate windows behind every end-to-end figure; the median window is kept
BATCH_SIZE = 8  # networks measured together in one window


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
    """Measure one architecture (with trained weights if ``net`` is given), in one window."""
    return measure_archs(agent, [arch], [net], plan, probe)[0]


def measure_in_windows(agent: DeviceAgent, archs: Sequence[Arch], nets: Sequence | None = None,
                       plan: MeasurePlan | None = None, probe: Probe | None = None, windows: int = WINDOWS,
                       batch_size: int = BATCH_SIZE,
                       on_batch: Callable[[int], None] | None = None) -> list[list[Measurement]]:
    """Each architecture's measurements in ``windows`` separate windows (batches of
    ``batch_size``, in reverse order on alternate windows); take :func:`median_window`.

    Why more than one: on a shared host a whole window can run 10% slow while the probe,
    a smaller model, does not notice (benchmarks README, run 7), and one where the probe
    ran slow reads every network 5-15% fast (run 9)."""
    archs, nets = list(archs), list(nets) if nets is not None else [None] * len(archs)
    starts = list(range(0, len(archs), batch_size))
    by_arch: list[list[Measurement]] = [[] for _ in archs]
    for index in range(windows):
        for start in (starts if index % 2 == 0 else starts[::-1]):
            chunk = slice(start, start + batch_size)
            for found, m in zip(by_arch[chunk], measure_archs(agent, archs[chunk], nets[chunk], plan, probe)):
                found.append(m)
            if on_batch:
                on_batch(len(archs[chunk]))
    return by_arch


def median_window(windows: Sequence[Measurement]) -> Measurement:
    """The window at the median level (of an even count, the lower of the middle two)."""
    return sorted(windows, key=lambda m: m.median_ms)[(len(windows) - 1) // 2]


def window_spread_pct(windows: Sequence[Measurement]) -> float:
    """How far a network's windows disagree: (max - min) over the median window, in %."""
    levels = [m.median_ms for m in windows]
    return (max(levels) - min(levels)) / median_window(windows).median_ms * 100


__all__ = ["BATCH_SIZE", "WINDOWS", "MeasurePlan", "Measurement", "Probe", "default_probe", "lower_envelope",
           "measure_arch", "measure_archs", "measure_in_windows", "measure_paths", "median_window",
           "window_spread_pct"]
