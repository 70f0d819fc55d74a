"""What a channel costs: the price a network saves when one of its channel groups loses a
unit of channels, everything else as it is.

The latency price is the calibrated predictor's (:meth:`LatencyPredictor.predict_ms`),
not the raw sum of the table's op times: the calibration prices a group's ops inside the
network they run in. A group is narrowed with :func:`~hwadapt.arch.set_widths`, so a
residual-tied group is one width and is priced once, every member narrowed together.

A backend's kernels work on tiles of channels (ONNX Runtime's 1x1 convolutions read
input channels 16 at a time on this project's hosts), so the measured price of a width is
a staircase: taking 8 channels off a width that fills its tiles can save nothing, or even
cost time. :func:`tile_span` is the span that averages one step of that staircase out;
MorphNet's regulariser, which needs a slope, prices channels over it.

FLOPs, weights and channel counts are prices too (:data:`PRICES`), so one regulariser
serves every cost MorphNet and network slimming weigh channels by.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from hwadapt.arch import Arch, WidthGroup, lower, set_widths, width_groups
from hwadapt.lut.predictor import LatencyPredictor
from hwadapt.lut.store import LutError
from hwadapt.ops import Op

Price = Callable[[Arch], float]  # what a whole network costs, in the price's own unit


@dataclass(frozen=True)
class Margin:
    """What one group's channels cost at its current width: narrowing it from ``high`` to
    ``low`` channels saves ``saved`` (negative where the narrower network costs more)."""

    group: str
    width: int
    low: int
    high: int
    saved: float

    @property
    def per_channel(self) -> float:
        return self.saved / (self.high - self.low) if self.high > self.low else 0.0


def _price_or_none(price: Price, arch: Arch) -> float | None:
    """The price of ``arch``; None where the table does not cover its widths."""
    try:
        return price(arch)
    except LutError:
        return None


def _margin(arch: Arch, price: Price, current: float, group: WidthGroup, unit: int, floor: int) -> Margin:
    width = group.width(arch)

    def at(w: int) -> float | None:
        return current if w == width else _price_or_none(price, set_widths(arch, {group.name: w}))

    for low, high in ((width - unit, width), (width, width + unit), (max(floor, width - unit), width)):
        if low < floor or high <= low:
            continue
        narrow, wide = at(low), at(high)
        if narrow is not None and wide is not None:
            return Margin(group.name, width, low, high, wide - narrow)
    return Margin(group.name, width, width, width, 0.0)


def margins(arch: Arch, price: Price, unit: int = 8, floor: int = 8) -> dict[str, Margin]:
    """Each group's :class:`Margin` for ``unit`` channels: the price ``unit`` channels off
    its width save. Where that would leave fewer than ``floor`` channels (the narrowest a
    table covers), the price of the next ``unit`` channels up stands in; where that is not
    priceable either, what is left down to ``floor``."""
    current = price(arch)
    return {group.name: _margin(arch, price, current, group, unit, floor) for group in width_groups(arch)}


def marginal_latency(predictor: LatencyPredictor, arch: Arch, unit: int = 8, floor: int = 8) -> dict[str, Margin]:
    """The predicted latency (ms) each group saves by losing ``unit`` channels."""
    return margins(arch, predictor.predict_ms, unit, floor)


def savings(arch: Arch, price: Price, group: str, widths: list[int]) -> np.ndarray:
    """What setting ``group`` to each of ``widths`` saves, every other group as it is."""
    current = price(arch)
    return np.array([current - price(set_widths(arch, {group: int(w)})) for w in widths])


def tile_span(predictor: LatencyPredictor, unit: int = 8) -> int:
    """The channel span over which one step of the table's staircase averages out: the
    least common multiple of ``unit`` and the table's channel periods."""
    periods = predictor.meta.periods
    return math.lcm(unit, periods.output or 1, periods.input or 1)


def _weight_shapes(arch: Arch) -> list[tuple[Op, tuple[int, ...]]]:
    """Each op's weight array (its first, of two or more axes: a clip's per-channel bounds
    are not weights)."""
    found = []
    for op in lower(arch):
        shapes = op.spec.weight_shapes(op)
        if shapes and len(shapes[0]) >= 2:
            found.append((op, shapes[0]))
    return found


def flops(arch: Arch) -> float:
    """Multiply-adds x 2 of the convolutions and the classifier."""
    return sum(2.0 * float(np.prod(shape)) * op.out_size ** 2 for op, shape in _weight_shapes(arch))


def weights(arch: Arch) -> float:
    """Weights of the convolutions and the classifier (biases and folded BN left out)."""
    return float(sum(np.prod(shape) for _, shape in _weight_shapes(arch)))


def channels(arch: Arch) -> float:
    """Channels of every group: the uniform price (network slimming's)."""
    return float(sum(group.width(arch) for group in width_groups(arch)))


def latency(predictor: LatencyPredictor) -> Price:
    return predictor.predict_ms


# a price by name, given the table's predictor (which only the latency needs)
PRICES: dict[str, Callable[[LatencyPredictor], Price]] = {
    "latency": latency, "flops": lambda _: flops, "size": lambda _: weights, "channels": lambda _: channels}
UNITS = {"latency": "ms", "flops": "FLOPs", "size": "weights", "channels": "channels"}
