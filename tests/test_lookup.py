"""Channel grids and interpolation between their points (no measurement)."""
import pandas as pd
import pytest

from hwadapt.ops import Op
from hwadapt.lut.lookup import ShapeTable
from hwadapt.families import Grid
from hwadapt.lut.space import GridPeriods, channel_grid, shape_classes


def test_grid_holds_every_residue_class_near_each_spaced_point():
    plain = channel_grid(1024)
    with_residues = channel_grid(1024, period=32)
    assert set(plain) <= set(with_residues)
    for point in plain[4:]:  # the spaced points above the dense start
        near = [c for c in with_residues if point - 32 < c <= point]
        assert sorted(c % 32 for c in near) == [0, 8, 16, 24]


def aligned_cheap_ms(cout: int) -> float:
    """A kernel whose output channels cost half as much when they fill a 32-wide tile."""
    return cout * (1.0 if cout % 32 == 0 else 1.5) / 1000


def conv_table(period: int) -> ShapeTable:
    couts = channel_grid(256, period=32)
    frame = pd.DataFrame([{"cin": cin, "cout": cout, "ms": aligned_cheap_ms(cout)}
                          for cin in (8, 64) for cout in couts])
    return ShapeTable(("conv", 1, 1, 1, "relu"), frame, GridPeriods(output=period))


@pytest.mark.parametrize("cout", [48, 96, 136, 184, 224])
def test_lookup_interpolates_within_the_residue_class(cout):
    op = Op("conv", 32, cout, 1, 1, 1, "relu")
    assert conv_table(32).ms(op) == (pytest.approx(aligned_cheap_ms(cout)), True)


def test_without_a_period_the_lookup_mixes_residue_classes():
    op = Op("conv", 32, 184, 1, 1, 1, "relu")  # between 168 and 192 (aligned)
    assert conv_table(0).ms(op)[0] < 0.95 * aligned_cheap_ms(184)


def staircase_ms(cin: int) -> float:
    """A kernel that reads its input channels in 16-wide tiles: 40 costs what 48 does."""
    return -(-cin // 16) * 16 / 1000


def test_input_axis_interpolates_within_its_own_period():
    cins = channel_grid(256, period=16)
    frame = pd.DataFrame([{"cin": cin, "cout": cout, "ms": staircase_ms(cin)} for cin in cins for cout in (8, 64)])
    op = Op("conv", 136, 32, 1, 1, 1, "relu")  # between grid points 128 and 160, costs what 144 does
    staircase = ShapeTable(("conv", 1, 1, 1, "relu"), frame, GridPeriods(input=16))
    mixed = ShapeTable(("conv", 1, 1, 1, "relu"), frame, GridPeriods(output=16))
    assert staircase.ms(op)[0] == pytest.approx(staircase_ms(136))
    assert mixed.ms(op)[0] < 0.97 * staircase_ms(136)


def test_input_period_adds_residue_points_to_conv_inputs_only():
    for cls in shape_classes("mobilenet_v1", 32, 10, Grid(points=7, input_period=16).settings()):
        if cls.kind == "conv" and max(cls.cin_grid) > 64:
            assert {c % 16 for c in cls.cin_grid if c > 32} == {0, 8}
        if cls.kind == "dwconv" and max(cls.cin_grid) > 64:
            assert len({c % 32 for c in cls.cin_grid if c > 32}) == 4


def test_a_class_shared_by_the_stem_and_later_convs_covers_the_network_input():
    """A CIFAR ResNet's stem (3 -> 16, 3x3, stride 1 at 32 px) shares its shape class with
    the first stage's convolutions: the class's input axis must reach 3 channels too."""
    from hwadapt.arch import lower
    from hwadapt.families import build

    classes = {cls.key: cls for cls in shape_classes("resnet20", 32, 10)}
    for op in lower(build("resnet20", width=0.5, resolution=32, num_classes=10)):
        if op.kind == "conv":
            grid = classes[op.shape_class]
            assert grid.cin_grid[0] <= op.cin <= grid.cin_grid[-1], op
    stem = classes[("conv", 32, 3, 1, "relu")]
    assert 3 in stem.cin_grid and 16 in stem.cin_grid
