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

SWEEP_FIXED = 64  # channel count of the axis that is not swept
SWEEP_CHANNELS = tuple(range(64, 129, 8))
CANDIDATE_STEPS = (32, 16)  # tried largest first; 1 means linear in the channel count
STEPPED_BELOW = 0.25  # median cost still unpaid below a tile edge, relative to linear (0: a staircase)

# (op kind, axis) -> the op of a channel count on a map of a size
SWEEPS = {
    ("conv", "cin"): lambda c, size: Op("conv", c, SWEEP_FIXED, size, inputs=(-1,)),
    ("conv", "cout"): lambda c, size: Op("conv", SWEEP_FIXED, c, size, inputs=(-1,)),
    ("dwconv", "cin"): lambda c, size: Op("dwconv", c, c, size, kernel=3, inputs=(-1,)),
}
# map sizes of the LUT's sweeps: enough work per channel to see the steps (a depthwise
# conv does ~1/64 of a 1x1 conv's work per channel, so it gets a larger map)
SWEEP_SIZES = {("conv", "cin"): 8, ("conv", "cout"): 8, ("dwconv", "cin"): 16}


def pad(channels: int | float, step: int) -> int:
    """``channels`` rounded up to a multiple of ``step``."""
    return int(np.ceil(channels / step) * step)


def sweep_ops() -> dict[tuple[str, str], list[Op]]:
    return {axis: [make(c, SWEEP_SIZES[axis]) for c in SWEEP_CHANNELS] for axis, make in SWEEPS.items()}


def detect_step(channels: list[int], ms: list[float]) -> int:
    """The largest candidate tile over which ``ms`` is flat, or 1 when it grows linearly.

    For each channel count c, the cost at c rounded up to the tile, minus the cost at c,
    divided by what a linear cost would add over that distance: about 1 when the cost
    is linear in c, 0 when c already pays for its whole tile. A 16-channel staircase
    scores about 0.67 for a 32-channel tile, so noise does not easily promote it.
    """
    cost = dict(zip(channels, ms))
    slope = (ms[-1] - ms[0]) / (channels[-1] - channels[0])
    if slope <= 0:
        return 1
    for step in CANDIDATE_STEPS:
        unpaid = [(cost[pad(c, step)] - cost[c]) / (slope * (pad(c, step) - c))
                  for c in channels if c % step and pad(c, step) in cost]
        if unpaid and float(np.median(unpaid)) < STEPPED_BELOW:
            return step
    return 1


def channel_steps(sweep_ms: dict[tuple[str, str], list[float]]) -> dict[str, dict[str, int]]:
    """``{kind: {axis: step}}`` from the measured sweeps (keyed like :data:`SWEEPS`)."""
    steps: dict[str, dict[str, int]] = {}
    for (kind, axis), ms in sweep_ms.items():
        steps.setdefault(kind, {})[axis] = detect_step(list(SWEEP_CHANNELS), ms)
    return steps
