"""Per-op lookup: the measured grid of each shape class, interpolated between points."""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.interpolate import RegularGridInterpolator

from hwadapt.arch.ops import Op
from hwadapt.lut.store import LutError

SHAPE_COLUMNS = ["kind", "size", "kernel", "stride", "act"]


def describe(op: Op) -> str:
    return (f"{op.kind} {op.cin}->{op.cout} ch at {op.size}x{op.size}, kernel {op.kernel}, "
            f"stride {op.stride}, act {op.act}")


class ShapeTable:
    """The grid of one shape class: exact on grid points, bilinear in between."""

    def __init__(self, key: tuple, frame: pd.DataFrame) -> None:
        self.key = key
        self.cin = np.sort(frame["cin"].unique())
        self.cout = np.sort(frame["cout"].unique())
        diagonal = key[0] in ("dwconv", "add", "pool")
        values = frame.set_index(["cin", "cout"])["ms"]
        if diagonal:
            axes, grid = (self.cin,), np.array([values[(c, c)] for c in self.cin])
        else:
            try:
                grid = np.array([[values[(ci, co)] for co in self.cout] for ci in self.cin])
            except KeyError as exc:
                cin, cout = map(int, exc.args[0])
                raise LutError(f"LUT grid of {key[0]} at {key[1]}px k{key[2]} s{key[3]} is incomplete "
                               f"(no {cin}->{cout} entry); "
                               "re-run `hwadapt profile` with the same --out to finish it") from exc
            axes = (self.cin, self.cout)
        self.diagonal = diagonal
        self._axes = [a for a in axes if len(a) > 1]
        self._fixed = [a[0] for a in axes if len(a) == 1]
        squeezed = grid.reshape([len(a) for a in axes if len(a) > 1]) if self._axes else grid.reshape(())
        self._interp = RegularGridInterpolator(self._axes, squeezed) if self._axes else None
        self._scalar = float(squeezed) if not self._axes else None

    def point(self, op: Op) -> tuple[list[float], bool]:
        coords = [op.cin] if self.diagonal else [op.cin, op.cout]
        axes = [self.cin] if self.diagonal else [self.cin, self.cout]
        free, interpolated = [], False
        for value, axis in zip(coords, axes):
            if len(axis) == 1:
                if value != axis[0]:
                    raise LutError(f"LUT has no entry for {describe(op)} (this shape is only measured at "
                                   f"{int(axis[0])} channels)")
                continue
            if not axis[0] <= value <= axis[-1]:
                raise LutError(f"LUT does not cover {describe(op)}: channels outside "
                               f"[{int(axis[0])}, {int(axis[-1])}]")
            interpolated |= value not in axis
            free.append(float(value))
        return free, interpolated

    def ms(self, op: Op) -> tuple[float, bool]:
        free, interpolated = self.point(op)
        if self._interp is None:
            return self._scalar, False
        return float(self._interp([free])[0]), interpolated


class OpLookup:
    """All shape classes of a LUT."""

    def __init__(self, frame: pd.DataFrame) -> None:
        ops = frame[frame["kind"] != "model"]
        self.tables = {key: ShapeTable(key, group) for key, group in ops.groupby(SHAPE_COLUMNS)}

    def ms(self, op: Op) -> tuple[float, bool]:
        """Standalone time of ``op`` in ms, and whether it was interpolated."""
        table = self.tables.get(op.shape_class)
        if table is None:
            raise LutError(f"LUT has no entry for {describe(op)}")
        return table.ms(op)
