"""Per-op lookup: the measured grid of each shape class, interpolated between points
(in channel counts rounded up to the kernels' tile, see :mod:`hwadapt.lut.steps`)."""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.interpolate import RegularGridInterpolator

from hwadapt.arch.ops import Op
from hwadapt.lut.steps import pad
from hwadapt.lut.store import LutError

SHAPE_COLUMNS = ["kind", "size", "kernel", "stride", "act"]


def describe(op: Op) -> str:
    return (f"{op.kind} {op.cin}->{op.cout} ch at {op.size}x{op.size}, kernel {op.kernel}, "
            f"stride {op.stride}, act {op.act}")


class ShapeTable:
    """The grid of one shape class: exact on grid points, bilinear in between.

    ``steps`` gives, per axis (``cin``, ``cout``), the channel tile of the kernel: grid
    points and queries are rounded up to it, and grid points that round to the same
    count (they cost the same) are averaged.
    """

    def __init__(self, key: tuple, frame: pd.DataFrame, steps: dict[str, int] | None = None) -> None:
        self.key = key
        self.cin, self.cout = np.sort(frame["cin"].unique()), np.sort(frame["cout"].unique())
        self.diagonal = key[0] in ("dwconv", "add", "pool")
        self.axes = [self.cin] if self.diagonal else [self.cin, self.cout]
        self.steps = [(steps or {}).get(name, 1) for name in ("cin", "cout")[:len(self.axes)]]
        grid = self._padded_grid(frame.set_index(["cin", "cout"])["ms"])
        self._padded = [grid.index.to_numpy()] if self.diagonal else [grid.index.to_numpy(), grid.columns.to_numpy()]
        self._free = [i for i, axis in enumerate(self._padded) if len(axis) > 1]
        values = grid.to_numpy().reshape([len(self._padded[i]) for i in self._free])
        self._interp = (RegularGridInterpolator([self._padded[i].astype(float) for i in self._free], values)
                        if self._free else None)
        self._scalar = float(values) if not self._free else None

    def _padded_grid(self, values: pd.Series) -> pd.Series | pd.DataFrame:
        """Grid values indexed by channel counts rounded up to the steps (duplicates averaged)."""
        if self.diagonal:
            grid = pd.Series([values[(c, c)] for c in self.cin], index=self.cin)
            return grid.groupby(lambda c: pad(c, self.steps[0])).mean()
        try:
            grid = pd.DataFrame([[values[(ci, co)] for co in self.cout] for ci in self.cin],
                                index=self.cin, columns=self.cout)
        except KeyError as exc:
            cin, cout = map(int, exc.args[0])
            kind, size, kernel, stride = self.key[:4]
            raise LutError(f"LUT grid of {kind} at {size}px k{kernel} s{stride} is incomplete "
                           f"(no {cin}->{cout} entry); "
                           "re-run `hwadapt profile` with the same --out to finish it") from exc
        grid = grid.groupby(lambda c: pad(c, self.steps[0])).mean()
        return grid.T.groupby(lambda c: pad(c, self.steps[1])).mean().T

    def point(self, op: Op) -> tuple[list[float], bool]:
        coords = [op.cin] if self.diagonal else [op.cin, op.cout]
        free, interpolated = [], False
        for i, (value, axis) in enumerate(zip(coords, self.axes)):
            if len(axis) == 1:
                if value != axis[0]:
                    raise LutError(f"LUT has no entry for {describe(op)} (this shape is only measured at "
                                   f"{int(axis[0])} channels)")
                continue
            if not axis[0] <= value <= axis[-1]:
                raise LutError(f"LUT does not cover {describe(op)}: channels outside "
                               f"[{int(axis[0])}, {int(axis[-1])}]")
            padded = pad(value, self.steps[i])
            if i in self._free:
                interpolated |= padded not in self._padded[i]
                free.append(float(padded))
        return free, interpolated

    def ms(self, op: Op) -> tuple[float, bool]:
        free, interpolated = self.point(op)
        if self._interp is None:
            return self._scalar, False
        return float(self._interp([free])[0]), interpolated


class OpLookup:
    """All shape classes of a LUT; ``steps`` is the LUT's ``channel_steps`` ({kind: {axis: tile}})."""

    def __init__(self, frame: pd.DataFrame, steps: dict[str, dict[str, int]] | None = None) -> None:
        ops = frame[frame["kind"] != "model"]
        self.tables = {key: ShapeTable(key, group, (steps or {}).get(key[0]))
                       for key, group in ops.groupby(SHAPE_COLUMNS)}

    def ms(self, op: Op) -> tuple[float, bool]:
        """Standalone time of ``op`` in ms, and whether it was interpolated."""
        table = self.tables.get(op.shape_class)
        if table is None:
            raise LutError(f"LUT has no entry for {describe(op)}")
        return table.ms(op)
