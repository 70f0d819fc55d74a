"""Calibrating standalone op times to whole-model latency.

A standalone op model pays what the op does not pay inside a network: the runtime's
per-inference overhead, input/output binding, layout conversion at the graph edges.
Inside a network, ops pay per-node dispatch instead, and they fetch their weights from
further away: a standalone op timed back to back keeps its weights in cache, while in a
network every other layer's weights pass through the cache between two uses (ONNX
Runtime's profiler puts MobileNetV2's weight-heavy 1x1 convs on 7x7 maps 17% above
their kernels timed alone at 224 px: ``benchmarks/in_network_op_times.py``). The
predictor therefore prices a network as ``c0 + sum_k a_k * S_k + w * W + b * n_ops``,
where S_k sums the LUT times of the network's ops of kind k and W their weights in MB.
The coefficients are fitted by least squares on the whole random-width networks
measured with the table (relative error, so small and large networks count alike).
The op kinds' sums all grow with width and are strongly collinear, so a small ridge
pulls each scale towards 1 (an op costs in a network what it costs alone): without it,
fits traded one kind against another (a residual add at 8.6x its standalone time),
which holds inside the calibration set but not where NetAdapt takes a network.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import lsq_linear

from hwadapt.arch.ops import Op, lower, weight_shape, weighted
from hwadapt.arch.spec import Arch
from hwadapt.lut.lookup import OpLookup
from hwadapt.lut.space import GridPeriods

FEATURES = ("const", "conv1x1", "convkxk", "dwconv", "add", "head", "weights_mb", "n_ops")
SCALES = ("conv1x1", "convkxk", "dwconv", "add", "head")
RIDGE = 1e-3  # in squared relative error per unit of scale away from 1


def feature_name(op: Op) -> str:
    if op.kind == "conv":
        return "conv1x1" if op.kernel == 1 else "convkxk"
    if op.kind in ("pool", "fc"):
        return "head"
    return op.kind


def weight_mb(op: Op) -> float:
    """Megabytes of float32 weights the op reads per inference."""
    return float(np.prod(weight_shape(op))) * 4 / 1e6 if weighted(op) else 0.0


def features(ops: list[Op], op_ms: list[float]) -> np.ndarray:
    vector = np.zeros(len(FEATURES))
    vector[FEATURES.index("const")] = 1.0
    for op, ms in zip(ops, op_ms):
        vector[FEATURES.index(feature_name(op))] += ms
        vector[FEATURES.index("weights_mb")] += weight_mb(op)
    vector[FEATURES.index("n_ops")] = len(ops)
    return vector


def identity_calibration() -> dict[str, Any]:
    """The naive sum: every op at its standalone time, nothing else."""
    coef = {name: float(name in SCALES) for name in FEATURES}
    return {"coef": coef, "models": 0, "fit_mape": None}


def fit_calibration(rows: list[dict[str, Any]], periods: GridPeriods = GridPeriods()) -> dict[str, Any]:
    """Fit the coefficients on the table's whole-model rows (``periods``: the grid's, for the lookup)."""
    frame = pd.DataFrame(rows)
    models = frame[frame["kind"] == "model"]
    if models.empty:
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
    if len(y) < used.sum() + 2:
        return identity_calibration()
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
