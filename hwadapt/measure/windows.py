"""End-to-end figures: each network measured in several separate windows on a device
agent, with the shared protocol, and its figure taken from them.

Why several windows: on a shared host a whole window can run 10% slow while the probe,
a smaller model, does not notice, and one where the probe ran slow reads every network
5-15% fast (docs/measurement.md). Every figure is the median of its windows and carries
their spread.
"""
from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from device_agents.base import DeviceAgent
from hwadapt.arch.spec import Arch
from hwadapt.families import build
from hwadapt.materialize import export, save_ops
from hwadapt.materialize.weights import OpWeights
from hwadapt.measure.protocol import MeasurePlan, Measurement, measure_paths
from hwadapt.ops import Op

PROBE_FAMILY, PROBE_WIDTH, PROBE_CLASSES = "mobilenet_v1", 0.5, 10
# separate windows behind every end-to-end figure (at least); the median is kept. Five, not
# three: the median of three consecutive windows left five back-to-back figures of a 32 px
# network within 3% in 71-87% of stretches, the median of five in 85-100%
WINDOWS = 5
MAX_WINDOWS = 7  # at most, while the windows beside the median disagree by over SETTLE_PCT
MIN_KEPT = 3  # the probe gate sets windows aside only while at least this many are left
SETTLE_PCT = 5.0
GATE_PCT = 4.0  # windows whose probe ran further than this from its reference are set aside
BATCH_SIZE = 8  # networks measured together in one window
# past MAX_WINDOWS, a network with fewer than MIN_KEPT windows inside the probe gate gets
# more windows for as long as the call has taken so far, at most PATIENCE_S: the host's
# slow stretches last seconds, and one agent run can fall wholly inside one (the probe
# 14-19% slow in every window of a run), while a call at most doubles its time waiting
PATIENCE_S = 30.0
NOISY_PCT = 3.0  # a figure whose windows spread wider than this is reported as uncertain


@dataclass(frozen=True)
class Probe:
    """The fixed model timed between rounds, and its level when its LUT was built."""

    arch: Arch
    reference_ms: float | None = None


def default_probe(resolution: int) -> Probe:
    """MobileNetV1-0.5 at the table's resolution: a workload of the same kind as the models."""
    return Probe(build(PROBE_FAMILY, width=PROBE_WIDTH, resolution=resolution, num_classes=PROBE_CLASSES))


ModelWriter = Callable[[str, Path], Path]  # writes one model in a format ("onnx", "tflite") at a path


def arch_writer(arch: Arch, net=None) -> ModelWriter:
    """A writer of ``arch`` (with the trained weights of ``net``; random if None)."""
    return lambda fmt, path: export(arch, fmt, path, net=net)


def graph_writer(ops: list[Op], weights: OpWeights) -> ModelWriter:
    """A writer of an op list with its deployed weights (an export form of a network)."""
    return lambda fmt, path: save_ops(ops, weights, fmt, path)


def measure_models(agent: DeviceAgent, writers: Sequence[ModelWriter], plan: MeasurePlan | None = None,
                   probe: Probe | None = None, on_round: Callable[[], None] | None = None) -> list[Measurement]:
    """Write each model in the agent's format and measure them together, end to end."""
    with tempfile.TemporaryDirectory(prefix="hwadapt-measure-") as tmp:
        suffix = agent.model_format
        paths = [write(suffix, Path(tmp) / f"model{i}.{suffix}") for i, write in enumerate(writers)]
        probe_path = export(probe.arch, suffix, Path(tmp) / f"probe.{suffix}") if probe else None
        return measure_paths(agent, paths, plan, probe_path, probe.reference_ms if probe else None, on_round)


def measure_archs(agent: DeviceAgent, archs: Sequence[Arch], nets: Sequence | None = None,
                  plan: MeasurePlan | None = None, probe: Probe | None = None,
                  on_round: Callable[[], None] | None = None) -> list[Measurement]:
    """Export each architecture in the agent's format and measure them together, end to end."""
    nets = list(nets) if nets is not None else [None] * len(archs)
    return measure_models(agent, [arch_writer(a, n) for a, n in zip(archs, nets)], plan, probe, on_round)


