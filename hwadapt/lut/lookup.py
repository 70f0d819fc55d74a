"""Per-op lookup: the measured grid of each shape class, interpolated between points."""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.interpolate import RegularGridInterpolator

from hwadapt.lut.space import GridPeriods
from hwadapt.lut.store import LutError
from hwadapt.ops import Op, op_kind

SHAPE_COLUMNS = ["kind", "size", "kernel", "stride", "act"]


def describe(op: Op) -> str:
    return (f"{op.kind} {op.cin}->{op.cout} ch at {op.size}x{op.size}, kernel {op.kernel}, "
            f"stride {op.stride}, act {op.act}")


class ShapeTable:
    """The grid of one shape class: exact on grid points, linear (bilinear) in between.

    Along an axis with a residue period (the grid's residue points, ``space.channel_grid``),
    a channel count is interpolated between the grid points of its own residue class
    where that class brackets it, and between all points otherwise.
    """

    def __init__(self, key: tuple, frame: pd.DataFrame, periods: GridPeriods = GridPeriods()) -> None:
        self.key = key
        self.cin = np.sort(frame["cin"].unique())
        self.cout = np.sort(frame["cout"].unique())
        self.diagonal = op_kind(key[0]).one_axis
        self.periods = periods.axes(key[0])
        values = frame.set_index(["cin", "cout"])["ms"]
        if self.diagonal:
            self._grid = np.array([values[(c, c)] for c in self.cin])
        else:
            try:
                self._grid = np.array([[values[(ci, co)] for co in self.cout] for ci in self.cin])
            except KeyError as exc:
                cin, cout = map(int, exc.args[0])
                raise LutError(f"LUT grid of {key[0]} at {key[1]}px k{key[2]} s{key[3]} is incomplete "
                               f"(no {cin}->{cout} entry); "
                               "re-run `hwadapt profile` with the same --out to finish it") from exc
        self._free = [i for i, axis in enumerate(self.axes) if len(axis) > 1]  # axes with more than one point
        self._interpolators: dict[tuple, RegularGridInterpolator] = {}

    @property
    def axes(self) -> list[np.ndarray]:
        return [self.cin] if self.diagonal else [self.cin, self.cout]

    def _check(self, op: Op) -> list[int]:
        coords = [op.cin] if self.diagonal else [op.cin, op.cout]
        for value, axis in zip(coords, self.axes):
            if len(axis) == 1 and value != axis[0]:
                raise LutError(f"LUT has no entry for {describe(op)} (this shape is only measured at "
                               f"{int(axis[0])} channels)")
            if not axis[0] <= value <= axis[-1]:
                raise LutError(f"LUT does not cover {describe(op)}: channels outside "
                               f"[{int(axis[0])}, {int(axis[-1])}]")
        return coords

    @staticmethod
    def _points(axis: np.ndarray, value: int, period: int) -> tuple[int, ...]:
        """Indices of the axis points to interpolate ``value`` between."""
        if period:
            same = np.flatnonzero(axis % period == value % period)
            if len(same) >= 2 and axis[same[0]] <= value <= axis[same[-1]]:
                return tuple(same)
        return tuple(range(len(axis)))

    def ms(self, op: Op) -> tuple[float, bool]:
        coords = self._check(op)
        interpolated = any(v not in axis for v, axis in zip(coords, self.axes))
        picks = tuple(self._points(axis, v, period) for v, axis, period in zip(coords, self.axes, self.periods))
        free = self._free
        if not free:
            return float(self._grid.reshape(-1)[0]), False
        if picks not in self._interpolators:
            sub = self._grid[np.ix_(*picks)].reshape([len(picks[i]) for i in free])
            self._interpolators[picks] = RegularGridInterpolator(
                [self.axes[i][list(picks[i])] for i in free], sub)
        point = [float(coords[i]) for i in free]
        return float(self._interpolators[picks]([point])[0]), interpolated


class OpLookup:
    """All shape classes of a LUT."""

    def __init__(self, frame: pd.DataFrame, periods: GridPeriods = GridPeriods()) -> None:
        ops = frame[frame["kind"] != "model"]
        self.tables = {key: ShapeTable(key, group, periods) for key, group in ops.groupby(SHAPE_COLUMNS)}

    def ms(self, op: Op) -> tuple[float, bool]:
        """Standalone time of ``op`` in ms, and whether it was interpolated."""
        table = self.tables.get(op.shape_class)
        if table is None:
            raise LutError(f"LUT has no entry for {describe(op)}")
        return table.ms(op)
