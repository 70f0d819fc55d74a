"""What a LUT must cover: the operator shapes a family (or search space) can reach.

Each *shape class* (op kind, input side, kernel, stride, activation) is measured on a
grid of channel counts; the predictor interpolates between grid points. Each family
registers its grid settings (:class:`hwadapt.families.Grid`).
"""
from __future__ import annotations

from dataclasses import dataclass

from hwadapt.errors import HwadaptError
from hwadapt.families import get_family
from hwadapt.ops import Op, op_kind


def reachable_ops(family: str, resolution: int, num_classes: int) -> list[Op]:
    return get_family(family).space.ops(resolution, num_classes)


def grid_settings(family: str, backend: str = "") -> dict[str, int]:
    """The family's grid for ``backend``, as a table's sidecar records it."""
    return get_family(family).grid.settings(backend)


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


GRID_KEYS = ("granularity", "dense_until", "points", "period", "input_period")


@dataclass(frozen=True)
class GridPeriods:
    """Residue periods of a LUT's channel grids (0: no residue points on that axis).

    ``output``: a conv's output axis and the single axis of depthwise, add and pooling;
    ``input``: a conv's (and the classifier's) input axis."""
    output: int = 0
    input: int = 0

    @classmethod
    def of(cls, grid: dict[str, int]) -> GridPeriods:
        return cls(int(grid.get("period", 0)), int(grid.get("input_period", 0)))

    def axes(self, kind: str) -> tuple[int, ...]:
        """The period of each axis of a shape class of ``kind`` (its lookup's axes)."""
        return (self.output,) if op_kind(kind).one_axis else (self.input, self.output)


def standalone_op(kind: str, size: int, kernel: int, stride: int, act: str, cin: int, cout: int) -> Op:
    """The op a LUT row measures (the row key's order), fed by the model's own input(s)."""
    return Op(kind, int(cin), int(cout), int(size), int(kernel), int(stride), act,
              inputs=tuple(range(-1, -op_kind(kind).arity - 1, -1)))


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
        if op_kind(self.kind).one_axis:
            pairs = [(c, c) for c in self.cin_grid]
        else:
            pairs = [(ci, co) for ci in self.cin_grid for co in self.cout_grid]
        return [standalone_op(*self.key, ci, co) for ci, co in pairs]


# the grid of a shape class that only an export form's stand-in ops reach (``forms``): a
# stripe form's maps run to k*k times a layer's filters, and a form's LUT rows are checked
# by measuring the forms themselves, so four points per axis
STAND_IN_GRID = {"granularity": 8, "dense_until": 8, "points": 4, "period": 0}


def stand_in_ops(ops: list[Op], forms: tuple[str, ...] | list[str]) -> list[Op]:
    """The ops that the export forms of the op kinds ``forms`` put in place of ``ops``
    (:meth:`~hwadapt.ops.OpKind.stand_ins`)."""
    return [alt for kind in forms for op in ops for alt in op_kind(kind).stand_ins(op)]


@dataclass
class _Extent:
    """How far the ops of one shape class reach: the narrowest and widest of each axis,
    and whether every one reads the network's input."""

    cin: tuple[int, int]
    cout: tuple[int, int]
    fixed_in: bool

    def add(self, op: Op) -> None:
        self.cin = (min(self.cin[0], op.cin), max(self.cin[1], op.cin))
        self.cout = (min(self.cout[0], op.cout), max(self.cout[1], op.cout))
        self.fixed_in = self.fixed_in and op.inputs == (-1,)  # the network input (the stem's) is not prunable


def _extents(ops: list[Op]) -> dict[tuple, _Extent]:
    found: dict[tuple, _Extent] = {}
    for op in ops:
        if op.shape_class in found:
            found[op.shape_class].add(op)
        else:
            found[op.shape_class] = _Extent((op.cin, op.cin), (op.cout, op.cout), op.inputs == (-1,))
    return found


def _axis(reach: tuple[int, int], **settings: int) -> tuple[int, ...]:
    """The grid of an axis up to its widest width, with its narrowest where that falls below
    the grid: a stem sharing its shape class with later layers (a CIFAR ResNet's first
    stage), a stripe form left with a few maps."""
    grid = channel_grid(reach[1], **settings)
    return tuple(sorted(set(grid) | {reach[0]}) if reach[0] < grid[0] else grid)


def shape_classes(family: str, resolution: int, num_classes: int,
                  grid: dict[str, int] | None = None, forms: tuple[str, ...] | list[str] = ()) -> list[ShapeClass]:
    """The shape classes of a family, each with its channel grids (``grid``: settings as
    :func:`grid_settings` gives them; the family's default), and those of the stand-in
    ops of the export forms ``forms`` (op kinds), on :data:`STAND_IN_GRID` where the
    family reaches none of their shapes."""
    ops = reachable_ops(family, resolution, num_classes)
    extra = stand_in_ops(ops, forms)
    only_forms = set(_extents(extra)) - set(_extents(ops))
    family_settings = {k: v for k, v in (grid or grid_settings(family)).items() if k in GRID_KEYS}
    classes = []
    for key, reach in sorted(_extents(ops + extra).items()):
        settings = dict(STAND_IN_GRID, input_period=0) if key in only_forms else dict(family_settings)
        # a two-axis op's input axis has its own period: residue points there multiply a 2-D grid
        input_period = settings.pop("input_period", 0)
        input_axis = {**settings, "period": input_period}
        spec = op_kind(key[0])
        if spec.one_axis:
            cin_grid = _axis(reach.cin, **settings)
        else:
            cin_grid = (reach.cin[1],) if reach.fixed_in else _axis(reach.cin, **input_axis)
        cout_grid = (reach.cout[1],) if spec.fixed_output else _axis(reach.cout, **settings)
        classes.append(ShapeClass(*key, cin_grid, cout_grid))
    if not classes:
        raise HwadaptError(f"family {family!r} reaches no operators")
    return classes