def measure_arch(agent: DeviceAgent, arch: Arch, net=None, plan: MeasurePlan | None = None,
                 probe: Probe | None = None) -> Measurement:
    """Measure one architecture (with trained weights if ``net`` is given), in one window."""
    return measure_archs(agent, [arch], [net], plan, probe)[0]


def measure_in_windows(agent: DeviceAgent, archs: Sequence[Arch], nets: Sequence | None = None,
                       plan: MeasurePlan | None = None, probe: Probe | None = None, windows: int = WINDOWS,
                       batch_size: int = BATCH_SIZE, on_batch: Callable[[int, int], None] | None = None,
                       max_windows: int = MAX_WINDOWS, settle_pct: float = SETTLE_PCT,
                       gate_pct: float | None = GATE_PCT, patience_s: float = PATIENCE_S) -> list[list[Measurement]]:
    """Each architecture's measurements in separate windows (:func:`windows_of`)."""
    archs, nets = list(archs), list(nets) if nets is not None else [None] * len(archs)
    return windows_of(lambda batch: measure_archs(agent, [archs[i] for i in batch], [nets[i] for i in batch], plan,
                                                  probe),
                      len(archs), windows, batch_size, on_batch, max_windows, settle_pct, gate_pct, patience_s)


def measure_models_in_windows(agent: DeviceAgent, writers: Sequence[ModelWriter], plan: MeasurePlan | None = None,
                              probe: Probe | None = None, windows: int = WINDOWS,
                              batch_size: int = BATCH_SIZE) -> list[list[Measurement]]:
    """Each model's measurements in separate windows (:func:`windows_of`)."""
    writers = list(writers)
    return windows_of(lambda batch: measure_models(agent, [writers[i] for i in batch], plan, probe),
                      len(writers), windows, batch_size)


def windows_of(measure_batch: Callable[[list[int]], list[Measurement]], count: int, windows: int = WINDOWS,
               batch_size: int = BATCH_SIZE, on_batch: Callable[[int, int], None] | None = None,
               max_windows: int = MAX_WINDOWS, settle_pct: float = SETTLE_PCT,
               gate_pct: float | None = GATE_PCT, patience_s: float = PATIENCE_S) -> list[list[Measurement]]:
    """Each of ``count`` models' measurements in separate windows (``measure_batch`` measures
    the models of the given indices together, in one window; batches of ``batch_size``, in
    reverse order on alternate windows); take :func:`median_window` (with the same
    ``gate_pct``).

    Every model gets ``windows``; one
    with fewer than ``windows`` inside the probe gate (:func:`kept_windows`), or whose
    kept windows beside the median still disagree by more than ``settle_pct``, gets two
    more, up to ``max_windows``. Past that, one with fewer than ``MIN_KEPT`` inside the
    gate gets more, waiting out a slow stretch, for as long as the call took until then
    and at most ``patience_s``. ``on_batch(done, planned)`` counts measurements."""
    found_by: list[list[Measurement]] = [[] for _ in range(count)]
    pending, index, planned, deadline = list(range(count)), 0, windows * count, None
    started = time.monotonic()
    while pending:
        batches = [pending[start:start + batch_size] for start in range(0, len(pending), batch_size)]
        for batch in (batches if index % 2 == 0 else batches[::-1]):
            for i, m in zip(batch, measure_batch(batch)):
                found_by[i].append(m)
            if on_batch:
                on_batch(sum(map(len, found_by)), planned)
        index += 1
        if index >= max_windows:
            now = time.monotonic()
            if deadline is None:
                deadline = now + min(patience_s, now - started)
            pending = [i for i in pending if _starved(found_by[i], gate_pct) and now < deadline]
            planned += len(pending)
        elif index >= windows and (index - windows) % 2 == 0:
            pending = [i for i in pending if not _done(found_by[i], windows, settle_pct, gate_pct)]
            planned += 2 * len(pending)
    return found_by


def _done(found: Sequence[Measurement], windows: int, settle_pct: float, gate_pct: float | None) -> bool:
    within = _within_gate(found, gate_pct)
    return len(within) >= windows and settled([m.median_ms for m in within], settle_pct)


