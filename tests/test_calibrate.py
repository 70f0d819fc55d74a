"""Calibration of standalone op times to whole networks, on a synthetic table (no measurement)."""
import numpy as np
import pandas as pd
import pytest

from hwadapt.arch.ops import lower
from hwadapt.lut.calibrate import fit_calibration, weight_mb
from hwadapt.lut.lookup import OpLookup
from hwadapt.lut.predictor import LatencyPredictor
from hwadapt.lut.profile import calibration_archs, model_row_key, op_row_key
from hwadapt.lut.space import GridPeriods, grid_settings, shape_classes
from hwadapt.lut.store import LutMeta
from hwadapt.lut.validate import sample_archs

FAMILY, RESOLUTION = "mobilenet_v2", 32
OVERHEAD_MS = 0.02


def standalone_ms(op) -> float:
    """Bilinear in the channel counts, so the grid's interpolation is exact."""
    spatial = op.out_size ** 2 * op.kernel ** 2
    per_channel = op.cout if op.kind in ("dwconv", "add", "pool") else op.cin * op.cout
    return 1e-3 + spatial * per_channel / 4e7


def network_ms(arch, ms_per_weight_mb: float) -> float:
    """What a whole network costs: its ops, the weights it streams, one overhead."""
    ops = lower(arch)
    return OVERHEAD_MS + sum(standalone_ms(op) + ms_per_weight_mb * weight_mb(op) for op in ops)


def fitted(ms_per_weight_mb: float) -> tuple[LatencyPredictor, dict]:
    grid = grid_settings(FAMILY)
    rows = [{**op_row_key(op), "ms": standalone_ms(op)}
            for cls in shape_classes(FAMILY, RESOLUTION, 10, grid) for op in cls.ops()]
    rows += [{**model_row_key(arch), "ms": network_ms(arch, ms_per_weight_mb)}
             for arch in calibration_archs(FAMILY, RESOLUTION, 10, 30, seed=0)]
    periods = GridPeriods.of(grid)
    calibration = fit_calibration(rows, periods)
    meta = LutMeta(FAMILY, RESOLUTION, 10, "synthetic", {}, {}, calibration=calibration, grid=grid)
    return LatencyPredictor(meta, OpLookup(pd.DataFrame(rows), periods)), calibration


@pytest.mark.parametrize("ms_per_weight_mb", [0.0, 0.01])
def test_fit_recovers_the_weight_traffic_and_prices_unseen_networks(ms_per_weight_mb):
    predictor, calibration = fitted(ms_per_weight_mb)
    assert calibration["coef"]["weights_mb"] == pytest.approx(ms_per_weight_mb, abs=5e-4)
    unseen = sample_archs(FAMILY, RESOLUTION, 10, 12, seed=1)
    errors = [predictor.predict_ms(a) / network_ms(a, ms_per_weight_mb) - 1 for a in unseen]
    assert np.max(np.abs(errors)) < 0.01
