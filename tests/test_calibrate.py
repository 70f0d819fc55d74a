"""Calibration of standalone op times to whole networks, on a synthetic table (no measurement)."""
import numpy as np
import pandas as pd
import pytest

from hwadapt.arch import lower
from hwadapt.lut.calibrate import (CACHE_MB, calibration_networks, feature_names, features, fit_calibration,
                                   fit_features, spilled_mb, weight_mb)
from hwadapt.lut.calibration_set import (SHRUNK_WEIGHT, calibration_roles, calibration_set, calibration_weights,
                                         new_draw)
from hwadapt.lut.lookup import OpLookup
from hwadapt.lut.predictor import LatencyPredictor
from hwadapt.lut.profile import model_row_key, op_row_key
from hwadapt.lut.space import GridPeriods, grid_settings, shape_classes
from hwadapt.lut.store import LutError, LutMeta
from hwadapt.lut.validate import sample_archs

FAMILY, RESOLUTION = "mobilenet_v2", 32
OVERHEAD_MS = 0.02
DRAW = new_draw(30, 0)  # the record of calibration_set(..., 30, seed=0)


def calibration_archs(*args, **kwargs):
    return [arch for arch, _ in calibration_set(*args, **kwargs)]


def fit_holding(rows, periods, held: str, weights=None) -> dict:
    """``fit_calibration`` with the feature ``held`` at 0 (its column zero: the fit drops it)."""
    networks, op_ms, y = calibration_networks(rows, periods)
    column = feature_names().index(held)
    w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=float)
    fits = []
    for cache in (None, *CACHE_MB):
        X = np.array([features(ops, ms, cache) for ops, ms in zip(networks, op_ms)])
        X[:, column] = 0.0
        fits.append(fit_features(X, y, cache, w))
    return min((f for f in fits if f), key=lambda f: f["fit_mape"])


def standalone_ms(op) -> float:
    """Bilinear in the channel counts, so the grid's interpolation is exact."""
    spatial = op.out_size ** 2 * op.kernel ** 2
    per_channel = op.cout if op.kind in ("dwconv", "add", "pool") else op.cin * op.cout
    return 1e-3 + spatial * per_channel / 4e7


def network_ms(arch, ms_per_weight_mb: float, cache_mb: float | None = None, ms_per_spilled_mb: float = 0.0) -> float:
    """What a whole network costs: its ops, the weights it streams, the weights that spill
    out of a cache of ``cache_mb``, one overhead."""
    ops = lower(arch)
    network_mb = sum(map(weight_mb, ops))
    return OVERHEAD_MS + sum(standalone_ms(op) + ms_per_weight_mb * weight_mb(op)
                             + ms_per_spilled_mb * spilled_mb(op, network_mb, cache_mb) for op in ops)


def fitted(ms_per_weight_mb: float, cache_mb: float | None = None,
           ms_per_spilled_mb: float = 0.0) -> tuple[LatencyPredictor, dict]:
    grid = grid_settings(FAMILY)
    rows = [{**op_row_key(op), "ms": standalone_ms(op)}
            for cls in shape_classes(FAMILY, RESOLUTION, 10, grid) for op in cls.ops()]
    rows += [{**model_row_key(arch), "ms": network_ms(arch, ms_per_weight_mb, cache_mb, ms_per_spilled_mb)}
             for arch in calibration_archs(FAMILY, RESOLUTION, 10, 30, seed=0)]
    periods = GridPeriods.of(grid)
    meta = LutMeta(FAMILY, RESOLUTION, 10, "synthetic", {}, {}, grid=grid, calibration_draw=DRAW)
    meta.calibration = calibration = fit_calibration(rows, periods, weights=calibration_weights(rows, meta))
    return LatencyPredictor(meta, OpLookup(pd.DataFrame(rows), periods)), calibration


def test_shrunk_calibration_networks_weigh_less_and_members_are_priced_closer():
    """Where the shrunk networks cost 10% more than the members' model says, the fit at
    SHRUNK_WEIGHT prices the members closer than a fit counting every network alike. The
    concave term is held at 0: in this synthetic table it takes up part of the shrunk
    networks' excess (a per-network factor), which would hide what the weights do."""
    grid, periods = grid_settings(FAMILY), GridPeriods.of(grid_settings(FAMILY))
    drawn = calibration_set(FAMILY, RESOLUTION, 10, 30, seed=0)
    rows = [{**op_row_key(op), "ms": standalone_ms(op)}
            for cls in shape_classes(FAMILY, RESOLUTION, 10, grid) for op in cls.ops()]
    rows += [{**model_row_key(a), "ms": network_ms(a, 0.01) * (1.1 if role == "shrunk" else 1.0)} for a, role in drawn]
    meta = LutMeta(FAMILY, RESOLUTION, 10, "synthetic", {}, {}, grid=grid, calibration_draw=DRAW)
    weights = calibration_weights(rows, meta)
    assert SHRUNK_WEIGHT == 0.5 and weights.tolist() == [1.0] * 21 + [0.5] * 9
    members = sample_archs(FAMILY, RESOLUTION, 10, 12, seed=1)

    def members_error(fit_weights) -> float:
        meta.calibration = fit_holding(rows, periods, "sqrt_ms", fit_weights)
        predictor = LatencyPredictor(meta, OpLookup(pd.DataFrame(rows), periods))
        return float(np.mean([abs(predictor.predict_ms(a) / network_ms(a, 0.01) - 1) for a in members]))

    assert members_error(weights) < 0.95 * members_error(None)


