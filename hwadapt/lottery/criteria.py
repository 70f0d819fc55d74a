"""The mask criteria of the supermask paper (Zhou et al. 2019, "Deconstructing Lottery
Tickets"): a score of each weight from its initial value ``w_i`` and its value after
training ``w_f``; each layer keeps the weights with the highest scores.

* ``large_final``: ``|w_f|`` (the lottery ticket's own criterion);
* ``large_init_large_final``: large at both ends: ``min(|w_i| / s_i, |w_f| / s_f)``, each
  magnitude over its layer's standard deviation so that neither end dominates;
* ``magnitude_increase``: ``|w_f| - |w_i|``;
* ``movement``: ``|w_f - w_i|``;
* ``random``: uniform scores (the baseline).

A ``_same_sign`` variant keeps only weights whose sign did not change in training,
ranked by the base criterion (among those, as many as the sparsity allows): the paper's
supermask criterion is ``large_final_same_sign``.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from hwadapt.errors import HwadaptError
from hwadapt.lottery.masks import Masks

Score = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
SAME_SIGN = "_same_sign"


def _scaled(weights: torch.Tensor) -> torch.Tensor:
    return weights.abs() / weights.std().clamp_min(1e-12)


BASE: dict[str, Score] = {
    "large_final": lambda init, final: final.abs(),
    "large_init_large_final": lambda init, final: torch.minimum(_scaled(init), _scaled(final)),
    "magnitude_increase": lambda init, final: final.abs() - init.abs(),
    "movement": lambda init, final: (final - init).abs(),
}
RANDOM = "random"
CRITERIA: tuple[str, ...] = (*BASE, *(name + SAME_SIGN for name in BASE), RANDOM)


class CriterionError(HwadaptError):
    """A mask criterion nobody defined."""


def check_criterion(name: str) -> str:
    if name not in CRITERIA:
        raise CriterionError(f"unknown criterion {name!r}; known: {', '.join(CRITERIA)}")
    return name


def scores(name: str, init: torch.Tensor, final: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each weight's score under criterion ``name`` (higher is kept first)."""
    check_criterion(name)
    if name == RANDOM:
        return torch.rand(init.shape, generator=generator)
    base = BASE[name.removesuffix(SAME_SIGN)](init, final)
    if name.endswith(SAME_SIGN):
        base = torch.where(torch.sign(init) == torch.sign(final), base, torch.tensor(float("-inf")))
    return base


def top_fraction(score: torch.Tensor, keep: float) -> torch.Tensor:
    """A mask of the highest-scoring ``keep`` fraction of ``score`` (at least one weight)."""
    count = max(1, round(keep * score.numel()))
    mask = torch.zeros(score.numel(), dtype=torch.bool)
    mask[torch.topk(score.flatten().double(), count, sorted=False).indices.cpu()] = True
    return mask.view(score.shape)


def criterion_masks(name: str, init: dict[str, torch.Tensor], final: dict[str, torch.Tensor], sparsity: float,
                    generator: torch.Generator) -> Masks:
    """Per layer, the ``1 - sparsity`` of the weights that criterion ``name`` scores
    highest, from the initial and final weights of each layer (by parameter name)."""
    check_criterion(name)
    return {layer: top_fraction(scores(name, init[layer].cpu(), final[layer].cpu(), generator), 1.0 - sparsity)
            for layer in init}
