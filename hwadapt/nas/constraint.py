"""The ``target`` form of the latency loss: the target as a constraint the search meets.

Why the published forms leave the architecture where it started on a short search
(measured on CIFAR-10 at 32 px, ``docs/search.md``): the ``mul`` form's gradient on a
logit is about 1/30 of the binary gates' accuracy gradient on average and 1/75 of its
spread, and Adam divides every logit's step by that spread, so the latency part moves a
logit by about ``arch_lr / 75`` per step -- it overtakes the accuracy noise only after
some 5,000 architecture steps, where a CPU search makes a few hundred. The ``mul`` form
also penalises latency on both sides of the target (the target only sets its scale), so
it cannot pull a network *up* to a target.

This form holds a *sharpened* expected latency on the target:

    loss = CE + multiplier * e + penalty / 2 * e**2,   e = (E_tau - T) / T,
    E_tau = fixed + sum_k sum_i softmax(alpha_k / tau)_i * cost_ki

- the quadratic penalty pulls from both sides, strongly enough to dominate the accuracy
  noise while the error is large;
- ``multiplier`` is the constraint's Lagrange multiplier, raised by dual ascent
  (``multiplier += gain * arch_lr * e`` after each architecture step) so that a steady
  pull of the accuracy term is balanced without a steady error. Scaling its step by the
  architecture learning rate matches it to how fast the logits can move (Adam moves a
  logit by about ``arch_lr`` per step at most), so one gain serves a few hundred steps at
  2e-2 and the paper's thousands at 1e-3;
- ``tau`` falls geometrically from 1 at the first architecture step to
  ``final_temperature`` at the last. Early on, ``E_tau`` is the plain expected latency
  and the whole distribution moves; later it approaches the latency of the argmax -- the
  network the search derives -- and its gradient gathers on the positions whose leading
  choices are close, so the argmax moves one position at a time. A latency loss on the
  plain expectation moves every position the same way under Adam, and the argmax jumps
  between the fastest and the slowest member.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class LatencyConstraint:
    target_ms: float
    penalty: float  # weight of the squared relative error
    gain: float  # dual ascent step, in units of the architecture learning rate
    final_temperature: float  # softmax temperature of E_tau at the end of the search
    multiplier: float = 0.0  # the Lagrange multiplier (checkpointed with the search)

    def temperature(self, progress: float) -> float:
        """``tau`` at ``progress`` (0: first architecture step, 1: last)."""
        return self.final_temperature ** min(max(progress, 0.0), 1.0)

    def error(self, expected_ms: torch.Tensor | float) -> torch.Tensor | float:
        return (expected_ms - self.target_ms) / self.target_ms

    def loss(self, ce: torch.Tensor, sharpened_ms: torch.Tensor) -> torch.Tensor:
        e = self.error(sharpened_ms)
        return ce + self.multiplier * e + self.penalty / 2 * e ** 2

    def update(self, sharpened_ms: float, arch_lr: float) -> None:
        """Dual ascent after an architecture step."""
        self.multiplier += self.gain * arch_lr * float(self.error(sharpened_ms))
