"""Networks whose weights stay frozen and whose masks are learned from scores: the
learned supermask (Zhou et al. 2019) and edge-popup (Ramanujan et al. 2020).

:class:`ScoredNet` holds a frozen :class:`~hwadapt.materialize.torch_net.Net`, the
values its masked weights take and one trainable score per weight; its forward pass
runs the network with ``values * mask(scores)`` in place of those weights
(``torch.func.functional_call``), so the network's own modules, BN included, are used
unchanged. Every parameter of the network is frozen, BN's scale and shift included
(they stay 1 and 0: edge-popup's non-affine BN); BN's running statistics are still
collected in training mode and used in evaluation.

* ``bernoulli`` (learned supermask): mask ~ Bernoulli(sigmoid(s)) in training and in
  evaluation (seeded there), with the straight-through gradient
  ``m + p - stop_gradient(p)``, p = sigmoid(s);
* ``top_k`` (edge-popup): per layer, the ``keep`` fraction of weights with the largest
  ``|s|``; the gradient passes straight through to ``|s|``.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.func import functional_call

from hwadapt.lottery.criteria import top_fraction
from hwadapt.lottery.masks import Masks
from hwadapt.materialize.torch_net import Net

MASKINGS = ("bernoulli", "top_k")


class ScoredNet(nn.Module):
    """``net`` with the weights named in ``values`` replaced by ``values * mask(scores)``."""

    def __init__(self, net: Net, values: dict[str, torch.Tensor], masking: str, keep: float = 0.5,
                 eval_seed: int = 0) -> None:
        super().__init__()
        if masking not in MASKINGS:
            raise ValueError(f"masking must be one of {MASKINGS}, got {masking!r}")
        self.net, self.masking, self.keep, self.eval_seed = net, masking, keep, eval_seed
        for param in net.parameters():
            param.requires_grad_(False)
        self.names = list(values)
        for index, name in enumerate(self.names):
            self.register_buffer(f"value{index}", values[name].detach().clone())
        self.scores = nn.ParameterList([nn.Parameter(self._initial_scores(values[name])) for name in self.names])

    @property
    def arch(self):
        return self.net.arch

    def _initial_scores(self, value: torch.Tensor) -> torch.Tensor:
        if self.masking == "bernoulli":
            return torch.zeros_like(value)  # p = 0.5: the search starts from a random half of the weights
        scores = torch.empty_like(value)
        nn.init.kaiming_uniform_(scores, a=math.sqrt(5))  # edge-popup's score initialisation
        return scores

    def masks(self, generator: torch.Generator | None = None) -> list[torch.Tensor]:
        """The masks the forward pass uses now (training: with their straight-through
        gradients; evaluation: Bernoulli masks sampled from ``generator``)."""
        out = []
        for score in self.scores:
            if self.masking == "top_k":
                # ranked by |s|, and the gradient reaches s through |s| (edge-popup's)
                magnitude = score.abs()
                hard = top_fraction(magnitude.detach(), self.keep).to(score.device).to(score.dtype)
                out.append(hard + magnitude - magnitude.detach())
            else:
                p = torch.sigmoid(score)
                hard = torch.bernoulli(p.detach(), generator=generator)
                out.append(hard + p - p.detach())
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        generator = None
        if not self.training and self.masking == "bernoulli":
            generator = torch.Generator(device=x.device).manual_seed(self.eval_seed)
        weights = {name: getattr(self, f"value{i}") * mask
                   for i, (name, mask) in enumerate(zip(self.names, self.masks(generator)))}
        return functional_call(self.net, weights, (x,))

    @torch.no_grad()
    def hard_masks(self) -> Masks:
        """The masks evaluation uses (one fixed Bernoulli sample for the learned supermask)."""
        device = self.scores[0].device
        generator = torch.Generator(device=device).manual_seed(self.eval_seed)
        return {name: mask.detach() > 0.5 for name, mask in zip(self.names, self.masks(generator))}

    @torch.no_grad()
    def baked(self) -> Net:
        """The plain network computing what this one computes in evaluation: each masked
        weight replaced by ``value * mask`` (for export and measurement)."""
        params = dict(self.net.named_parameters())
        for i, (name, mask) in enumerate(self.hard_masks().items()):
            params[name].copy_(getattr(self, f"value{i}") * mask)
        return self.net


def signed_constant(values: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Edge-popup's best weights: each weight's sign kept, its magnitude the layer's
    Kaiming-normal standard deviation ``sqrt(2 / fan_in)``."""
    out = {}
    for name, value in values.items():
        fan_in = value[0].numel()
        out[name] = torch.sign(value) * math.sqrt(2.0 / fan_in)
    return out


def he_scaled(value: torch.Tensor) -> torch.Tensor:
    """``value`` rescaled to the Kaiming-normal standard deviation ``sqrt(2 / fan_in)``.

    hwadapt initialises the classifier at N(0, 0.01) so that training starts from small
    logits; frozen, such a read-out keeps every logit near zero whatever the mask selects,
    and the learned supermask's loss (and gradient) hardly moves from log(classes). The
    same random values at He's scale leave the mask the job of choosing among them."""
    return value * (math.sqrt(2.0 / value[0].numel()) / value.std().clamp_min(1e-12))