@pytest.mark.parametrize("ms_per_weight_mb", [0.0, 0.01])
def test_fit_recovers_the_weight_traffic_and_prices_unseen_networks(ms_per_weight_mb):
    predictor, calibration = fitted(ms_per_weight_mb)
    assert calibration["coef"]["weights_mb"] == pytest.approx(ms_per_weight_mb, abs=5e-4)
    unseen = sample_archs(FAMILY, RESOLUTION, 10, 12, seed=1)
    errors = [predictor.predict_ms(a) / network_ms(a, ms_per_weight_mb) - 1 for a in unseen]
    assert np.max(np.abs(errors)) < 0.01


def test_fit_finds_the_cache_the_weights_spill_from():
    """Networks whose weights outgrow a 1.19 MB cache pay for fetching them from further
    away: the fit picks that size among its candidates and prices unseen networks."""
    cache_mb = CACHE_MB[9]
    predictor, calibration = fitted(0.002, cache_mb, ms_per_spilled_mb=0.03)
    assert cache_mb == pytest.approx(1.19, abs=0.01)
    assert calibration["cache_mb"] == cache_mb and calibration["fit_mape"] < 0.5
    assert calibration["coef"]["spilled_mb"] == pytest.approx(0.03, rel=0.05)
    unseen = sample_archs(FAMILY, RESOLUTION, 10, 12, seed=1)
    errors = [predictor.predict_ms(a) / network_ms(a, 0.002, cache_mb, 0.03) - 1 for a in unseen]
    assert np.max(np.abs(errors)) < 0.01
    assert fitted(0.01)[1]["coef"]["spilled_mb"] < 1e-3  # no spill where there is none


def test_spilled_weights_ramp_up_to_the_cache_size():
    op = lower(sample_archs(FAMILY, RESOLUTION, 10, 1, seed=0)[0])[5]
    mb = weight_mb(op)
    assert mb > 0
    assert [spilled_mb(op, network, 2 * mb) for network in (0.5 * mb, mb, 1.5 * mb, 2 * mb, 8 * mb)] == \
        pytest.approx([0.0, 0.0, 0.5 * mb, mb, mb])
    assert spilled_mb(op, 8 * mb, None) == 0.0


def test_shrunk_networks_are_told_apart_and_other_draws_are_not_resumed():
    """A table records how its calibration set was drawn, and its fit weighs the networks
    by their role; a table drawn another way (an older hwadapt's) cannot be resumed."""
    drawn = calibration_set(FAMILY, RESOLUTION, 10, 30, seed=0)
    roles = ["base"] + ["member"] * 20 + ["shrunk"] * 9
    meta = LutMeta(FAMILY, RESOLUTION, 10, "synthetic", {}, {}, calibration_draw=DRAW)
    archs = [a.to_json(indent=None) for a, _ in drawn]
    assert [r for _, r in drawn] == roles and calibration_roles(archs, meta).tolist() == roles
    rows = [{"kind": "model", "arch": a} for a in archs]
    assert calibration_weights(rows, meta).tolist() == [SHRUNK_WEIGHT if r == "shrunk" else 1.0 for r in roles]
    assert len({a.to_json() for a, _ in drawn}) == 30
    for record in ({}, {**DRAW, "scheme": "independent"}, {**DRAW, "narrow": 5}):
        with pytest.raises(LutError, match="cannot be resumed|not resumed"):
            calibration_roles(archs, LutMeta(FAMILY, RESOLUTION, 10, "synthetic", {}, {}, calibration_draw=record))


def test_concave_term_is_fitted_where_small_ops_cost_less_and_can_be_held_out():
    """Networks whose ops cost their standalone time less a multiple of its square root (a
    small op pays relatively less in a network): the fit finds that term and prices
    unseen networks; held at 0, it prices them worse."""
    grid, periods = grid_settings(FAMILY), GridPeriods.of(grid_settings(FAMILY))
    rows = [{**op_row_key(op), "ms": standalone_ms(op)}
            for cls in shape_classes(FAMILY, RESOLUTION, 10, grid) for op in cls.ops()]

    def concave_ms(arch) -> float:
        return OVERHEAD_MS + sum(standalone_ms(op) - 0.004 * np.sqrt(standalone_ms(op)) for op in lower(arch))

    rows += [{**model_row_key(a), "ms": concave_ms(a)} for a in calibration_archs(FAMILY, RESOLUTION, 10, 30, seed=0)]
    unseen = sample_archs(FAMILY, RESOLUTION, 10, 12, seed=1)

    def worst_error(calibration: dict) -> tuple[float, dict]:
        meta = LutMeta(FAMILY, RESOLUTION, 10, "synthetic", {}, {}, grid=grid, calibration_draw=DRAW)
        meta.calibration = calibration
        predictor = LatencyPredictor(meta, OpLookup(pd.DataFrame(rows), periods))
        return max(abs(predictor.predict_ms(a) / concave_ms(a) - 1) for a in unseen), meta.calibration

    error, calibration = worst_error(fit_calibration(rows, periods))
    assert calibration["coef"]["sqrt_ms"] == pytest.approx(-0.004, rel=0.1) and error < 0.01
    held_error, held = worst_error(fit_holding(rows, periods, "sqrt_ms"))
    assert held["coef"]["sqrt_ms"] == 0.0 and held_error > 2 * error
