"""Expected latency of the supernet from a LUT, differentiable in the path probabilities.

``E[lat] = fixed + sum_positions sum_i p_i * lat_i``: the predictor prices each
candidate block at each position (its ``block_ms``) and everything else (stem, first
block, head, classifier, per-inference overhead) is the fixed part. Each position's
input shape is the same for all members of the space, so these per-position costs are
exact for every member, not just an approximation around one network, but for the
predictor's spilled-weights term (``hwadapt.lut.calibrate.spilled_mb``), which depends on
the whole network's weights: each candidate carries the spill of the member made of it
alone, exact while no member's weights fall within that term's ramp (between
``SPILL_FROM`` of the fitted cache size and the size itself).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from hwadapt.families.proxyless import ProxylessSpace
from hwadapt.errors import HwadaptError
from hwadapt.lut.predictor import LatencyPredictor

LOSS_FORMS = ("target", "mul", "add")  # target: hwadapt.nas.constraint


class SearchError(HwadaptError):
    """A search that cannot run as asked: unreachable target, LUT not covering the space."""


@dataclass(frozen=True)
class LatencyTable:
    """Per-position candidate costs (ms) in the supernet's choice order, and the fixed part."""

    fixed_ms: float
    costs: tuple[tuple[float, ...], ...]
    predictor: LatencyPredictor = field(compare=False, repr=False)

    def expected(self, probabilities: list[torch.Tensor]) -> torch.Tensor:
        """E[latency] = fixed + sum over positions of sum_i p_i * cost_i, differentiable in
        the path ``probabilities`` (each position's candidate costs are constants)."""
        device = probabilities[0].device if probabilities else None
        total = torch.as_tensor(self.fixed_ms, dtype=torch.float32, device=device)
        for p, costs in zip(probabilities, self.costs):
            total = total + (p * torch.tensor(costs, dtype=p.dtype, device=device)).sum()
        return total

    def of(self, choices: list[int]) -> float:
        return self.fixed_ms + sum(costs[i] for costs, i in zip(self.costs, choices))

    def fastest(self) -> list[int]:
        return [min(range(len(c)), key=c.__getitem__) for c in self.costs]

    def slowest(self) -> list[int]:
        return [max(range(len(c)), key=c.__getitem__) for c in self.costs]

    def check_target(self, target_ms: float) -> None:
        """Raise :class:`SearchError` unless some member of the space can meet ``target_ms``
        without every member meeting it."""
        low, high = self.of(self.fastest()), self.of(self.slowest())
        if target_ms < low:
            raise SearchError(f"target {target_ms:g} ms is below the fastest architecture in the space "
                              f"({low:.4g} ms predicted); use a target of at least {low:.4g} ms")
        if target_ms > high:
            raise SearchError(f"target {target_ms:g} ms is above the slowest architecture in the space "
                              f"({high:.4g} ms predicted): every member meets it, there is nothing to "
                              f"search; use a target of at most {high:.4g} ms")


def latency_table(predictor: LatencyPredictor, space: ProxylessSpace) -> LatencyTable:
    """Price every candidate of every position with ``predictor``.

    One prediction per candidate name (that candidate wherever a position allows it)
    covers the whole table. Raises :class:`SearchError` when the LUT cannot price a
    candidate's ops.
    """
    positions = space.positions()
    first = space.first_position
    names = {name for p in positions for name in p.choices()}
    block_ms: dict[str, list[float]] = {}
    for name in sorted(names):
        arch = space.uniform(name)
        predictor.check(arch)
        try:
            prediction = predictor.predict(arch)
        except HwadaptError as exc:
            raise SearchError(f"the LUT lacks ops of the candidate {name} of the proxyless space ({exc}); "
                              f"build it with `hwadapt profile --family proxyless`") from exc
        block_ms[name] = list(prediction.block_ms)
        if name == "k3e6":
            fixed = prediction.total_ms - sum(prediction.block_ms[first:first + len(positions)])
    costs = tuple(tuple(block_ms[name][first + k] for name in p.choices()) for k, p in enumerate(positions))
    return LatencyTable(fixed, costs, predictor)


def latency_loss(ce: torch.Tensor, expected_ms: torch.Tensor, target_ms: float, *, form: str = "mul",
                 alpha: float = 0.2, beta: float = 0.3, lam: float = 0.1) -> torch.Tensor:
    """The two published forms of the latency-regularised loss (the ``target`` form, which
    lands on the target, is :class:`hwadapt.nas.constraint.LatencyConstraint`).

    - ``mul``: ``alpha * CE * (log E[lat] / log T)^beta``. Latencies enter the logarithm
      in microseconds so that both logs stay positive for sub-millisecond targets (in
      milliseconds, ``log T < 0`` below 1 ms would flip the penalty's sign).
    - ``add``: ``CE + lam * (E[lat] - T) / T``.
    """
    if form == "mul":
        ratio = torch.log(expected_ms * 1000.0) / math.log(target_ms * 1000.0)
        return alpha * ce * ratio ** beta
    if form == "add":
        return ce + lam * (expected_ms - target_ms) / target_ms
    raise SearchError(f"unknown latency loss form {form!r}; expected mul or add")
