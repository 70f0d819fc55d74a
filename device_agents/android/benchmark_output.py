"""Parse TFLite ``benchmark_model`` output (``Stat::OutputToStream`` lines, in µs).

Forms: ``count=0``; ``count=N curr=V`` with ``(all same)`` when N > 1 (with or without a
space); ``count first curr min max avg std`` where avg may be ``nan`` or ``1.2e+06``.
The first ``count=`` line is the warm-up, the second the regular runs. Lines may or may
not carry the ``INFO: `` prefix (legacy builds).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

from device_agents.android.errors import BenchmarkOutputError, GpuDelegateUnavailable

_NUMBER = r"[-+]?(?:nan|inf|\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)"
STAT_LINE = re.compile(
    rf"count=(?P<count>\d+)(?:\s+first=(?P<first>{_NUMBER})\s+curr=(?P<curr>{_NUMBER})\s+min=(?P<min>{_NUMBER})"
    rf"\s+max=(?P<max>{_NUMBER})\s+avg=(?P<avg>{_NUMBER})\s+std=(?P<std>{_NUMBER})"
    rf"|\s+curr=(?P<same>{_NUMBER})\s*(?:\(all same\))?)?\s*$", re.IGNORECASE)
_INIT = re.compile(r"Initialized session in (\S+?)ms")
GPU_FAILURE_MARKERS = ("Failed to apply GPU delegate", "GPU acceleration is unsupported",
                       "Failed to create GPU delegate")
GPU_APPLIED_MARKERS = ("Explicitly applied GPU delegate", "Created TensorFlow Lite delegate for GPU")


@dataclass(frozen=True)
class Stat:
    count: int
    avg_us: float
    min_us: float
    max_us: float
    std_us: float
    first_us: float


@dataclass(frozen=True)
class BenchmarkResult:
    warmup: Stat
    regular: Stat
    init_ms: float | None
    raw: str

    @property
    def avg_ms(self) -> float:
        return self.regular.avg_us / 1000.0


def parse_stat(text: str) -> Stat | None:
    """The statistics on one line, or None if the line is not a stat line."""
    match = STAT_LINE.search(text)
    if match is None:
        return None
    count = int(match["count"])
    if match["same"] is not None:
        value = float(match["same"])
        return Stat(count, value, value, value, 0.0, value)
    if match["avg"] is None:
        nan = math.nan
        return Stat(count, nan, nan, nan, nan, nan)
    return Stat(count, float(match["avg"]), float(match["min"]), float(match["max"]),
                float(match["std"]), float(match["first"]))


def check_gpu_applied(raw: str) -> None:
    """Raise unless the output shows that the GPU delegate was applied."""
    for line in raw.splitlines():
        if any(marker in line for marker in GPU_FAILURE_MARKERS):
            raise GpuDelegateUnavailable(f"GPU delegate unavailable: {line.strip()}")
    if not any(marker in raw for marker in GPU_APPLIED_MARKERS):
        raise GpuDelegateUnavailable("GPU delegate unavailable: benchmark_model did not report applying it "
                                     "(no CPU fallback is measured in its place)")


def parse_benchmark_output(raw: str) -> BenchmarkResult:
    stats = [stat for line in raw.splitlines() if (stat := parse_stat(line)) is not None]
    if len(stats) < 2:
        tail = " | ".join(raw.strip().splitlines()[-3:]) or "(no output)"
        raise BenchmarkOutputError(f"benchmark_model output has {len(stats)} of the 2 timing lines "
                                   f"(warm-up, regular): {tail}", raw)
    regular = stats[1]
    if regular.count == 0 or not math.isfinite(regular.avg_us):
        raise BenchmarkOutputError(f"benchmark_model measured no regular runs (count={regular.count})", raw)
    init = _INIT.search(raw)
    return BenchmarkResult(stats[0], regular, float(init.group(1)) if init else None, raw)
