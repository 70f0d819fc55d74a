"""Marginal prices of channel groups: latency from the calibrated predictor on a real ONNX
Runtime LUT of the toy family, FLOPs and weights against published counts."""
import math
import time

import numpy as np
import pytest
from conftest import TOY, TOY_RES

from hwadapt.adapt.marginal import PRICES, channels, flops, margins, marginal_latency, savings, tile_span, weights
from hwadapt.arch import set_widths, width_groups
from hwadapt.families import build
from hwadapt.lut.predictor import LatencyPredictor


@pytest.fixture(scope="module")
def predictor(toy_lut):
    return LatencyPredictor.load(toy_lut)


@pytest.fixture(scope="module")
def arch():
    return build(TOY, resolution=TOY_RES, num_classes=10)


def test_each_group_saves_what_the_predictor_says_narrowing_it_saves(predictor, arch):
    found = marginal_latency(predictor, arch, unit=8)
    groups = width_groups(arch)
    assert list(found) == [g.name for g in groups]
    current = predictor.predict_ms(arch)
    for group in groups:
        margin = found[group.name]
        width = group.width(arch)
        assert (margin.low, margin.high) == ((width - 8, width) if width - 8 >= 8 else (width, width + 8))
        narrowed = predictor.predict_ms(set_widths(arch, {group.name: margin.low}))
        wide = current if margin.high == width else predictor.predict_ms(set_widths(arch, {group.name: margin.high}))
        assert margin.saved == pytest.approx(wide - narrowed, abs=1e-12)
        assert margin.per_channel == pytest.approx(margin.saved / 8)
        assert (margin.saved > 0) == (narrowed < wide)  # positive exactly where the LUT prices the narrower lower


def test_a_residual_tied_group_is_priced_once_with_every_member_narrowed(predictor, arch):
    tied = [g for g in width_groups(arch) if len(g.members) > 1]
    assert tied, "the toy family has a residual block"
    found = marginal_latency(predictor, arch)
    for group in tied:
        narrowed = set_widths(arch, {group.name: group.width(arch) - 8})
        assert all(getattr(narrowed.blocks[i], f) == group.width(arch) - 8 for i, f in group.members)
        assert found[group.name].saved == pytest.approx(predictor.predict_ms(arch) - predictor.predict_ms(narrowed))
    assert len(found) == len(width_groups(arch))


def test_the_price_is_the_calibrated_one_not_the_table_sum(predictor, arch):
    calibrated = marginal_latency(predictor, arch)
    raw = marginal_latency(predictor.naive_sum(), arch)
    assert any(not math.isclose(calibrated[g].saved, raw[g].saved, rel_tol=1e-3) for g in calibrated)


def test_a_group_at_the_floor_is_priced_by_the_next_unit_up(predictor, arch):
    group = width_groups(arch)[0]
    narrow = set_widths(arch, {group.name: 8})
    margin = marginal_latency(predictor, narrow, unit=8)[group.name]
    assert (margin.low, margin.high) == (8, 16)
    expected = predictor.predict_ms(set_widths(arch, {group.name: 16})) - predictor.predict_ms(narrow)
    assert margin.saved == pytest.approx(expected)


def test_savings_and_the_tile_span(predictor, arch):
    group = width_groups(arch)[1]
    widths = [8, 16, group.width(arch)]
    got = savings(arch, predictor.predict_ms, group.name, widths)
    current = predictor.predict_ms(arch)
    assert got == pytest.approx([current - predictor.predict_ms(set_widths(arch, {group.name: w})) for w in widths])
    assert got[-1] == 0
    periods = predictor.meta.periods
    assert tile_span(predictor) == math.lcm(8, periods.output or 1, periods.input or 1)


def test_recomputing_every_margin_is_cheap(predictor, arch):
    started = time.perf_counter()
    for _ in range(10):
        marginal_latency(predictor, arch)
    assert (time.perf_counter() - started) / 10 < 0.5  # well under a second, even on a loaded host


def test_flops_and_weights_match_mobilenet_v1s_published_counts():
    v1 = build("mobilenet_v1", width=1.0, resolution=224, num_classes=1000)
    assert flops(v1) / 2 == pytest.approx(569e6, rel=0.01)  # Howard et al. 2017, table 8: 569 M mult-adds
    assert weights(v1) == pytest.approx(4.2e6, rel=0.01)  # 4.2 M parameters
    assert channels(v1) == sum(g.width(v1) for g in width_groups(v1))


def test_flops_and_channel_margins_are_exact_slopes(arch):
    for name, margin in margins(arch, flops, unit=1).items():
        narrowed = set_widths(arch, {name: margin.low})
        assert margin.saved == pytest.approx(flops(arch) - flops(narrowed))
    assert {m.per_channel for m in margins(arch, channels, unit=4).values()} == {1.0}
    assert set(PRICES) == {"latency", "flops", "size", "channels"}
    assert np.isfinite([m.saved for m in margins(arch, weights).values()]).all()
