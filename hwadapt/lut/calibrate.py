"""Calibrating standalone op times to whole-model latency.

A standalone op model pays what the op does not pay inside a network: the runtime's
per-inference overhead, input/output binding, layout conversion at the graph edges.
Inside a network, ops pay per-node dispatch instead, and they fetch their weights from
further away: a standalone op timed back to back keeps its weights in cache, while in a
network every other layer's weights pass through the cache between two uses. The
predictor therefore prices a network as
``c0 + sum_k a_k * S_k + r * R + w * W + s * P + b * n_ops``, where S_k sums the LUT times
of the network's ops of scale group k (each op kind names its group:
:attr:`hwadapt.ops.OpKind.features`), R the square roots of those times, W their weights
in MB and P the weights that spill (:func:`spilled_mb`). The coefficients are fitted by
least squares on the whole random-width networks measured with the table (relative
error, so small and large networks count alike). docs/measurement.md gives the figures
behind each term.

Why P: an op is timed alone, back to back, with its weights in the core's cache, and
so is every op of a network whose weights all fit; once a network's weights outgrow the
cache, each op fetches them from further away (on a host with 2 MB of L2 per core,
MobileNetV2 networks at 32 px cost 0.5x their standalone sum below 1 MB of weights and 2x
at 9 MB). The cache size is not read off the device (a phone's is rarely exposed): the
fit tries the sizes of ``CACHE_MB`` and keeps the one that fits the networks best.

Why R: the scaled sum is linear in each op's standalone time, and the calibration
networks decide the line where most of their ops are mid-sized. An op of a few channels,
timed alone, is mostly the run's fixed cost, and a network narrow in every group is made
of such ops. R's coefficient takes either sign.

The scale groups' sums all grow with width and are strongly collinear, so a small ridge
pulls each scale towards 1 (an op costs in a network what it costs alone): without it,
fits traded one kind against another (a residual add at 8.6x its standalone time),
which holds inside the calibration set but not where NetAdapt takes a network.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import lsq_linear

from hwadapt.arch.lowering import lower
from hwadapt.arch.spec import Arch
from hwadapt.lut.lookup import OpLookup
from hwadapt.lut.space import GridPeriods
from hwadapt.ops import OP_KINDS, Op

FREE_SIGN = ("const", "sqrt_ms", "n_ops")  # the scales and weight terms are non-negative
TERMS = ("sqrt_ms", "weights_mb", "spilled_mb", "n_ops")
RIDGE = 1e-3  # in squared relative error per unit of scale away from 1
CACHE_MB = tuple(round(0.25 * 2 ** (k / 4), 3) for k in range(25))  # cache sizes tried: 0.25-16 MB
SPILL_FROM = 0.5  # weights start to spill when a network's pass this share of the cache


def scale_groups() -> tuple[str, ...]:
    """The scale groups of every registered op kind, in registration order."""
    return tuple(dict.fromkeys(group for kind in OP_KINDS.values() for group in kind.features))


def feature_names() -> tuple[str, ...]:
    """The calibration's features: the constant, one scale per group, then the other terms."""
    return ("const", *scale_groups(), *TERMS)


def weight_mb(op: Op) -> float:
    """Megabytes of float32 weights the op reads per inference."""
    return sum(float(np.prod(shape)) for shape in op.spec.weight_shapes(op)[:1]) * 4 / 1e6


def spilled_mb(op: Op, network_mb: float, cache_mb: float | None) -> float:
    """The op's weights that a network of ``network_mb`` MB of weights fetches from beyond a
    cache of ``cache_mb``: none while the network's weights fill under ``SPILL_FROM`` of
    the cache, all of them once they fill it (a cache keeps part of a working set a little
    larger than itself). An op too big for the cache alone streams its weights when timed
    alone too, but leaving it out priced validation networks worse."""
    if cache_mb is None:
        return 0.0
    share = (network_mb - SPILL_FROM * cache_mb) / ((1 - SPILL_FROM) * cache_mb)
    return weight_mb(op) * float(np.clip(share, 0.0, 1.0))


def features(ops: list[Op], op_ms: list[float], cache_mb: float | None = None) -> np.ndarray:
    names = feature_names()
    column = {name: j for j, name in enumerate(names)}
    vector = np.zeros(len(names))
    vector[column["const"]] = 1.0
    network_mb = sum(map(weight_mb, ops))
    for op, ms in zip(ops, op_ms):
        vector[column[op.spec.feature(op)]] += ms
        vector[column["sqrt_ms"]] += np.sqrt(max(ms, 0.0))
        vector[column["weights_mb"]] += weight_mb(op)
        vector[column["spilled_mb"]] += spilled_mb(op, network_mb, cache_mb)
    vector[column["n_ops"]] = len(ops)
    return vector


