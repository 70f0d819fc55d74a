"""From the learned path probabilities to a member that lands on the latency target.

The argmax of the probabilities trades accuracy against *expected* latency; it need not
sit on the target. :func:`adjust_to_target` swaps choices greedily, guided by the
predictor's per-position costs, until the predicted latency is inside a band around the
target, giving up as little log-probability per millisecond as it can.
:func:`calibrated_member` then measures the member end to end and, when the LUT's sum
is off for whole networks on this target, re-aims the prediction and adjusts again.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from hwadapt.nas.latency import LatencyTable


@dataclass(frozen=True)
class Swap:
    position: int
    before: int
    after: int
    predicted_ms: float  # after the swap


@dataclass
class Adjustment:
    choices: list[int]
    predicted_ms: float
    swaps: list[Swap] = field(default_factory=list)


def _moves(table: LatencyTable, log_probs: list[list[float]], choices: list[int], target_ms: float):
    """Every single-position swap that moves the prediction towards ``target_ms``, as
    (overshoots, cost per ms, new prediction, position, new choice)."""
    current = table.of(choices)
    need = target_ms - current
    for k, (costs, logp) in enumerate(zip(table.costs, log_probs)):
        for i in range(len(costs)):
            delta = costs[i] - costs[choices[k]]
            if i == choices[k] or delta * need <= 0:
                continue
            new = current + delta
            overshoots = abs(new - target_ms) >= abs(need)
            yield overshoots, (logp[choices[k]] - logp[i]) / abs(delta), new, k, i


def adjust_to_target(table: LatencyTable, log_probs: list[list[float]], choices: list[int],
                     target_ms: float, band: float, max_swaps: int = 200) -> Adjustment:
    """Greedy swaps until ``|predicted - target| <= band * target`` (or no swap gets closer).

    Each swap prefers moves that do not overshoot the band's far side, and among those the
    one losing the least log-probability per millisecond moved.
    """
    result = Adjustment(list(choices), table.of(choices))
    while abs(result.predicted_ms - target_ms) > band * target_ms and len(result.swaps) < max_swaps:
        moves = [m for m in _moves(table, log_probs, result.choices, target_ms) if not m[0]]
        if not moves:
            break
        inside = [m for m in moves if abs(m[2] - target_ms) <= band * target_ms]
        _, _, new, k, i = min(inside or moves, key=lambda m: (m[1], abs(m[2] - target_ms)))
        result.swaps.append(Swap(k, result.choices[k], i, new))
        result.choices[k] = i
        result.predicted_ms = new
    return result


@dataclass
class Calibration:
    """One round of aiming: the prediction aimed at, the member's prediction and measurement."""

    aim_ms: float
    predicted_ms: float
    measured_ms: float
    swaps: int


def calibrated_member(table: LatencyTable, log_probs: list[list[float]], choices: list[int], target_ms: float,
                      measure: Callable[[list[int]], float], *, tolerance: float, rounds: int = 4
                      ) -> tuple[Adjustment, list[Calibration]]:
    """Adjust, measure, and re-aim at ``target * predicted / measured`` until the measured
    latency is within half the ``tolerance`` of the target (at most ``rounds`` measurements).

    Half the tolerance is left for the noise of the final measurement. Returns the
    adjustment measured closest to the target and every round's figures.
    """
    aim, history, best = target_ms, [], None
    for _ in range(rounds):
        adjustment = adjust_to_target(table, log_probs, choices, aim, tolerance / 2)
        measured = measure(adjustment.choices)
        history.append(Calibration(aim, adjustment.predicted_ms, measured, len(adjustment.swaps)))
        if best is None or abs(measured - target_ms) < abs(best[1] - target_ms):
            best = (adjustment, measured)
        if abs(measured - target_ms) <= tolerance / 2 * target_ms:
            break
        aim = target_ms * adjustment.predicted_ms / measured
    return best[0], history
