"""What a LUT must cover: the operator shapes a family (or search space) can reach.

Each *shape class* (op kind, input side, kernel, stride, activation) is measured on a
grid of channel counts; the predictor interpolates between grid points. The grid
settings per family live in ``lut/spaces/<family>.json`` at the repository root (and
fall back to :data:`DEFAULT_GRID`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from hwadapt.arch.families import family_space
from hwadapt.arch.ops import Op
from hwadapt.errors import HwadaptError

DEFAULT_GRID = {"granularity": 8, "dense_until": 32, "points": 7, "period": 32}
SPACE_DIR = Path(__file__).resolve().parents[2] / "lut" / "spaces"


def reachable_ops(family: str, resolution: int, num_classes: int) -> list[Op]:
    return family_space(family).ops(resolution, num_classes)


def grid_settings(family: str) -> dict[str, int]:
    path = SPACE_DIR / f"{family}.json"
    if path.is_file():
        return {**DEFAULT_GRID, **json.loads(path.read_text())}
    return dict(DEFAULT_GRID)


def channel_grid(top: int, granularity: int = 8, dense_until: int = 32, points: int = 7,
                 period: int = 0) -> list[int]:
    """Grid of channel counts from ``granularity`` to ``top``: every step up to
    ``dense_until``, then ``points`` evenly spaced multiples of ``granularity``.

    With a ``period``, each spaced point comes with the counts just below it in every
    residue class modulo ``period`` (p - 8, p - 16, p - 24 for 32): a kernel's cost depends
    on how a channel count aligns with its register tile as much as on its size (on a
    1x1 map a 224->488 conv costs more than 240->704), so the lookup interpolates between
    points of the query's own residue class."""
    if top <= granularity:
        return [top]
    dense = list(range(granularity, min(dense_until, top) + 1, granularity))
    spaced = [int(round(top * k / (points - 1) / granularity)) * granularity for k in range(1, points)]
    spaced = [p - r for p in spaced for r in range(0, period or granularity, granularity)]
    return sorted({c for c in dense + spaced if 0 < c <= top} | {top})


@dataclass(frozen=True)
class ShapeClass:
    kind: str
    size: int
    kernel: int
    stride: int
    act: str
    cin_grid: tuple[int, ...]
    cout_grid: tuple[int, ...]

    @property
    def key(self) -> tuple[str, int, int, int, str]:
        return (self.kind, self.size, self.kernel, self.stride, self.act)

    def ops(self) -> list[Op]:
        """One standalone op per grid point."""
        if self.kind in ("dwconv", "add", "pool"):
            pairs = [(c, c) for c in self.cin_grid]
        else:
            pairs = [(ci, co) for ci in self.cin_grid for co in self.cout_grid]
        inputs = (-1, -2) if self.kind == "add" else (-1,)
        return [Op(self.kind, ci, co, self.size, self.kernel, self.stride, self.act, inputs=inputs)
                for ci, co in pairs]


def shape_classes(family: str, resolution: int, num_classes: int) -> list[ShapeClass]:
    """The shape classes of a family, each with its channel grids."""
    top: dict[tuple, list[int]] = {}
    fixed_in: dict[tuple, bool] = {}
    for op in reachable_ops(family, resolution, num_classes):
        key = op.shape_class
        hi = top.setdefault(key, [0, 0])
        hi[0], hi[1] = max(hi[0], op.cin), max(hi[1], op.cout)
        # the network input (stem) and the classifier output are not prunable
        fixed_in[key] = fixed_in.get(key, True) and op.inputs == (-1,)
    settings = grid_settings(family)
    # a conv's input-channel axis is measured without residue points (they would multiply
    # a 2-D grid); its output axis, and the single axis of the 1-D kinds, with them
    coarse = {**settings, "period": 0}
    classes = []
    for key, (cin, cout) in sorted(top.items()):
        kind = key[0]
        if fixed_in[key] and kind == "conv":
            cin_grid = (cin,)
        else:
            cin_grid = tuple(channel_grid(cin, **(coarse if kind in ("conv", "fc") else settings)))
        cout_grid = (cout,) if kind == "fc" else tuple(channel_grid(cout, **settings))
        classes.append(ShapeClass(*key, cin_grid, cout_grid))
    if not classes:
        raise HwadaptError(f"family {family!r} reaches no operators")
    return classes
