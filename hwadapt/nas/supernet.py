"""The over-parameterised network of the proxyless space, with binarized paths.

Every searchable position is a :class:`MixedOp` holding all its candidate blocks and
one architecture logit per candidate. Paths are *binarized* (Cai et al., section 3.2):

- weight step: one path per position is sampled from ``softmax(alpha)`` and only that
  path runs, so memory and compute are those of training one member network;
- architecture step: two paths are sampled; the active one runs with autograd, the
  other under ``no_grad`` (its output is needed for its gate's gradient only), and the
  output is ``g_a * o_a + g_b * o_b`` with binary gates ``g = (1, 0)`` that are leaf
  tensors, so backward yields ``dL/dg``.

The logits live in :attr:`SuperNet.alphas`, apart from the weights (no splitting of
parameters by name), and :meth:`SuperNet.weight_parameters` is everything else.
"""
from __future__ import annotations

import itertools
from collections.abc import Iterator

import torch
from torch import nn

from hwadapt.arch.spec import Arch
from hwadapt.families.proxyless import ProxylessSpace
from hwadapt.materialize.torch_net import Net, init_weights
from hwadapt.ops import conv_out_size
from hwadapt.nas.gates import two_path_alpha_grad


class MixedOp(nn.Module):
    """All candidate blocks of one position; runs one path, or two with binary gates."""

    def __init__(self, candidates: list[nn.Module]) -> None:
        super().__init__()
        self.candidates = nn.ModuleList(candidates)
        self.active = 0
        self.other: int | None = None  # the second path of an architecture step
        self.gates: torch.Tensor | None = None

    def use_one(self, index: int) -> None:
        self.active, self.other, self.gates = index, None, None

    def use_two(self, active: int, other: int, device: torch.device | str = "cpu") -> None:
        self.active, self.other = active, other
        self.gates = torch.tensor([1.0, 0.0], device=device, requires_grad=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.candidates[self.active](x)
        if self.other is None:
            return out
        with torch.no_grad():
            other = self.candidates[self.other](x)
        return self.gates[0] * out + self.gates[1] * other

    def add_alpha_grad(self, alpha: torch.Tensor) -> None:
        """Add the binary gates' gradient to the logits of the two sampled paths:
        ``dL/dalpha_i += sum_j dL/dg_j p_j (delta_ij - p_i)`` over the pair."""
        if self.gates is None or self.gates.grad is None:
            return
        index = [self.active, self.other]
        if alpha.grad is None:
            alpha.grad = torch.zeros_like(alpha)
        alpha.grad[index] += two_path_alpha_grad(alpha.detach()[index], self.gates.grad)

    @torch.no_grad()
    def rescale(self, alpha: torch.Tensor, old_pair: torch.Tensor) -> None:
        """After an optimiser step, shift the pair's two logits so that the sum of their
        exponentials is what it was: the unsampled paths keep their probabilities."""
        index = [self.active, self.other]
        alpha[index] -= torch.logsumexp(alpha[index], 0) - torch.logsumexp(old_pair, 0)


class SuperNet(nn.Module):
    """Fixed stem, head and classifier around one :class:`MixedOp` per searchable position."""

    def __init__(self, space: ProxylessSpace) -> None:
        super().__init__()
        self.space = space
        self.positions = space.positions()
        self.choices = [p.choices() for p in self.positions]
        base = space.default()
        first = space.first_position
        modules, size = [], space.resolution
        for index, (block, cin) in enumerate(zip(base.blocks, base.input_widths())):
            if first <= index < first + len(self.positions):
                position = self.positions[index - first]
                candidates = [position.block(c) for c in self.choices[index - first]]
                modules.append(MixedOp([c.spec.module(c, cin, size, base.act) for c in candidates]))
            else:
                modules.append(block.spec.module(block, cin, size, base.act))
            size = conv_out_size(size, block.stride)
        self.blocks = nn.ModuleList(modules)
        self.fc = nn.Linear(base.feature_width(), base.num_classes)
        init_weights(self)
        self.alphas = nn.ParameterList([nn.Parameter(torch.zeros(len(c))) for c in self.choices])
        self._pair_logits: list[torch.Tensor] = []

    # -- parameters --------------------------------------------------------------
    def weight_parameters(self) -> Iterator[nn.Parameter]:
        return itertools.chain(self.blocks.parameters(), self.fc.parameters())

    def arch_parameters(self) -> Iterator[nn.Parameter]:
        return iter(self.alphas)

    @property
    def mixed(self) -> list[MixedOp]:
        return [m for m in self.blocks if isinstance(m, MixedOp)]

    def path_modules(self) -> Iterator[nn.Module]:
        """Every module of the single path in use (shared layers and active candidates)."""
        for block in self.blocks:
            yield from (block.candidates[block.active] if isinstance(block, MixedOp) else block).modules()

    def probabilities(self, temperature: float = 1.0) -> list[torch.Tensor]:
        """Each position's path probabilities, ``softmax(alpha / temperature)``."""
        return [torch.softmax(a / temperature, dim=0) for a in self.alphas]

    # -- path sampling (on the CPU with a CPU generator: the same draws on every device) --
    def sample_one(self, generator: torch.Generator | None = None) -> list[int]:
        """Weight step: one path per position drawn from ``softmax(alpha)``."""
        picks = []
        for op, alpha in zip(self.mixed, self.alphas):
            index = int(torch.multinomial(torch.softmax(alpha.detach().cpu(), 0), 1, generator=generator))
            op.use_one(index)
            picks.append(index)
        return picks

    def sample_two(self, generator: torch.Generator | None = None) -> list[tuple[int, int]]:
        """Architecture step: two paths per position, the active one drawn from their
        renormalised probabilities. Remembers the pair's logits for :meth:`rescale`."""
        pairs, self._pair_logits = [], []
        for op, alpha in zip(self.mixed, self.alphas):
            probs = torch.softmax(alpha.detach().cpu(), 0)
            pair = torch.multinomial(probs, 2, replacement=False, generator=generator)
            first = int(torch.multinomial(probs[pair] / probs[pair].sum(), 1, generator=generator))
            active, other = int(pair[first]), int(pair[1 - first])
            op.use_two(active, other, alpha.device)
            pairs.append((active, other))
            self._pair_logits.append(alpha.detach()[[active, other]].clone())
        return pairs

    def use(self, choices: list[int]) -> None:
        """Run a fixed path (index of the choice at every position)."""
        for op, index in zip(self.mixed, choices):
            op.use_one(index)

    def accumulate_alpha_grads(self) -> None:
        """Turn the gates' gradients of an architecture step into logit gradients."""
        for op, alpha in zip(self.mixed, self.alphas):
            op.add_alpha_grad(alpha)

    def rescale(self) -> None:
        """Keep the unsampled paths' probabilities after an architecture step."""
        for op, alpha, old in zip(self.mixed, self.alphas, self._pair_logits):
            op.rescale(alpha, old)

    # -- forward and derivation --------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return self.fc(x.mean(dim=(2, 3)))

    def argmax(self) -> list[int]:
        return [int(a.detach().argmax()) for a in self.alphas]

    def member(self, choices: list[int]) -> Arch:
        return self.space.member([names[i] for names, i in zip(self.choices, choices)])

    def member_net(self, choices: list[int]) -> Net:
        """A standalone :class:`Net` of the member, inheriting the supernet's weights."""
        net = Net(self.member(choices))
        state = {}
        picked = iter(choices)
        for index, module in enumerate(self.blocks):
            source = module.candidates[next(picked)] if isinstance(module, MixedOp) else module
            state |= {f"blocks.{index}.{k}": v for k, v in source.state_dict().items()}
        state |= {f"fc.{k}": v for k, v in self.fc.state_dict().items()}
        net.load_state_dict(state)
        return net