def _starved(found: Sequence[Measurement], gate_pct: float | None) -> bool:
    return gate_pct is not None and len(_within_gate(found, gate_pct)) < MIN_KEPT


def _within_gate(found: Sequence[Measurement], gate_pct: float | None) -> list[Measurement]:
    if gate_pct is None:
        return list(found)
    return [m for m in found if abs(m.probe_deviation_pct()) <= gate_pct]


def kept_windows(found: Sequence[Measurement], gate_pct: float | None = GATE_PCT) -> list[Measurement]:
    """The windows an end-to-end figure is taken from: those whose probe ran within
    ``gate_pct`` of its reference, if at least ``MIN_KEPT`` did, else all of them.

    Why a gate: the probe corrects a window by its own slow-down, and a network slows by
    a share of that which depends on how it uses the core and the cache (at 224 px a
    window with the probe 10% slow read the full-width MobileNetV1 5% fast). Windows near
    the reference need little correction, so what share the network took matters little.
    ``None``: no gate."""
    within = _within_gate(found, gate_pct)
    return within if len(within) >= MIN_KEPT else list(found)


def settled(levels: Sequence[float], settle_pct: float = SETTLE_PCT) -> bool:
    """Whether the windows on either side of the median agree within ``settle_pct`` of it."""
    levels = sorted(levels)
    mid = (len(levels) - 1) // 2
    beside = levels[max(mid - 1, 0)], levels[min(mid + 1, len(levels) - 1)]
    return (beside[1] - beside[0]) / levels[mid] * 100 <= settle_pct


def median_level(levels: Sequence[float]) -> float:
    """The median of window levels, one of them (of an even count, the lower middle one):
    a probe-corrected window can err either way (a probe slowed more than the models
    reads them fast), so neither the fastest nor the mean is kept."""
    return sorted(levels)[(len(levels) - 1) // 2]


def median_window(windows: Sequence[Measurement], gate_pct: float | None = GATE_PCT) -> Measurement:
    """The window at the median level of the :func:`kept_windows`."""
    kept = kept_windows(windows, gate_pct)
    level = median_level([m.median_ms for m in kept])
    return next(m for m in kept if m.median_ms == level)


def window_spread_pct(windows: Sequence[Measurement]) -> float:
    """How far a network's windows disagree: (max - min) over the median window, in %."""
    levels = [m.median_ms for m in windows]
    return (max(levels) - min(levels)) / median_window(windows).median_ms * 100


def spread_pct(levels: Sequence[float]) -> float:
    """How far figures of one thing disagree: (max - min) over the smallest, in %."""
    return (max(levels) - min(levels)) / min(levels) * 100


@dataclass(frozen=True)
class EndToEnd:
    """A network's end-to-end latency: the median of its windows, with how far they
    disagreed (``spread_pct``, over the median window) and every window's level."""

    ms: float
    spread_pct: float
    windows_ms: tuple[float, ...]
    kept: int  # windows inside the probe gate that the figure was taken from
    p10_ms: float
    p90_ms: float

    @property
    def noisy(self) -> bool:
        """Whether the windows disagreed by more than ``NOISY_PCT``: the host was noisy and
        the figure is less certain."""
        return self.spread_pct > NOISY_PCT

    @classmethod
    def of(cls, windows: Sequence[Measurement]) -> EndToEnd:
        median = median_window(windows)
        return cls(median.median_ms, window_spread_pct(windows), tuple(m.median_ms for m in windows),
                   len(kept_windows(windows)), median.p10_ms, median.p90_ms)


def noisy_note(figures: Sequence[EndToEnd]) -> str | None:
    """One line saying the host was noisy, when any figure's windows disagreed by more
    than ``NOISY_PCT`` (None otherwise)."""
    spread = max((f.spread_pct for f in figures), default=0.0)
    if spread <= NOISY_PCT:
        return None
    count = sum(f.noisy for f in figures)
    return (f"the host was noisy: {count} of {len(figures)} figures had windows up to {spread:.1f}% apart "
            f"(over {NOISY_PCT:g}%); those figures are less certain")
