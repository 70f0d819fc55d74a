"""Channel steps: kernels that cost the same for every channel count up to a tile.

The CPU kernels of both runtimes process channels in tiles (16 on this AVX-512 host:
a 1x1 conv with 40 output channels costs what one with 48 does). Interpolating linearly
between grid points 32 and 56 misprices every channel count in between, by up to ~10%
per op. A LUT therefore measures, once, a dense sweep of channel counts for each kernel
axis, finds the tile (``detect_step``), and the lookup interpolates in channel counts
rounded up to that tile (``pad``).
"""
from __future__ import annotations

import numpy as np

from hwadapt.arch.ops import Op

SWEEP_SIZE = 8  # feature-map side of the sweep ops: enough work per channel to see the steps
SWEEP_FIXED = 64  # channel count of the axis that is not swept
SWEEP_CHANNELS = tuple(range(64, 129, 8))
CANDIDATE_STEPS = (32, 16)  # tried largest first; 1 means linear in the channel count
STEPPED_BELOW = 0.25  # median fraction of a step still unpaid between tile edges (0: a staircase)

# (op kind, axis) -> the op of each swept channel count
SWEEPS = {
    ("conv", "cin"): lambda c: Op("conv", c, SWEEP_FIXED, SWEEP_SIZE, inputs=(-1,)),
    ("conv", "cout"): lambda c: Op("conv", SWEEP_FIXED, c, SWEEP_SIZE, inputs=(-1,)),
    ("dwconv", "cin"): lambda c: Op("dwconv", c, c, SWEEP_SIZE, kernel=3, inputs=(-1,)),
}


def pad(channels: int | float, step: int) -> int:
    """``channels`` rounded up to a multiple of ``step``."""
    return int(np.ceil(channels / step) * step)


def sweep_ops() -> dict[tuple[str, str], list[Op]]:
    return {axis: [make(c) for c in SWEEP_CHANNELS] for axis, make in SWEEPS.items()}


def detect_step(channels: list[int], ms: list[float]) -> int:
    """The largest candidate tile over which ``ms`` is flat, or 1 when it grows linearly.

    For each channel count c inside a tile [lo, hi), the fraction of the tile's cost step
    that c has not yet paid, (t(hi) - t(c)) / (t(hi) - t(lo)), is 0 on a staircase and
    (hi - c) / tile when the cost is linear in c.
    """
    cost = dict(zip(channels, ms))
    for step in CANDIDATE_STEPS:
        unpaid = []
        for c in channels:
            lo = c // step * step
            hi = lo + step
            if c % step and lo in cost and hi in cost and cost[hi] > cost[lo]:
                unpaid.append((cost[hi] - cost[c]) / (cost[hi] - cost[lo]))
        if unpaid and float(np.median(unpaid)) < STEPPED_BELOW:
            return step
    return 1


def channel_steps(sweep_ms: dict[tuple[str, str], list[float]]) -> dict[str, dict[str, int]]:
    """``{kind: {axis: step}}`` from the measured sweeps (keyed like :data:`SWEEPS`)."""
    steps: dict[str, dict[str, int]] = {}
    for (kind, axis), ms in sweep_ms.items():
        steps.setdefault(kind, {})[axis] = detect_step(list(SWEEP_CHANNELS), ms)
    return steps
