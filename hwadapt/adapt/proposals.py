"""NetAdapt's per-iteration target and per-group proposals, priced by the latency predictor.

Iteration ``k`` (from 0) asks for ``first_step x initial_ms x decay**k`` ms less than the
current network (never below the budget). Each channel group then proposes the largest
width, a multiple of ``granularity`` below its current width, whose *predicted* latency
meets that target (``set_widths`` keeps every residual connection as it was).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hwadapt.arch import Arch, set_widths, width_groups

Predict = Callable[[Arch], float]


@dataclass(frozen=True)
class Proposal:
    group: str
    width: int
    arch: Arch
    predicted_ms: float


def iteration_target(current_ms: float, initial_ms: float, iteration: int, *, first_step: float,
                     decay: float, budget_ms: float) -> float:
    return max(budget_ms, current_ms - first_step * initial_ms * decay ** iteration)


def smaller_widths(width: int, granularity: int) -> range:
    """Multiples of ``granularity`` below ``width``, largest first (the minimum is ``granularity``)."""
    top = (width - 1) // granularity * granularity
    return range(top, granularity - 1, -granularity)


def _candidates(arch: Arch, group: str, width: int, granularity: int):
    for candidate in smaller_widths(width, granularity):
        yield candidate, set_widths(arch, {group: candidate})


def propose(arch: Arch, target_ms: float, predict: Predict, granularity: int = 8) -> list[Proposal]:
    """One proposal per group that can meet ``target_ms`` by shrinking alone."""
    proposals = []
    for group in width_groups(arch):
        for width, shrunk in _candidates(arch, group.name, group.width(arch), granularity):
            predicted = predict(shrunk)
            if predicted <= target_ms:
                proposals.append(Proposal(group.name, width, shrunk, predicted))
                break
    return proposals


def closest_to_target(arch: Arch, current_ms: float, predict: Predict, granularity: int = 8) -> list[Proposal]:
    """When no group can meet the target alone: each group at the width it predicts fastest
    (when faster than the current network), the nearest a one-group change gets to the target."""
    proposals = []
    for group in width_groups(arch):
        priced = [(predict(shrunk), width, shrunk)
                  for width, shrunk in _candidates(arch, group.name, group.width(arch), granularity)]
        if priced:
            predicted, width, shrunk = min(priced, key=lambda p: (p[0], -p[1]))
            if predicted < current_ms:
                proposals.append(Proposal(group.name, width, shrunk, predicted))
    return proposals


def minimum_widths(arch: Arch, granularity: int = 8) -> Arch:
    """``arch`` with every group as narrow as proposals can make it."""
    return set_widths(arch, {g.name: min(g.width(arch), granularity) for g in width_groups(arch)})
