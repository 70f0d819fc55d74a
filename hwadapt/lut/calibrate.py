"""Calibrating standalone op times to whole-model latency.

A standalone op model pays what the op does not pay inside a network: the runtime's
per-inference overhead, input/output binding, layout conversion at the graph edges.
Inside a network, ops pay per-node dispatch instead. The predictor therefore prices a
network as ``c0 + sum_k a_k * S_k + b * n_ops``, where S_k sums the LUT times of the
network's ops of kind k. The coefficients are fitted by least squares on the whole
random-width networks measured with the table (relative error, so small and large
networks count alike). The op kinds' sums all grow with width and are strongly
collinear, so a small ridge pulls each scale towards 1 (an op costs in a network what
it costs alone): without it, fits traded one kind against another (a residual add at 8.6x
its standalone time), which holds inside the calibration set but not where NetAdapt
takes a network.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import lsq_linear

from hwadapt.arch.ops import Op, lower
from hwadapt.arch.spec import Arch
from hwadapt.lut.lookup import OpLookup
from hwadapt.lut.space import GridPeriods

FEATURES = ("const", "conv1x1", "convkxk", "dwconv", "add", "head", "n_ops")
SCALES = ("conv1x1", "convkxk", "dwconv", "add", "head")
RIDGE = 1e-3  # in squared relative error per unit of scale away from 1


def feature_name(op: Op) -> str:
    if op.kind == "conv":
        return "conv1x1" if op.kernel == 1 else "convkxk"
    if op.kind in ("pool", "fc"):
        return "head"
    return op.kind


def features(ops: list[Op], op_ms: list[float]) -> np.ndarray:
    vector = np.zeros(len(FEATURES))
    vector[0] = 1.0
    for op, ms in zip(ops, op_ms):
        vector[FEATURES.index(feature_name(op))] += ms
    vector[-1] = len(ops)
    return vector


def identity_calibration() -> dict[str, Any]:
    """The naive sum: every op at its standalone time, nothing else."""
    coef = {name: (0.0 if name in ("const", "n_ops") else 1.0) for name in FEATURES}
    return {"coef": coef, "models": 0, "fit_mape": None}


def fit_calibration(rows: list[dict[str, Any]], periods: GridPeriods = GridPeriods()) -> dict[str, Any]:
    """Fit the coefficients on the table's whole-model rows (``periods``: the grid's, for the lookup)."""
    frame = pd.DataFrame(rows)
    models = frame[frame["kind"] == "model"]
    if len(models) < len(FEATURES) + 2:
        return identity_calibration()
    lookup = OpLookup(frame, periods)
    X, y = [], []
    for _, row in models.iterrows():
        ops = lower(Arch.from_json(row["arch"]))
        X.append(features(ops, [lookup.ms(op)[0] for op in ops]))
        y.append(row["ms"])
    X, y = np.array(X), np.array(y)
    # a feature that does not vary over the calibration set (no adds in MobileNetV1, the
    # op count of a fixed-depth family) cannot be told apart from the constant: leave it out
    used = np.array([name == "const" or np.ptp(X[:, j]) > 0 for j, name in enumerate(FEATURES)])
    A, b = X / y[:, None], np.ones(len(y))
    prior = np.array([np.sqrt(RIDGE) * (np.arange(len(FEATURES)) == FEATURES.index(k))
                      for k in SCALES if used[FEATURES.index(k)]]).reshape(-1, len(FEATURES))
    A, b = np.vstack([A, prior]), np.concatenate([b, np.full(len(prior), np.sqrt(RIDGE))])
    lower_bounds = np.array([-np.inf if n in ("const", "n_ops") else 0.0 for n in FEATURES])[used]
    solution = lsq_linear(A[:, used], b, bounds=(lower_bounds, np.inf))
    coef = np.zeros(len(FEATURES))
    coef[used] = solution.x
    predicted = X @ coef
    return {"coef": dict(zip(FEATURES, map(float, coef))), "models": int(len(y)),
            "fit_mape": float(np.mean(np.abs(predicted - y) / y) * 100)}
