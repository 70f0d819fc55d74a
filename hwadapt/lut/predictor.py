"""Pricing an architecture from a LUT: interpolated op times, calibrated to whole models.

The predictor prices; reaching the table's device to measure is the target's job
(:meth:`LutMeta.target <hwadapt.lut.store.LutMeta.target>`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

from hwadapt.arch.lowering import lower
from hwadapt.arch.spec import Arch
from hwadapt.lut.calibrate import feature_names, identity_calibration, scale_groups, spilled_mb, weight_mb
from hwadapt.lut.lookup import OpLookup
from hwadapt.lut.store import LutError, LutMeta, load_lut
from hwadapt.measure import Target
from hwadapt.ops import Op


class LutMismatchError(LutError):
    """A LUT used for an architecture it was not built for."""


@dataclass
class Prediction:
    total_ms: float
    fixed_ms: float  # per-inference part that no op owns
    op_ms: list[float]  # calibrated cost of each op of lower(arch)
    block_ms: list[float]  # per block (sum of its ops; 0 for skip blocks)
    interpolated: bool  # some op fell between grid points


class LatencyPredictor:
    """Latency (ms) of any architecture of the LUT's family and resolution."""

    def __init__(self, meta: LutMeta, lookup: OpLookup, force: bool = False) -> None:
        self.meta, self.lookup, self.force = meta, lookup, force
        calibration = meta.calibration or identity_calibration()
        # a scale group a table's fit does not name is priced at its standalone time
        self.coef = {name: float(calibration["coef"].get(name, 1.0 if name in scale_groups() else 0.0))
                     for name in feature_names()}
        self.cache_mb = calibration.get("cache_mb")  # None: no spill term (or a table fitted without one)

    @classmethod
    def load(cls, path: str | Path, *, force: bool = False) -> LatencyPredictor:
        meta, frame = load_lut(path)
        return cls(meta, OpLookup(frame, meta.periods), force)

    def naive_sum(self) -> LatencyPredictor:
        """The same table priced as the plain sum of standalone op times (what the calibration corrects)."""
        return LatencyPredictor(replace(self.meta, calibration=identity_calibration()), self.lookup, self.force)

    @property
    def target(self) -> Target:
        """The table's device: where its prices are measured end to end."""
        return self.meta.target(self.force)

    def check(self, arch: Arch) -> None:
        """Refuse architectures of another family, resolution or class count (unless forced)."""
        wanted = {"family": arch.family, "resolution": arch.resolution, "num_classes": arch.num_classes}
        for name, value in wanted.items():
            if getattr(self.meta, name) != value and not self.force:
                raise LutMismatchError(
                    f"LUT was built for {name}={getattr(self.meta, name)!r}, the network has {value!r} "
                    "(build a matching LUT, or pass --force to price it anyway)")

    def off_grid(self, arch: Arch) -> list[str]:
        """The widths of ``arch`` that are not multiples of the table's granularity (8).

        Such a width is priced between its grid neighbours, which is what a search over
        fractional structures wants, but a network deployed with it may run far slower than
        both (a runtime's kernels work on blocks of channels): one network of widths 11, 25,
        45... measured 6x its price on ONNX Runtime, where the same network rounded to
        multiples of 8 measured what it was priced at."""
        step = int(self.meta.grid.get("granularity", 8))
        return [f"block {i} {name}={getattr(block, name)}" for i, block in enumerate(arch.blocks)
                for name in ("out", "carry", "mid") if getattr(block, name) % step]

    def op_cost(self, op: Op, network_mb: float) -> tuple[float, bool]:
        """Calibrated cost of one op in a network with ``network_mb`` MB of weights (scaled
        LUT time, its concave term, weight traffic, spilled weights, per-op overhead)."""
        ms, interpolated = self.lookup.ms(op)
        cost = (self.coef[op.spec.feature(op)] * ms + self.coef["sqrt_ms"] * math.sqrt(max(ms, 0.0))
                + self.coef["weights_mb"] * weight_mb(op)
                + self.coef["spilled_mb"] * spilled_mb(op, network_mb, self.cache_mb) + self.coef["n_ops"])
        return cost, interpolated

    def predict(self, arch: Arch) -> Prediction:
        self.check(arch)
        return self.price(lower(arch), len(arch.blocks))

    def price(self, ops: list[Op], blocks: int | None = None) -> Prediction:
        """The price of an op list: ``lower(arch)`` or another export form of a network of
        the table's family and resolution (``blocks``: how many blocks its ops' ``block``
        fields count; None: as many as they name)."""
        network_mb = sum(map(weight_mb, ops))
        costs, flags = zip(*(self.op_cost(op, network_mb) for op in ops))
        per_block = [0.0] * (max(op.block for op in ops) + 1 if blocks is None else blocks)
        for op, cost in zip(ops, costs):
            if op.block >= 0:
                per_block[op.block] += cost
        fixed = self.coef["const"] + sum(c for op, c in zip(ops, costs) if op.block < 0)
        return Prediction(fixed + sum(per_block), fixed, list(costs), per_block, any(flags))

    def predict_ms(self, arch: Arch) -> float:
        return self.predict(arch).total_ms
