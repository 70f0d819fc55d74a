"""Channel grids and interpolation between their points (no measurement)."""
import pandas as pd
import pytest

from hwadapt.arch.ops import Op
from hwadapt.lut.lookup import ShapeTable
from hwadapt.lut.space import channel_grid


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
    return ShapeTable(("conv", 1, 1, 1, "relu"), frame, period)


@pytest.mark.parametrize("cout", [48, 96, 136, 184, 224])
def test_lookup_interpolates_within_the_residue_class(cout):
    op = Op("conv", 32, cout, 1, 1, 1, "relu")
    assert conv_table(32).ms(op) == (pytest.approx(aligned_cheap_ms(cout)), True)


def test_without_a_period_the_lookup_mixes_residue_classes():
    op = Op("conv", 32, 184, 1, 1, 1, "relu")  # between 168 and 192 (aligned)
    assert conv_table(0).ms(op)[0] < 0.95 * aligned_cheap_ms(184)