def identity_calibration() -> dict[str, Any]:
    """The naive sum: every op at its standalone time, nothing else."""
    scales = scale_groups()
    coef = {name: float(name in scales) for name in feature_names()}
    return {"coef": coef, "models": 0, "fit_mape": None, "cache_mb": None}


def calibration_networks(rows: list[dict[str, Any]],
                         periods: GridPeriods) -> tuple[list[list[Op]], list[list[float]], np.ndarray]:
    """The table's whole-model rows, in table order: each network's ops, their LUT times,
    and the measured times."""
    frame = pd.DataFrame(rows)
    models = frame[frame["kind"] == "model"]
    if models.empty:
        return [], [], np.zeros(0)
    lookup = OpLookup(frame, periods)
    networks = [lower(Arch.from_json(arch)) for arch in models["arch"]]
    return networks, [[lookup.ms(op)[0] for op in ops] for ops in networks], models["ms"].to_numpy(dtype=float)


def fit_calibration(rows: list[dict[str, Any]], periods: GridPeriods = GridPeriods(),
                    cache_sizes: Sequence[float] = CACHE_MB,
                    weights: Sequence[float] | None = None) -> dict[str, Any]:
    """Fit the coefficients on the table's whole-model rows (``periods``: the grid's, for the
    lookup), with each of ``cache_sizes`` (MB) and with no spill term; keep the best fit.
    ``weights``: one per model row, in table order (None: all alike)."""
    networks, op_ms, y = calibration_networks(rows, periods)
    if not networks:
        return identity_calibration()
    w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=float)
    fits = [fit_features(np.array([features(ops, ms, cache) for ops, ms in zip(networks, op_ms)]), y, cache, w)
            for cache in (None, *cache_sizes)]
    fits = [f for f in fits if f is not None]
    return min(fits, key=lambda f: f["fit_mape"]) if fits else identity_calibration()


def fit_features(X: np.ndarray, y: np.ndarray, cache_mb: float | None, weights: np.ndarray) -> dict[str, Any] | None:
    """The coefficients for networks whose :func:`features` are the rows of ``X`` and whose
    measured times are ``y``: non-negative least squares on relative error (each
    network's squared error times its weight), scales pulled towards 1; None when there
    are too few networks for the features that vary. ``fit_mape`` is unweighted."""
    # a feature that does not vary over the calibration set (no adds in MobileNetV1, the
    # op count of a fixed-depth family, a spill where no network passes half the cache)
    # cannot be told apart from the constant: leave it out
    names = feature_names()
    used = np.array([name == "const" or np.ptp(X[:, j]) > 0 for j, name in enumerate(names)])
    # nor a spill where every network spills all its weights: that is the weight term again
    spill, weights_mb = names.index("spilled_mb"), names.index("weights_mb")
    if np.allclose(X[:, spill], X[:, weights_mb]):
        used[spill] = False
    if len(y) < used.sum() + 2:
        return None
    root = np.sqrt(weights)
    A, b = X / y[:, None] * root[:, None], root
    prior = np.array([np.sqrt(RIDGE) * (np.arange(len(names)) == names.index(k))
                      for k in scale_groups() if used[names.index(k)]]).reshape(-1, len(names))
    A, b = np.vstack([A, prior]), np.concatenate([b, np.full(len(prior), np.sqrt(RIDGE))])
    lower_bounds = np.array([-np.inf if n in FREE_SIGN else 0.0 for n in names])[used]
    solution = lsq_linear(A[:, used], b, bounds=(lower_bounds, np.inf))
    coef = np.zeros(len(names))
    coef[used] = solution.x
    predicted = X @ coef
    # a scale group no calibration network holds (a form's own op, such as ``stripes``)
    # prices its ops at their standalone time, as the ridge's prior would: not at nothing
    coef[[j for j, name in enumerate(names) if name in scale_groups() and not used[j]]] = 1.0
    return {"coef": dict(zip(names, map(float, coef))), "models": int(len(y)),
            "fit_mape": float(np.mean(np.abs(predicted - y) / y) * 100),
            "cache_mb": cache_mb if used[spill] else None}
