"""Channel steps: detecting a kernel's channel tile, and interpolating in padded channels."""
import numpy as np
import pandas as pd
import pytest

from hwadapt.arch.ops import Op
from hwadapt.lut.lookup import ShapeTable
from hwadapt.lut.space import channel_grid, interpolates
from hwadapt.lut.steps import SWEEP_CHANNELS, channel_steps, detect_step, pad


def staircase(channels, step, rng=None, noise=0.0):
    cost = np.array([1.0 + 0.1 * pad(c, step) / 8 for c in channels])
    return cost * (1 + noise * rng.standard_normal(len(cost))) if rng is not None else cost


@pytest.mark.parametrize("step", [1, 16, 32])
def test_detects_the_tile_of_a_staircase(step):
    channels = list(SWEEP_CHANNELS)
    assert detect_step(channels, list(staircase(channels, step))) == step


def test_detection_survives_measurement_noise():
    channels, rng = list(SWEEP_CHANNELS), np.random.default_rng(0)
    found = [detect_step(channels, list(staircase(channels, 16, rng, noise=0.005))) for _ in range(20)]
    assert found.count(16) >= 19


def test_flat_or_falling_costs_count_as_linear():
    channels = list(SWEEP_CHANNELS)
    assert detect_step(channels, [1.0] * len(channels)) == 1
    assert detect_step(channels, list(np.linspace(2.0, 1.0, len(channels)))) == 1


def test_steps_are_keyed_by_kind_and_axis():
    channels = list(SWEEP_CHANNELS)
    steps = channel_steps({("conv", "cin"): list(staircase(channels, 1)),
                           ("conv", "cout"): list(staircase(channels, 16)),
                           ("dwconv", "cin"): list(staircase(channels, 32))})
    assert steps == {"conv": {"cin": 1, "cout": 16}, "dwconv": {"cin": 32}}


def conv_table(steps):
    """A 1x1 conv grid whose cost steps every 16 output channels and grows linearly in input channels."""
    cin, cout = channel_grid(192), channel_grid(192)
    rows = [{"cin": ci, "cout": co, "ms": 0.01 * ci * pad(co, 16)} for ci in cin for co in cout]
    return ShapeTable(("conv", 4, 1, 1, "none"), pd.DataFrame(rows), steps)


@pytest.mark.parametrize("cout", [40, 72, 136, 168])
def test_padded_interpolation_follows_the_staircase(cout):
    op = Op("conv", 96, cout, 4)
    truth = 0.01 * 96 * pad(cout, 16)
    stepped, _ = conv_table({"cin": 1, "cout": 16}).ms(op)
    linear, _ = conv_table(None).ms(op)
    assert stepped == pytest.approx(truth, rel=1e-9)
    assert abs(linear / truth - 1) > abs(stepped / truth - 1)


def test_grid_points_that_round_together_are_averaged_and_ranges_still_checked():
    table = conv_table({"cin": 1, "cout": 16})
    assert table.ms(Op("conv", 96, 24, 4)) == table.ms(Op("conv", 96, 32, 4))
    with pytest.raises(Exception, match="outside"):
        table.ms(Op("conv", 96, 200, 4))


def test_a_real_family_has_channel_counts_between_grid_points():
    assert interpolates("mobilenet_v2", 32, 10)
